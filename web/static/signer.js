// A member's key in the browser: open the encrypted PKCS#8 key file that keys/_ed25519.py writes, keep the
// key non-extractable in IndexedDB, sign entries exactly as ledger/entries.py does (docs/data-model.md §2,
// §3) and log in as api/auth.py expects (§12). WebCrypto and IndexedDB only, and verify.js's signature
// rule; a failure throws an Error saying what is wrong. The private key is in JavaScript's hands only
// while importKeyFile runs.
import { verifySignature } from "./verify.js";

const ENTRY_DOMAIN = "villageledger/entry/v1\n"; // ledger.entries.SIGNING_DOMAIN
const AUTH_DOMAIN = "villageledger/auth/v1"; // api.auth.AUTH_DOMAIN
const SCHEMA_VERSION = 1;
const DATABASE = "villageledger";
const STORE = "keys";
const VILLAGE = /^[a-z0-9][a-z0-9-]{0,39}$/;
const ENTRY_ID = /^[0-9a-f]{32}$/;
const TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;
const PUBLIC_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/; // canonical base64 of 32 bytes
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PEM = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END \1-----$/;
const WRONG_PASSPHRASE = "cannot decrypt private key: wrong passphrase";

// Object identifiers, dotted, and the names our messages give them
const OID = {
  pbes2: "1.2.840.113549.1.5.13", // RFC 8018 §A.4
  pbkdf2: "1.2.840.113549.1.5.12", // RFC 8018 §A.2
  hmacWithSHA256: "1.2.840.113549.2.9", // RFC 8018 §B.1.2
  aes256CBC: "2.16.840.1.101.3.4.1.42", // NIST CSOR
  ed25519: "1.3.101.112", // RFC 8410 §3
};
const OID_NAMES = {
  ...Object.fromEntries(Object.entries(OID).map(([name, oid]) => [oid, name])),
  "1.2.840.113549.2.7": "hmacWithSHA1",
  "2.16.840.1.101.3.4.1.2": "aes128CBC",
  "1.2.840.113549.1.1.1": "an RSA key",
  "1.2.840.10045.2.1": "an EC key",
  "1.3.101.110": "an X25519 key",
  "1.3.101.113": "an Ed448 key",
};
const named = (oid) => (OID_NAMES[oid] ? `${OID_NAMES[oid]} (${oid})` : oid);

// DER tags (X.690 §8): universal, short form
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const NULL = 0x05;
const OBJECT_IDENTIFIER = 0x06;
const SEQUENCE = 0x30;
const TAG_NAMES = {
  [INTEGER]: "INTEGER",
  [OCTET_STRING]: "OCTET STRING",
  [NULL]: "NULL",
  [OBJECT_IDENTIFIER]: "OBJECT IDENTIFIER",
  [SEQUENCE]: "SEQUENCE",
};

const fail = (message, cause) => { throw new Error(message, { cause }); };
const utf8 = (text) => new TextEncoder().encode(text);
const b64encode = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

// Strict: as ledger.canonical.b64decode
function b64decode(text, what) {
  if (typeof text !== "string" || !BASE64.test(text)) fail(`${what} is not valid base64`);
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (b64encode(raw) !== text) fail(`${what} is not canonical base64`);
  return raw;
}

function requireVillage(village) {
  if (typeof village !== "string" || !VILLAGE.test(village)) {
    fail(`village ${JSON.stringify(village)} is not a village slug (lowercase letters, digits, '-')`);
  }
}

function requirePublicKey(what, key) {
  if (typeof key !== "string" || !PUBLIC_KEY.test(key)) {
    fail(`${what} is not a canonical base64 Ed25519 public key (32 bytes)`);
  }
}

function requireSigningKey(key) {
  if (!(key instanceof CryptoKey) || key.type !== "private" || key.algorithm.name !== "Ed25519") {
    fail("privateKey is not an Ed25519 private CryptoKey");
  }
}

// --- DER (X.690), just enough for PKCS#8 and PBES2: definite, minimal lengths; nothing left over ---------

/** The elements that exactly fill `bytes`, as [{tag, body}]. */
function elements(bytes, what) {
  const found = [];
  for (let at = 0; at < bytes.length;) {
    if (bytes.length - at < 2) fail(`${what}: DER is truncated`);
    const tag = bytes[at];
    let length = bytes[at + 1];
    at += 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0) fail(`${what}: DER length is indefinite`);
      if (count > 3) fail(`${what}: DER length is too large`);
      if (at + count > bytes.length) fail(`${what}: DER is truncated`);
      length = bytes.subarray(at, at + count).reduce((n, b) => n * 256 + b, 0);
      if (bytes[at] === 0 || length < 0x80) fail(`${what}: DER length is not minimal`);
      at += count;
    }
    if (at + length > bytes.length) fail(`${what}: DER is truncated`);
    found.push({ tag, body: bytes.subarray(at, at + length) });
    at += length;
  }
  return found;
}

