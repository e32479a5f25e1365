// villageledger receipts checked in the browser with WebCrypto (docs/data-model.md §8, §9). A port of
// ledger/merkle.py, ledger/note.py, keys/_note_keys.py: same checks, order and messages; a failure throws
// an Error saying what mismatched. Sizes are JS numbers (at most 2**53 - 1); tree maths is BigInt.

const LEAF_PREFIX = Uint8Array.of(0x00); // RFC 9162 §2.1.1
const NODE_PREFIX = Uint8Array.of(0x01);
const HASH_SIZE = 32;
const ALG_ED25519 = 0x01; // signed-note signature type: a log's Ed25519 signature
const ALG_COSIGNATURE_V1 = 0x04; // a witness's timestamped cosignature (C2SP tlog-cosignature)
const KEY_ID_SIZE = 4;
const MAX_SIGNATURES = 100;
const SIGNATURE_PREFIX = "\u2014 "; // em dash, space
const MAX_TREE_SIZE = 2n ** 63n - 1n; // the format's limit
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER); // this verifier's
const SPACES = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u; // White_Space
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const fail = (message, cause) => { throw new Error(message, { cause }); };
// Python's repr() of plain strings
const quote = (s) => (/^[^'\\\x00-\x1f\x7f-\x9f]*$/.test(s) ? `'${s}'` : JSON.stringify(s));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const uplus = (code) => `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
const bitLength = (x) => (x ? x.toString(2).length : 0); // x >= 0n
const bitCount = (x) => x.toString(2).replaceAll("0", "").length;
const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const b64encode = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

// Strict: as ledger.canonical.b64decode
function b64decode(text, what, length) {
  if (!BASE64.test(text)) fail(`${what} is not valid base64`);
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (b64encode(raw) !== text) fail(`${what} is not canonical base64`);
  if (length !== undefined && raw.length !== length) fail(`${what} decodes to ${raw.length} bytes, expected ${length}`);
  return raw;
}

async function sha256(...parts) {
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

// Merkle tree (RFC 9162 §2.1)

function requireBytes(name, value, length) {
  if (!(value instanceof Uint8Array)) fail(`${name} is not a Uint8Array`);
  if (length !== undefined && value.length !== length) fail(`${name} has ${value.length} bytes, expected ${length}`);
}
const requireHash = (name, value) => requireBytes(name, value, HASH_SIZE);

function requireProofHashes(kind, proof, expected) {
  if (!Array.isArray(proof)) fail(`${kind} proof is not an array`);
  const n = proof.length;
  if (n !== expected) fail(`${kind} proof has ${n} hash${n === 1 ? "" : "es"}, expected ${expected}`);
  proof.forEach((value, i) => requireHash(`${kind} proof hash ${i}`, value));
}

function requireSafe(kind, numbers) {
  for (const [name, n] of Object.entries(numbers)) {
    if (!Number.isSafeInteger(n)) fail(`${kind} proof ${name} ${n} is not an integer in [0, 2**53 - 1]`);
  }
}

function requireLeafInTree(index, size) {
  if (!(0 <= index && index < size)) {
    fail(`inclusion proof requires 0 <= index < size, got index ${index}, size ${size}`);
  }
  requireSafe("inclusion", { size, index });
}

function requireMatch(name, calculated, expected) {
  requireBytes(name, expected);
  if (!equal(calculated, expected)) fail(`${name} mismatch: calculated ${hex(calculated)}, expected ${hex(expected)}`);
}

/** SHA-256(0x00 || bytes), bytes a Uint8Array. */
export async function hashLeaf(bytes) {
  requireBytes("leaf", bytes);
  return sha256(LEAF_PREFIX, bytes);
}

/** SHA-256(0x01 || left || right), each 32 bytes. */
export async function hashChildren(left, right) {
  requireHash("left child", left);
  requireHash("right child", right);
  return sha256(NODE_PREFIX, left, right);
}

// Inclusion proof: `inner` hashes below where paths to index and size - 1 fork, `border` ones above.
function decompose(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return [inner, bitCount(index >> BigInt(inner))];
}

// Bit i of `index` is set where the seed is a right child. `leftOnly`: the subtree at an older size.
async function chainInner(seed, proof, index, leftOnly = false) {
  for (const [i, sibling] of proof.entries()) {
    if ((index >> BigInt(i)) & 1n) seed = await hashChildren(sibling, seed);
    else if (!leftOnly) seed = await hashChildren(seed, sibling);
  }
  return seed;
}

async function chainBorderRight(seed, proof) {
  for (const sibling of proof) seed = await hashChildren(sibling, seed);
  return seed;
}

/** The root implied by a proof. Requires 0 <= index < size, 32-byte hashes, the RFC's proof length. */
export async function rootFromInclusionProof(index, size, leafHash, proof) {
  requireLeafInTree(index, size);
  requireHash("leaf hash", leafHash);
  const [inner, border] = decompose(BigInt(index), BigInt(size));
  requireProofHashes("inclusion", proof, inner + border);
  return chainBorderRight(await chainInner(leafHash, proof.slice(0, inner), BigInt(index)), proof.slice(inner));
}

/** Resolves if `leafHash` is at `index` in the tree (size, root); throws otherwise. */
export async function verifyInclusion(index, size, leafHash, proof, root) {
  requireLeafInTree(index, size);
  requireHash("root", root);
  requireMatch("root", await rootFromInclusionProof(index, size, leafHash, proof), root);
}

/** Resolves if (size2, root2) extends (size1, root1); edge cases as ledger/merkle.py. */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  // (1) sizes in order
  if (!(0 <= size1 && size1 <= size2)) {
    fail(`consistency proof requires 0 <= size1 <= size2, got size1 ${size1}, size2 ${size2}`);
  }
  requireSafe("consistency", { size2, size1 });
  // (2) the edge cases, whose proof is empty
  if (size1 === 0 || size1 === size2) requireProofHashes("consistency", proof, 0);
  if (size1 === 0) {
    const empty = await sha256();
    requireMatch("root1", empty, root1);
    return size2 === 0 ? requireMatch("root2", empty, root2) : requireHash("root2", root2);
  }
  if (size1 === size2) {
    requireBytes("root1", root1);
    return requireMatch("root2", root1, root2);
  }
  // (3) length and hashes; the seed is root1 if size1 is a power of two, else proof[0]
  const n1 = BigInt(size1);
  const [inner, border] = decompose(n1 - 1n, BigInt(size2));
  const shift = bitLength(n1 & -n1) - 1; // the proof starts at the largest subtree ending at size1
  const powerOfTwo = n1 === 1n << BigInt(shift);
  requireProofHashes("consistency", proof, (powerOfTwo ? 0 : 1) + inner - shift + border);
  requireHash("root1", root1);
  requireHash("root2", root2);
  const [seed, path] = powerOfTwo ? [root1, proof] : [proof[0], proof.slice(1)];
  const [below, above] = [path.slice(0, inner - shift), path.slice(inner - shift)];
  const mask = (n1 - 1n) >> BigInt(shift);
  // (4) the root at size1, from the left siblings alone; (5) at size2, from all of the proof
  requireMatch("root1", await chainBorderRight(await chainInner(seed, below, mask, true), above), root1);
  requireMatch("root2", await chainBorderRight(await chainInner(seed, below, mask), above), root2);
}

// C2SP signed notes, verifier keys, checkpoints

function characterProblem(text) {
  let offset = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code < 0x20 && ch !== "\n") return `control character ${uplus(code)} at offset ${offset}`;
    if (code >= 0xd800 && code <= 0xdfff) return `lone surrogate ${uplus(code)} at offset ${offset} is not valid UTF-8`;
    offset += 1;
  }
  return null;
}

