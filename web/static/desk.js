// The handlers' console: the member's key is decrypted and kept in this browser (signer.js); every step
// is a complaint.step entry signed here and posted with the reply's text and the salt that opens its
// commitment. Complaint texts are shown with textContent only: nothing a villager writes becomes markup.
import { canonicalize } from "./signer.js";
import { openSession } from "./session.js";

const data = document.getElementById("desk-data").dataset;
const village = data.village;
const names = { statuses: JSON.parse(data.statuses), categories: JSON.parse(data.categories),
  steps: JSON.parse(data.steps), routes: JSON.parse(data.routes) };
const $ = (id) => document.getElementById(id);
const STEP_DOMAIN = "villageledger/complaint-step/v1\n";
let session = null; // from openSession: {member, roles, call, sign, post}
let current = null; // the case view shown

function say(text, bad = false) {
  $("desk-status").textContent = text;
  $("desk-status").className = bad ? "status bad" : "status";
}

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));

async function stepCommitment(salt, content) {
  const text = new TextEncoder().encode(canonicalize(content));
  const domain = new TextEncoder().encode(STEP_DOMAIN);
  const whole = new Uint8Array(domain.length + salt.length + text.length);
  whole.set(domain); whole.set(salt, domain.length); whole.set(text, domain.length + salt.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", whole));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function showCases() {
  const { items } = await session.call("/complaints");
  const list = $("cases");
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#${item.receipt}`;
    link.textContent = `${item.filed} · ${names.routes[item.route]} · ${names.statuses[item.status]}${item.escalated ? ` · ${data.escalated}` : ""}`;
    link.addEventListener("click", (event) => { event.preventDefault(); showCase(item.receipt); });
    li.append(link);
    list.append(li);
  }
  if (!items.length) list.textContent = data.none;
}

/** For the supervision committee and the township: deductions from households that filed under their name. */
async function showProtected() {
  if (!session.roles.some((role) => role === "supervisor" || role === "township")) return;
  const { items } = await session.call("/complaints/protected-deductions");
  const list = $("protected");
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = data.protected.replace("{time}", item.time).replace("{household}", item.household)
      .replace("{amount}", item.amount).replace("{approval}", item.supervisor_cosigned ? data.approved : data.notApproved);
    return li;
  }));
  if (!items.length) list.textContent = data.noProtected;
  $("protected-section").hidden = false;
}

async function showCase(receipt) {
  current = await session.call(`/complaints/${receipt}`);
  const { case: item, content } = current;
  $("case-section").hidden = false;
  $("case-title").textContent = names.categories[content.category] ?? content.category;
  $("case-status").textContent = `${names.statuses[item.status]}${item.escalated ? ` · ${data.escalated}` : ""}`;
  $("case-text").textContent = content.text;
  const meta = [item.filed, content.anonymous ? data.anonymous : data.household.replace("{household}", content.household ?? "—")];
  if (content.assisted_by) meta.push(data.assisted.replace("{member}", content.assisted_by));
  if (content.appeal_of) meta.push(data.appeal.replace("{entry}", content.appeal_of));
  $("case-meta").textContent = meta.join(" · ");
  const steps = $("case-steps");
  steps.replaceChildren(...current.steps.map((step) => {
    const li = document.createElement("li");
    li.textContent = `${step.time} ${names.steps[step.step] ?? step.step}${step.by ? ` (${step.by})` : ""}${step.text ? `: ${step.text}` : ""}`;
    return li;
  }));
  const photos = $("case-photos");
  photos.replaceChildren();
  for (const sha of current.photos) {
    const blob = await (await session.call(`/complaints/${receipt}/photos/${sha}`)).blob();
    const img = document.createElement("img");
    img.src = URL.createObjectURL(blob);
    img.alt = sha.slice(0, 8);
    img.className = "photo";
    photos.append(img);
  }
  document.querySelector("[data-uphold]").hidden = !content.appeal_of;
  $("case-section").scrollIntoView();
}

async function takeStep(step) {
  const receipt = current.case.receipt;
  const text = $("reply-text").value.trim();
  const body = { receipt, step };
  const payload = {};
  if (step === "assign") body.assignee = $("assignee").value.trim();
  if (step === "reply") {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    body.commitment = await stepCommitment(salt, { receipt, step, by: session.member, text });
    Object.assign(payload, { text, salt: b64(salt) });
  }
  const entry = await session.sign("complaint.step", body);
  await session.call(`/complaints/${receipt}/steps`, { method: "POST", json: { entry, ...payload } });
  $("reply-text").value = "";
  say(data.saved);
  await showCase(receipt);
  await showCases();
}

async function uphold() {
  const entry = await session.sign("points.reverse", { entry: current.content.appeal_of, reason: data.reason, case: current.case.receipt });
  await session.post([entry]);
  say(data.reversed);
}

const guarded = (action) => async (...args) => {
  try { await action(...args); } catch (error) { say(error.message, true); }
};

for (const button of document.querySelectorAll("[data-step]")) {
  button.addEventListener("click", guarded(() => takeStep(button.dataset.step)));
}
document.querySelector("[data-uphold]").addEventListener("click", guarded(uphold));

guarded(async () => {
  say(data.loading);
  session = await openSession(village, { form: $("key-form"), forget: $("forget"), say, needKey: data.needKey });
  $("cases-section").hidden = false;
  $("who").textContent = data.signedIn.replace("{member}", session.member);
  say(data.signedIn.replace("{member}", session.member));
  await showCases();
  await showProtected();
})();