/** The body of `element`, which must have `tag`. */
function body(element, tag, what) {
  if (element === undefined) fail(`${what}: expected ${TAG_NAMES[tag]}, found nothing`);
  if (element.tag !== tag) fail(`${what}: expected ${TAG_NAMES[tag]}, found tag 0x${element.tag.toString(16)}`);
  return element.body;
}

/** `bytes` as exactly one element. */
function only(bytes, what) {
  const found = elements(bytes, what);
  if (found.length !== 1) fail(`${what}: expected one DER element, found ${found.length}`);
  return found[0];
}

/** The fields of the SEQUENCE `element`: from `min` to `max` of them. */
function sequence(element, what, min, max = min) {
  const fields = elements(body(element, SEQUENCE, what), what);
  if (fields.length < min || fields.length > max) {
    fail(`${what}: ${fields.length} fields, expected ${min === max ? min : `${min} to ${max}`}`);
  }
  return fields;
}

/** A non-negative INTEGER below 2**31 (iteration counts, key lengths, versions). */
function integer(element, what) {
  const bytes = body(element, INTEGER, what);
  const minimal = bytes.length === 1 || (bytes.length > 1 && !(bytes[0] === 0 && bytes[1] < 0x80));
  if (!minimal) fail(`${what}: INTEGER is not minimal`);
  if (bytes[0] & 0x80) fail(`${what}: INTEGER is negative`);
  if (bytes.length > 4) fail(`${what}: INTEGER is too large`);
  return bytes.reduce((n, b) => n * 256 + b, 0);
}

/** The dotted form of an OBJECT IDENTIFIER. */
function oid(element, what) {
  const bytes = body(element, OBJECT_IDENTIFIER, what);
  const arcs = [];
  let arc = 0;
  for (const [i, b] of bytes.entries()) {
    if (arc === 0 && b === 0x80) fail(`${what}: OBJECT IDENTIFIER is not minimal`);
    arc = arc * 128 + (b & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER) fail(`${what}: OBJECT IDENTIFIER arc is too large`);
    if (b & 0x80) {
      if (i === bytes.length - 1) fail(`${what}: OBJECT IDENTIFIER is truncated`);
      continue;
    }
    arcs.push(arc);
    arc = 0;
  }
  if (!arcs.length) fail(`${what}: OBJECT IDENTIFIER is empty`);
  const first = Math.min(Math.floor(arcs[0] / 40), 2);
  return [first, arcs[0] - 40 * first, ...arcs.slice(1)].join(".");
}

/** An AlgorithmIdentifier (RFC 5280 §4.1.1.2) that must be `expected`: its parameters, if any. */
function algorithm(element, expected, what, supported) {
  const [identifier, parameters] = sequence(element, what, 1, 2);
  const found = oid(identifier, what);
  if (found !== expected) fail(`${what} ${named(found)} is not supported; ${supported}`);
  return parameters;
}

// --- the key file: PEM, EncryptedPrivateKeyInfo (RFC 5958 §3), PBES2 (RFC 8018 §6.2) ----------------

const SUPPORTED = "villageledger key files use PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC";

function readPem(text) {
  if (typeof text !== "string") fail("key file is not text");
  const found = PEM.exec(text.trim());
  if (!found) fail("key file is not a PEM file (-----BEGIN ENCRYPTED PRIVATE KEY-----)");
  const [, label, base64] = found;
  if (label === "PRIVATE KEY") fail("private key is not encrypted; refusing to use a plaintext key");
  if (label !== "ENCRYPTED PRIVATE KEY") fail(`key file holds a ${label}, expected an ENCRYPTED PRIVATE KEY`);
  return b64decode(base64.replace(/\r?\n/g, ""), "key file's PEM body");
}

