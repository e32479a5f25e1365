// The committee console: sign in once with the member's key (session.js), then each section of the page
// (a <section data-module=NAME>) is run by its own module, static/console-NAME.js, which exports
// mount(section, ctx). ctx: {village, session: {member, roles, call, sign, post}, say(text, bad),
// strings: the section's <template class="strings"> data attributes, and the console's own `personal`}.
import { openSession } from "./session.js";

const data = document.getElementById("console-data").dataset;
const status = document.getElementById("console-status");

function say(text, bad = false) {
  status.textContent = text;
  status.className = bad ? "status bad" : "status";
}

async function start() {
  say(data.loading);
  const session = await openSession(data.village, {
    form: document.getElementById("key-form"), forget: document.getElementById("forget"), say, needKey: data.needKey,
  });
  const signedIn = data.signedIn.replace("{member}", session.member);
  document.getElementById("who").textContent = signedIn;
  document.getElementById("console-nav").hidden = false;
  say(signedIn);
  for (const section of document.querySelectorAll("section[data-module]")) {
    const strings = { personal: data.personal, ...section.querySelector("template.strings")?.dataset };
    const module = await import(`./console-${section.dataset.module}.js`);
    await module.mount(section, { village: data.village, session, say, strings });
    section.hidden = false;
  }
  document.body.dataset.ready = "true"; // every section mounted (the browser tests wait for this)
}

start().catch((error) => say(error.message, true));