function keyNameProblem(name) {
  if (!name) return "key name is empty";
  const named = `key name ${quote(name)}`;
  if (name.includes("+")) return `${named} contains '+'`;
  for (const ch of name) {
    const code = ch.codePointAt(0);
    if (SPACES.test(ch)) return `${named} contains a space character ${uplus(code)}`;
    if (code < 0x20) return `${named} contains control character ${uplus(code)}`;
    if (code >= 0xd800 && code <= 0xdfff) return `${named} contains lone surrogate ${uplus(code)}, not valid UTF-8`;
  }
  return null;
}

/** Parse `name+hex(keyId)+base64(type || key)` strictly: type 0x01, a log's Ed25519 key, or 0x04, a witness's
 * cosignature/v1 key (C2SP tlog-cosignature). Resolves to {name, keyId, publicKey, algorithm}. */
export async function parseVerifierKey(text) {
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) fail(`verifier key ${quote(text)} is not of the form name+hash+keydata`);
  const [name, hash8, key64] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  const problem = keyNameProblem(name);
  if (problem) fail(`verifier key: ${problem}`);
  if (!/^[0-9a-fA-F]{8}$/.test(hash8)) fail(`verifier key hash ${quote(hash8)} is not 8 hexadecimal digits`);
  const data = b64decode(key64, "verifier key data");
  if (!data.length) fail("verifier key data is empty");
  if (data[0] !== ALG_ED25519 && data[0] !== ALG_COSIGNATURE_V1) {
    fail(`verifier key algorithm 0x${hex(data.slice(0, 1))} is unknown, expected 0x01 (Ed25519) or 0x04 (Ed25519 cosignature/v1)`);
  }
  const publicKey = data.slice(1);
  if (publicKey.length !== 32) fail(`verifier key is ${publicKey.length} bytes, expected 32`);
  const keyId = (await sha256(new TextEncoder().encode(`${name}\n`), data)).slice(0, KEY_ID_SIZE);
  if (hash8.toLowerCase() !== hex(keyId)) {
    fail(`verifier key hash ${hash8} does not match ${hex(keyId)} computed from name and key`);
  }
  return { name, keyId, publicKey, algorithm: data[0] };
}