/** {salt, iterations, iv, ciphertext} from the DER of an EncryptedPrivateKeyInfo under PBES2. */
function readEncryptedPrivateKeyInfo(der) {
  const [encryption, data] = sequence(only(der, "key file"), "EncryptedPrivateKeyInfo", 2);
  const pbes2 = algorithm(encryption, OID.pbes2, "key file encryption", SUPPORTED);
  const [kdf, scheme] = sequence(pbes2, "PBES2 parameters", 2);
  const pbkdf2 = algorithm(kdf, OID.pbkdf2, "key derivation function", SUPPORTED);
  const [salt, count, ...optional] = sequence(pbkdf2, "PBKDF2 parameters", 2, 4);
  const keyLength = optional[0]?.tag === INTEGER ? integer(optional.shift(), "PBKDF2 key length") : 32;
  if (keyLength !== 32) fail(`PBKDF2 key length is ${keyLength} bytes, expected 32 for AES-256`);
  if (!optional.length) fail(`PBKDF2 PRF is the default, hmacWithSHA1, which is not supported; ${SUPPORTED}`);
  if (optional.length > 1) fail("PBKDF2 parameters: a field after the PRF");
  const prfParameters = algorithm(optional[0], OID.hmacWithSHA256, "PBKDF2 PRF", SUPPORTED);
  if (prfParameters !== undefined && body(prfParameters, NULL, "PBKDF2 PRF parameters").length) {
    fail("PBKDF2 PRF parameters: NULL is not empty");
  }
  const iterations = integer(count, "PBKDF2 iteration count");
  if (iterations < 1) fail("PBKDF2 iteration count is 0");
  const iv = body(algorithm(scheme, OID.aes256CBC, "key file cipher", SUPPORTED), OCTET_STRING, "AES-CBC IV");
  if (iv.length !== 16) fail(`AES-CBC IV is ${iv.length} bytes, expected 16`);
  return {
    salt: body(salt, OCTET_STRING, "PBKDF2 salt"),
    iterations,
    iv,
    ciphertext: body(data, OCTET_STRING, "encrypted key"),
  };
}

async function decrypt({ salt, iterations, iv, ciphertext }, passphrase) {
  if (typeof passphrase !== "string") fail("the passphrase is not a string");
  if (!passphrase) fail("cannot decrypt private key: the passphrase is empty");
  const secret = await crypto.subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveKey"]);
  const pbkdf2 = { name: "PBKDF2", hash: "SHA-256", salt, iterations };
  const key = await crypto.subtle.deriveKey(pbkdf2, secret, { name: "AES-CBC", length: 256 }, false, ["decrypt"]);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, ciphertext));
  } catch (exc) {
    fail(WRONG_PASSPHRASE, exc); // the padding check failed
  }
}

/** The algorithm of a PKCS#8 PrivateKeyInfo (RFC 5958 §2), or null if `der` is none: what a wrong
 * passphrase decrypts to, the 1 time in 256 that its padding looks right. */
function privateKeyAlgorithm(der) {
  try {
    const [version, identifier] = sequence(only(der, "PrivateKeyInfo"), "PrivateKeyInfo", 3, 5);
    if (integer(version, "PrivateKeyInfo version") > 1) return null;
    return oid(sequence(identifier, "PrivateKeyInfo algorithm", 1, 2)[0], "PrivateKeyInfo algorithm");
  } catch {
    return null;
  }
}

async function importPkcs8(pkcs8, extractable) {
  try {
    return await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, extractable, ["sign"]);
  } catch (exc) {
    if (exc.name === "NotSupportedError") fail("this browser's WebCrypto does not support Ed25519", exc);
    fail(WRONG_PASSPHRASE, exc);
  }
}

// WebCrypto derives no public key from a private one, but puts it in a private JWK (RFC 8037 §2: x). That
// JWK also holds the private key (d), as a string JavaScript cannot zero: it is dropped at once.
async function publicKeyOf(pkcs8) {
  const { x } = await crypto.subtle.exportKey("jwk", await importPkcs8(pkcs8, true));
  return `${x.replaceAll("-", "+").replaceAll("_", "/")}=`;
}

/**
 * The member key in an encrypted PKCS#8 PEM written by `keys.SigningKey.to_encrypted_pem`: resolves to
 * {privateKey: a non-extractable Ed25519 CryptoKey for "sign", publicKey: its 32 bytes in base64}.
 * Throws if the passphrase is wrong, the key is unencrypted, not Ed25519, or the file is malformed.
 */
export async function importKeyFile(pemText, passphrase) {
  // (1) PEM and DER; (2) PBKDF2, AES-256-CBC; (3) an Ed25519 PKCS#8; (4) its public key, from an
  // extractable import that is then dropped; (5) the key to keep; the plaintext is zeroed whatever happens.
  const encrypted = readEncryptedPrivateKeyInfo(readPem(pemText)); // (1)
  const pkcs8 = await decrypt(encrypted, passphrase); // (2)
  try {
    const found = privateKeyAlgorithm(pkcs8); // (3)
    if (found === null) fail(WRONG_PASSPHRASE);
    if (found !== OID.ed25519) fail(`private key is ${named(found)}, expected an Ed25519 key`);
    const publicKey = await publicKeyOf(pkcs8); // (4)
    return { privateKey: await importPkcs8(pkcs8, false), publicKey }; // (5)
  } finally {
    pkcs8.fill(0);
  }
}

