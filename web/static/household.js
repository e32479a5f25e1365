// The phone checks the server: every record on the page is verified against the signed checkpoint with
// WebCrypto (SHA-256, Ed25519), and the shown amount must be the one in the signed entry.
import { openCheckpoint, verifyInclusion, hashLeaf } from "./verify.js";

const context = JSON.parse(document.getElementById("proof-context").textContent);
const messages = document.getElementById("messages").dataset;
const status = document.getElementById("verify-status");
const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

function shownAmountMatches(item, leaf) {
  if (item.dataset.amount === undefined) return true;
  const entry = JSON.parse(new TextDecoder().decode(leaf)).entry;
  const amount = entry.body.amount;
  const sign = entry.kind === "points.deduct" || entry.kind === "points.redeem" ? -1 : 1;
  return entry.kind === "points.reverse" || Number(item.dataset.amount) === sign * amount;
}

async function verifyPage() {
  let checkpoint;
  try {
    checkpoint = await openCheckpoint(context.checkpoint, context.key, context.origin);
  } catch (error) {
    status.textContent = `${messages.bad.replace("{count}", "∞")} (${error.message})`;
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
  status.textContent = bad ? messages.bad.replace("{count}", bad) : messages.allOk.replace("{size}", checkpoint.size);
  status.className = bad ? "status bad" : "status ok";
}

verifyPage();