/** The time (POSIX seconds) of a cosignature/v1 `signature` (timestamp and Ed25519 signature) if it signs note
 * `text` under `publicKey`; throws an Error saying why not. */
async function verifyCosignature(publicKey, signature, text) {
  if (signature.length !== 8 + 64) fail(`cosignature is ${signature.length} bytes, expected 8 + 64`);
  const time = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
  if (time > MAX_TREE_SIZE) fail(`cosignature time ${time} exceeds 2**63 - 1`);
  const message = new TextEncoder().encode(`cosignature/v1\ntime ${time}\n${text}`);
  await verifySignature(publicKey, signature.slice(8), message);
  return Number(time);
}

// The signature rule (docs/data-model.md §3.3; keys/_ed25519.py): RFC 8032 verification by WebCrypto, and
// before it the public key and the signature's R must each be the canonical encoding (y < p) of a point
// whose order is not small. The points of order 1, 2, 4 and 8, as canonical encodings with the sign bit clear:
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
];
const FIELD_PRIME = 2n ** 255n - 19n;

function pointProblem(encoded) {
  const y = BigInt(`0x${hex(encoded.slice().reverse())}`) & (2n ** 255n - 1n);
  if (y >= FIELD_PRIME) return "is not a canonical encoding";
  const cleared = encoded.slice();
  cleared[31] &= 0x7f;
  return SMALL_ORDER.includes(hex(cleared)) ? "is a point of small order" : null;
}

/** Returns if `signature` (64 bytes) is `publicKey`'s (32 bytes) Ed25519 signature of `message` by the
 * signature rule; throws an Error saying why not. */
export async function verifySignature(publicKey, signature, message) {
  if (publicKey.length !== 32) fail(`public key is ${publicKey.length} bytes, expected 32`);
  if (signature.length !== 64) fail(`signature is ${signature.length} bytes, expected 64`);
  for (const [what, point] of [["public key", publicKey], ["signature's R", signature.slice(0, 32)]]) {
    const problem = pointProblem(point);
    if (problem) fail(`Ed25519 ${what} ${problem}`);
  }
  let valid;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    valid = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (exc) {
    if (exc.name === "NotSupportedError") fail("this browser's WebCrypto does not support Ed25519", exc);
    fail(`public key is not a valid Ed25519 key: ${exc.message}`, exc);
  }
  if (!valid) fail("Ed25519 signature does not verify under the given public key");
}

function parseSignatureLine(line, number) {
  const where = `malformed note: signature line ${number}`;
  if (!line.startsWith(SIGNATURE_PREFIX)) fail(`${where} does not start with an em dash (U+2014) and a space`);
  const [name, ...rest] = line.slice(SIGNATURE_PREFIX.length).split(" ");
  const encoded = rest.join(" ");
  const problem = keyNameProblem(name);
  if (problem) fail(`${where}: ${problem}`);
  if (!encoded) fail(`${where} has no signature after the key name`);
  const raw = b64decode(encoded, `${where}: signature`);
  if (raw.length <= KEY_ID_SIZE) {
    fail(`${where}: signature is ${raw.length} bytes, shorter than a key ID and signature`);
  }
  return [name, raw.slice(0, KEY_ID_SIZE), raw.slice(KEY_ID_SIZE)];
}