// --- IndexedDB: {privateKey, publicKey, member?} per village ------------------------------------------

const settled = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

async function inStore(mode, use) {
  let database;
  try {
    const opening = indexedDB.open(DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
    database = await settled(opening);
    const transaction = database.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onabort = () => reject(transaction.error);
    });
    const [result] = await Promise.all([settled(use(transaction.objectStore(STORE))), done]);
    return result;
  } catch (exc) {
    fail(`this browser's key store (IndexedDB) failed: ${exc?.message ?? exc}`, exc);
  } finally {
    database?.close();
  }
}

/** Keep `record` {privateKey (non-extractable), publicKey, member?} as the key for `village`. */
export async function saveKey(village, { privateKey, publicKey, member } = {}) {
  requireVillage(village);
  requireSigningKey(privateKey);
  if (privateKey.extractable) fail("refusing to store an extractable private key");
  requirePublicKey("publicKey", publicKey);
  if (member !== undefined && typeof member !== "string") fail("member is not a string");
  const record = member === undefined ? { privateKey, publicKey } : { privateKey, publicKey, member };
  await inStore("readwrite", (store) => store.put(record, village));
}

/** The record saved for `village`, or null. */
export async function loadKey(village) {
  requireVillage(village);
  return (await inStore("readonly", (store) => store.get(village))) ?? null;
}

/** Delete the key saved for `village` (nothing if there is none). */
export async function forgetKey(village) {
  requireVillage(village);
  await inStore("readwrite", (store) => store.delete(village));
}

// --- canonical JSON (RFC 8785), entries and signatures -------------------------------------------------

/**
 * RFC 8785 (JCS) text of a JSON value: members sorted by UTF-16 code units, strings and numbers as
 * ECMAScript's JSON.stringify writes them (RFC 8785 §3.2.2). Throws, naming where, for anything that is
 * not JSON: undefined, functions, symbols, bigints, NaN and ±Infinity, lone surrogates, objects that are
 * not plain, and cycles. Unlike ledger.canonical it cannot refuse integers beyond 2**53 - 1: in
 * JavaScript they are already doubles.
 */
export function canonicalize(value) {
  return serialise(value, "value", new Set());
}

function serialise(value, where, open) {
  const refuse = (why) => fail(`cannot canonicalise ${where}: ${why}`);
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "number" && !Number.isFinite(value)) refuse(`${value} is not a finite number`);
  if (typeof value === "string" && !value.isWellFormed()) refuse("string contains a lone surrogate");
  if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object") return refuse(`${typeof value} is not a JSON value`);
  if (open.has(value)) return refuse("it contains itself");
  open.add(value);
  let text;
  if (Array.isArray(value)) {
    text = `[${Array.from(value, (item, i) => serialise(item, `${where}[${i}]`, open)).join(",")}]`;
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      refuse(`${prototype.constructor?.name ?? "object"} is not a plain object`);
    }
    const members = Object.keys(value).sort().map((key) => {
      if (!key.isWellFormed()) refuse("a member name contains a lone surrogate");
      return `${JSON.stringify(key)}:${serialise(value[key], `${where}.${key}`, open)}`;
    });
    text = `{${members.join(",")}}`;
  }
  open.delete(value);
  return text;
}

const utcNow = () => new Date().toISOString().replace(/\.[0-9]{3}Z$/, "Z");
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const newEntryId = () => hex(crypto.getRandomValues(new Uint8Array(16))); // 128 random bits

/**
 * The unsigned part of a new entry, as ledger.entries.make_unsigned: {v: 1, kind, village, id, time,
 * author, [cosigner,] body}. `id` defaults to 128 random bits in hex and `time` to now (UTC, to the second).
 * Checks the envelope's formats; the body is the server's to check.
 */
