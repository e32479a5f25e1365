// The phone checks the server: every record on the page is verified against the signed checkpoint with
// WebCrypto (SHA-256, Ed25519), and the shown amount must be the one in the signed entry.
//
// A door plate pins the township's witness in its address's fragment (#w=<pin>, never sent to a server; the
// pin is kept for the village, so a page opened later without it still checks). With a pin the page says
// "verified" only for a checkpoint the pinned witness cosigned, and consistent with the last one this phone
// saw of the village (kept in IndexedDB); it then says when the township checked the ledger, in Beijing time.
import { openCheckpoint, verifyConsistency, verifyInclusion, hashLeaf } from "./verify.js";

const context = JSON.parse(document.getElementById("proof-context").textContent);
const messages = document.getElementById("messages").dataset;
const status = document.getElementById("verify-status");
const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const encode = (bytes) => btoa(String.fromCharCode(...bytes));

function shownAmountMatches(item, leaf) {
  if (item.dataset.amount === undefined) return true;
  const entry = JSON.parse(new TextDecoder().decode(leaf)).entry;
  const amount = entry.body.amount;
  const sign = entry.kind === "points.deduct" || entry.kind === "points.redeem" ? -1 : 1;
  return entry.kind === "points.reverse" || Number(item.dataset.amount) === sign * amount;
}

/** The witness pins of the plate's address (#w=a,b), remembered for the village; else those remembered. */
function plateWitnessPins(origin) {
  const key = `villageledger:pins:${origin}`;
  const given = new URLSearchParams(location.hash.slice(1)).get("w");
  if (given) localStorage.setItem(key, given);
  return (given ?? localStorage.getItem(key) ?? "").split(",").filter(Boolean);
}

/** storage/plates.py witness_pin: SHA-256 of the key text, first 16 bytes, base64url without padding. */
async function witnessPin(vkey) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(vkey)));
  return encode(digest.slice(0, 16)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function lastSeenStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("villageledger", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("checkpoints");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function lastSeen(origin, update) {
  const db = await lastSeenStore();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction("checkpoints", "readwrite");
    const store = transaction.objectStore("checkpoints");
    const read = store.get(origin);
    read.onsuccess = () => {
      if (update) store.put(update, origin);
      resolve(read.result);
    };
    transaction.onerror = () => reject(transaction.error);
  });
}

async function consistencyProof(first, second) {
  const url = `/api/v1/villages/${encodeURIComponent(context.village)}/log/proof/consistency?first=${first}&second=${second}`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the server gave no consistency proof from ${first} to ${second}`);
  return (await response.json()).hashes.map(decode);
}

/** The checkpoint extends (or is extended by) the one this phone saw before; the later one is remembered. */
async function requireConsistentWithLastSeen(checkpoint) {
  const seen = await lastSeen(context.origin);
  if (seen && seen.size > 0) {
    const [older, newer] = seen.size <= checkpoint.size
      ? [[seen.size, decode(seen.root)], [checkpoint.size, checkpoint.rootHash]]
      : [[checkpoint.size, checkpoint.rootHash], [seen.size, decode(seen.root)]];
    const proof = older[0] === newer[0] ? [] : await consistencyProof(older[0], newer[0]);
    await verifyConsistency(older[0], newer[0], proof, older[1], newer[1]);
  }
  if (!seen || checkpoint.size >= seen.size) {
    await lastSeen(context.origin, { size: checkpoint.size, root: encode(checkpoint.rootHash) });
  }
}

function beijingTime(seconds) {
  return new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(seconds * 1000));
}

/** The checkpoint, and the line saying when the pinned witness checked it ("" when the plate pins none). */
async function witnessedCheckpoint() {
  const pins = plateWitnessPins(context.origin);
  if (!pins.length || !context.witnesses) {  // a plate of no witness, or a page the township cannot have seen yet
    return [await openCheckpoint(context.checkpoint, context.key, context.origin), ""];
  }
  const pinned = [];
  for (const vkey of context.witnesses) if (pins.includes(await witnessPin(vkey))) pinned.push(vkey);
  const checkpoint = await openCheckpoint(context.checkpoint, [context.key, ...pinned], context.origin);
  const times = pinned.map((vkey) => checkpoint.cosignedAt[vkey.split("+")[0]]).filter(Boolean);
  if (!times.length) throw new Error(messages.unwitnessed);
  try {
    await requireConsistentWithLastSeen(checkpoint);
  } catch (error) {
    console.warn("the ledger does not extend the one this phone saw before:", error.message);  // for a technician
    throw new Error(messages.forked);
  }
  return [checkpoint, messages.witnessed.replace("{time}", beijingTime(Math.max(...times)))];
}

async function verifyPage() {
  let checkpoint, witnessed;
  try {
    [checkpoint, witnessed] = await witnessedCheckpoint();
  } catch (error) {
    const plain = error.message === messages.unwitnessed || error.message === messages.forked;
    status.textContent = plain ? error.message : `${messages.bad.replace("{count}", "∞")} (${error.message})`;
    status.className = "status bad";
    return;
  }
  let bad = 0;
  for (const item of document.querySelectorAll("li.entry")) {
    const mark = item.querySelector("[data-check]");
    try {
      const leaf = decode(item.dataset.leaf);
      const proof = item.dataset.proof ? item.dataset.proof.split(" ").map(decode) : [];
      await verifyInclusion(Number(item.dataset.index), checkpoint.size, await hashLeaf(leaf), proof, checkpoint.rootHash);
      if (!shownAmountMatches(item, leaf)) throw new Error("amount shown differs from the signed entry");
      mark.textContent = `✓ ${messages.verified}`;
      mark.className = "check ok";
    } catch (error) {
      bad += 1;
      mark.textContent = `✗ ${messages.failed} (${error.message})`;
      mark.className = "check bad";
    }
  }
  const verdict = bad ? messages.bad.replace("{count}", bad) : messages.allOk.replace("{size}", checkpoint.size);
  status.textContent = bad || !witnessed ? verdict : `${verdict}${verdict.endsWith("。") ? "" : " "}${witnessed}`;
  status.className = bad ? "status bad" : "status ok";
}

verifyPage();
