// A member's session in the browser, shared by the handlers' desk and the committee console: the key file
// is decrypted once into a non-extractable key kept in IndexedDB (signer.js), the member signs in by
// signing the server's challenge, and every entry is signed here before it is posted.
import { forgetKey, importKeyFile, loadKey, login, makeUnsigned, saveKey, signEntry } from "./signer.js";

/**
 * Sign in to `village` with the saved key, or show `ui.form` (#key-file, #passphrase) until a key file is
 * loaded. Resolves to {member, roles, key, call, sign, post} once signed in; `ui.say(text, bad)` reports.
 */
export function openSession(village, ui) {
  return new Promise((resolve) => {
    const start = async (key) => {
      const answer = await login("", village, key.privateKey, key.publicKey);
      ui.form.hidden = true;
      resolve(session(village, key, answer));
    };
    const guarded = (action) => async (...args) => {
      try { await action(...args); } catch (error) { ui.say(error.message, true); }
    };
    ui.form.addEventListener("submit", guarded(async (event) => {
      event.preventDefault();
      const file = ui.form.querySelector("#key-file").files[0];
      const passphrase = ui.form.querySelector("#passphrase");
      const key = await importKeyFile(await file.text(), passphrase.value);
      passphrase.value = "";
      await saveKey(village, key);
      await start(key);
    }));
    ui.forget?.addEventListener("click", guarded(async () => {
      await forgetKey(village);
      location.reload();
    }));
    guarded(async () => {
      const key = await loadKey(village);
      if (key) return start(key);
      ui.form.hidden = false;
      ui.say(ui.needKey);
    })();
  });
}

function session(village, key, answer) {
  const base = `/api/v1/villages/${village}`;
  /** Call the API as this member: JSON in (`json`) or a FormData (`form`); JSON or the Response out. */
  const call = async (path, { method = "GET", json, form } = {}) => {
    const headers = { Authorization: `Bearer ${answer.token}` };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${base}${path}`, { method, headers, body: json !== undefined ? JSON.stringify(json) : form });
    const isJson = /json/.test(response.headers.get("Content-Type") ?? "");
    const body = isJson ? await response.json() : response;
    if (!response.ok) {
      const named = body?.errors?.map((e) => `${e.field}: ${e.problem}`).join("; ");
      throw new Error(named || body?.detail || response.statusText);
    }
    return body;
  };
  /** A signed entry of `kind` by this member (the wire form the API takes). */
  const sign = (kind, body) => signEntry(makeUnsigned({ kind, village, body, author: key.publicKey }), key.privateKey, key.publicKey);
  /** Post signed entries: one, or a batch appended all or nothing. */
  const post = (wires) => call("/entries", { method: "POST", json: wires.length === 1 ? wires[0] : { entries: wires } });
  return { village, member: answer.member, roles: answer.roles, key, call, sign, post };
}