export function makeUnsigned({ kind, village, body, author, cosigner, time, id }) {
  id ??= newEntryId();
  time ??= utcNow();
  if (typeof kind !== "string" || !kind) fail("kind is not a non-empty string");
  requireVillage(village);
  if (typeof id !== "string" || !ENTRY_ID.test(id)) fail(`id ${JSON.stringify(id)} is not 32 lowercase hex digits`);
  if (typeof time !== "string" || !TIME.test(time)) {
    fail(`time ${JSON.stringify(time)} is not a UTC time YYYY-MM-DDTHH:MM:SSZ`);
  }
  requirePublicKey("author", author);
  if (body === null || typeof body !== "object" || Array.isArray(body)) fail("body is not a JSON object");
  const entry = { v: SCHEMA_VERSION, kind, village, id, time, author, body: { ...body } };
  if (cosigner != null) {
    requirePublicKey("cosigner", cosigner);
    if (cosigner === author) fail("cosigner must be a different key from the author");
    entry.cosigner = cosigner;
  }
  return entry;
}

async function requireSignature(publicKey, sig, message, problem) {
  try {
    await verifySignature(b64decode(publicKey, "public key"), b64decode(sig, "signature"), message);
  } catch (exc) {
    fail(problem, exc);
  }
}

/** The base64 Ed25519 signature of `message`, checked under `publicKey` before it is handed out. */
async function signWith(privateKey, publicKey, message) {
  requireSigningKey(privateKey);
  requirePublicKey("publicKey", publicKey);
  const sig = b64encode(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message)));
  await requireSignature(publicKey, sig, message, `privateKey is not the private key of ${publicKey}`);
  return sig;
}

/** Canonical text of `unsigned` and its signing message (ledger.entries.signing_message). */
function signable(unsigned) {
  const text = canonicalize(unsigned);
  return [text, utf8(ENTRY_DOMAIN + text)];
}

/**
 * The wire form {entry, signatures: [{key, sig}]} of `unsigned` signed by its author. `entry` is a copy
 * of exactly what was signed. An entry that names a cosigner then goes to `cosign`.
 */
export async function signEntry(unsigned, privateKey, publicKey) {
  if (unsigned?.author !== publicKey) fail(`the entry's author is ${unsigned?.author}, not ${publicKey}`);
  const [text, message] = signable(unsigned);
  const sig = await signWith(privateKey, publicKey, message);
  return { entry: JSON.parse(text), signatures: [{ key: publicKey, sig }] };
}

/**
 * `wire`, signed by its author only, with the cosigner's signature appended. Requires that the entry names
 * `publicKey` as its cosigner and that the author's signature verifies: a cosigner never endorses a forgery.
 */
export async function cosign(wire, privateKey, publicKey) {
  const { entry, signatures } = wire ?? {};
  if (entry?.cosigner !== publicKey) fail(`the entry's cosigner is ${entry?.cosigner}, not ${publicKey}`);
  if (!Array.isArray(signatures) || signatures.length !== 1 || signatures[0]?.key !== entry.author) {
    fail("a cosigner signs an entry that has exactly one signature, its author's");
  }
  const [text, message] = signable(entry);
  await requireSignature(entry.author, signatures[0].sig, message, "the author's signature does not verify");
  const sig = await signWith(privateKey, publicKey, message);
  const author = { key: entry.author, sig: signatures[0].sig };
  return { entry: JSON.parse(text), signatures: [author, { key: publicKey, sig }] };
}

// --- login (api/auth.py) ----------------------------------------------------------------------------------

async function postJson(url, request) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: request === undefined ? {} : { "Content-Type": "application/json" },
      body: request === undefined ? undefined : JSON.stringify(request),
    });
  } catch (exc) {
    fail(`cannot reach ${url}: ${exc.message}`, exc);
  }
  const answer = await response.json().catch(() => null); // an RFC 9457 problem, if not 2xx
  if (!response.ok) fail(`login refused (HTTP ${response.status}): ${answer?.detail ?? response.statusText}`);
  if (answer === null) fail(`${url} did not answer JSON`);
  return answer;
}

/**
 * Log in to `village` at `baseUrl` (the server's origin, "" for this page's) with a member key: resolves
 * to {token, member, roles, expires_in}. Signs only the login message of the server's challenge.
 */
export async function login(baseUrl, village, privateKey, publicKey) {
  // (1) a challenge; (2) its login message, and nothing else the server might ask to sign; (3) the token
  requireVillage(village);
  const auth = `${baseUrl.replace(/\/+$/, "")}/api/v1/villages/${village}/auth`;
  const { challenge, message } = await postJson(`${auth}/challenge`); // (1)
  if (typeof challenge !== "string" || message !== `${AUTH_DOMAIN}\n${village}\n${challenge}`) { // (2)
    fail("refusing to sign: the server's message is not the login message for its challenge");
  }
  const signature = await signWith(privateKey, publicKey, utf8(message));
  return postJson(`${auth}/token`, { key: publicKey, challenge, signature }); // (3)
}