// Plan: (1) no control characters; (2) split at the last blank line; (3) parse each signature line;
// (4) ignore untrusted keys, verify the others (a witness's as a cosignature); (5) require one by a log key
// (a witness vouches for what a log signed, never instead of it). Returns the
// signed text and, for each trusted witness, the time of its cosignature.
async function openNote(note, verifiers) {
  const trusted = new Map(verifiers.map((v) => [`${v.name}+${hex(v.keyId)}`, v]));
  // (1)
  const problem = characterProblem(note);
  if (problem) fail(`malformed note: contains ${problem}`);
  // (2)
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("malformed note: no blank line between text and signatures");
  const [text, block] = [note.slice(0, split + 1), note.slice(split + 2)];
  if (!block) fail("malformed note: no signature lines after the blank line");
  if (!block.endsWith("\n")) fail("malformed note: last signature line does not end with a newline");
  const lines = block.slice(0, -1).split("\n");
  const count = lines.length;
  if (count > MAX_SIGNATURES) fail(`malformed note: ${count} signatures, at most ${MAX_SIGNATURES} accepted`);
  const message = new TextEncoder().encode(text);
  const [verified, untrusted, cosignedAt] = [new Set(), new Set(), {}];
  for (const [i, line] of lines.entries()) {
    // (3)
    const [name, keyId, signature] = parseSignatureLine(line, i + 1);
    const label = `${name}+${hex(keyId)}`;
    const verifier = trusted.get(label);
    // (4)
    if (!verifier) {
      untrusted.add(label);
      continue;
    }
    try {
      if (verifier.algorithm === ALG_COSIGNATURE_V1) {
        const time = await verifyCosignature(verifier.publicKey, signature, text);
        cosignedAt[name] = Math.max(cosignedAt[name] ?? 0, time);
      } else {
        await verifySignature(verifier.publicKey, signature, message);
      }
    } catch (exc) {
      fail(`signature ${i + 1} by trusted key ${label} does not verify: ${exc.message}`, exc);
    }
    verified.add(name);
  }
  // (5)
  const cosigners = Object.keys(cosignedAt);
  if (verified.size && cosigners.length === verified.size) {
    fail(`no signature by a trusted log key: the note is only cosigned, by ${[...verified].join(", ")}`);
  }
  if (!verified.size) {
    const known = [...trusted.keys()].join(", ") || "none";
    fail(`no signature by a trusted key: note is signed by ${[...untrusted].join(", ")}; trusted: ${known}`);
  }
  return { text, cosignedAt };
}

function parseCheckpoint(text) {
  const malformed = (what) => fail(`malformed checkpoint: ${what}`);
  if (!text.endsWith("\n")) malformed("text does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) malformed(`${lines.length} lines, expected origin, size and root hash`);
  const empty = lines.indexOf(""); // openNote has refused control characters
  if (empty >= 0) malformed(`line ${empty + 1} is empty`);
  const [origin, sizeText, rootText] = lines; // extension lines are allowed and ignored
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText)) {
    malformed(`tree size ${quote(sizeText)} is not a decimal number without leading zeros`);
  }
  const size = BigInt(sizeText);
  const limit = size > MAX_TREE_SIZE ? "2**63 - 1" : "2**53 - 1, the limit of this verifier";
  if (size > MAX_SAFE) malformed(`tree size ${sizeText} exceeds ${limit}`);
  return { origin, size: Number(size), rootHash: b64decode(rootText, "malformed checkpoint: root hash", HASH_SIZE) };
}

/** The checkpoint in `note` signed by `verifierKey` (a key text or array), of `origin` if given, with
 * `cosignedAt`: for each trusted witness key among them, the time of its cosignature. */
export async function openCheckpoint(note, verifierKey, origin) {
  const verifiers = await Promise.all([verifierKey].flat().map(parseVerifierKey));
  const { text, cosignedAt } = await openNote(note, verifiers);
  const checkpoint = { ...parseCheckpoint(text), cosignedAt };
  if (origin != null && checkpoint.origin !== origin) {
    fail(`checkpoint origin is ${quote(checkpoint.origin)}, expected ${quote(String(origin))}`);
  }
  return checkpoint;
}

/** `leaf` (Uint8Array) is at `index` by `proof` (base64) under note `checkpoint`: resolves {ok, size}. */
export async function verifyEntry({ leaf, index, proof, checkpoint }, verifierKey, origin) {
  const leafHash = await hashLeaf(leaf);
  const hashes = proof.map((text, i) => b64decode(text, `proof hash ${i}`, HASH_SIZE));
  const { size, rootHash } = await openCheckpoint(checkpoint, verifierKey, origin);
  await verifyInclusion(index, size, leafHash, hashes, rootHash);
  return { ok: true, size };
}
