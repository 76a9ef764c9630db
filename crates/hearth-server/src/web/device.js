// The browser side of Hearth access control (docs/access.md): the device
// key, the paired state, sessions and signed requests.
//
// The device key is a WebCrypto ECDSA P-256 key pair made with
// `extractable: false` and kept in IndexedDB, so page script can ask it to
// sign but cannot read the private key out. After pairing, every request
// carries a `Hearth-Proof` signed with it.
//
// Everything above "Browser storage" needs only WebCrypto, so Node imports
// this module for tests (tests/e2e/device_proof.mjs). The rest touches
// IndexedDB, sessionStorage and `location` only when called.

// ---------------------------------------------------------------------------
// Request proofs

/** Header names of the access protocol. */
export const HEADERS = Object.freeze({
  binding: "Hearth-Binding",
  device: "Hearth-Device",
  session: "Hearth-Session",
  proof: "Hearth-Proof",
});

export const HEALTH_PATH = "/api/v1/health";
export const LOGIN_PATH = "/api/v1/login";
export const LOGOUT_PATH = "/api/v1/logout";

/** First line of every signed string. */
const PROOF_LABEL = "hearth-request-proof/v1";

// Field limits of the signed string, the same as `hearth_access::proof`.
const MAX_METHOD_LENGTH = 16;
const MAX_TARGET_LENGTH = 8 * 1024;
const MIN_NONCE_LENGTH = 22;
const MAX_NONCE_LENGTH = 64;
const MAX_SESSION_ID_LENGTH = 64;

/** Random bytes in a nonce: 16 bytes are 128 bits, 22 base64url characters. */
const NONCE_BYTES = 16;

/** Length of the TLS exporter value that `Hearth-Binding` carries. */
const EXPORTER_BYTES = 32;

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" };

/** Multicodec `p256-pub` (0x1200) as an unsigned varint, the did:key prefix of a compressed P-256 key. */
const P256_MULTICODEC = [0x80, 0x24];
const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ENCODER = new TextEncoder();

/** Encodes bytes as base64url without padding. */
export function encodeBase64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url without padding; throws on any other character. */
export function decodeBase64url(text) {
  if (typeof text !== "string" || !BASE64URL.test(text) || text.length % 4 === 1) {
    throw new Error(`invalid base64url value of ${String(text?.length)} characters`);
  }
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** Returns a fresh nonce: 16 random bytes in base64url (22 characters). */
export function newNonce() {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

/** Returns the current Unix time in whole seconds. */
export function unixSeconds(milliseconds = Date.now()) {
  return Math.floor(milliseconds / 1000);
}

/**
 * Returns whether `value` is a `Hearth-Binding` value: the canonical
 * base64url encoding of 32 bytes.
 */
export function isBindingValue(value) {
  if (typeof value !== "string") return false;
  try {
    const bytes = decodeBase64url(value);
    return bytes.length === EXPORTER_BYTES && encodeBase64url(bytes) === value;
  } catch {
    return false;
  }
}

/**
 * Builds the string a device signs: seven lines joined by "\n", no trailing
 * newline. Throws when a field breaks the syntax that the server's
 * `hearth_access::proof::signed_string` checks, so a request that the
 * server would reject as malformed is never sent.
 *
 * `target` is the path and query exactly as sent; `binding` the last
 * `Hearth-Binding` value; `sessionId` is empty at sign-in.
 */
export function proofString({ method, target, timestamp, nonce, binding, sessionId = "" }) {
  checkField("method", method, 1, MAX_METHOD_LENGTH, /^[A-Z]+$/);
  checkField("path and query", target, 1, MAX_TARGET_LENGTH, /^\/[\x21-\x7e]*$/);
  checkField("nonce", nonce, MIN_NONCE_LENGTH, MAX_NONCE_LENGTH, BASE64URL);
  checkField("session id", sessionId, 0, MAX_SESSION_ID_LENGTH, BASE64URL);
  if (!isBindingValue(binding)) {
    throw new Error("invalid request proof binding: expected the base64url encoding of 32 bytes");
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new Error(`invalid request proof timestamp ${timestamp}: expected Unix seconds`);
  }

  return [PROOF_LABEL, method, target, String(timestamp), nonce, binding, sessionId].join("\n");
}

/** Formats the `Hearth-Proof` header value `v1;t=<timestamp>;n=<nonce>;s=<signature>`. */
export function encodeProofHeader({ timestamp, nonce, signature }) {
  return `v1;t=${timestamp};n=${nonce};s=${encodeBase64url(signature)}`;
}

/**
 * Signs one request with the device's private key: ECDSA P-256 with
 * SHA-256, which WebCrypto returns as the raw 64-byte `r || s` that the
 * server expects. `timestamp` and `nonce` default to now and a fresh value.
 *
 * Returns `{ header, signedString, timestamp, nonce, signature }`.
 */
export async function signProof(
  privateKey,
  { method, target, binding, sessionId = "", timestamp = unixSeconds(), nonce = newNonce() },
) {
  const signedString = proofString({ method, target, timestamp, nonce, binding, sessionId });
  const signature = new Uint8Array(await crypto.subtle.sign(ECDSA_SHA256, privateKey, ENCODER.encode(signedString)));
  const header = encodeProofHeader({ timestamp, nonce, signature });
  return { header, signedString, timestamp, nonce, signature };
}

/**
 * Returns the `error` code of a `WWW-Authenticate: HearthProof …` challenge
 * (`missing`, `binding`, `invalid`, `expired` or `revoked`), or null.
 */
export function proofErrorCode(response) {
  const challenge = response.headers.get("WWW-Authenticate") ?? "";
  if (!/^\s*HearthProof\b/i.test(challenge)) return null;
  return /\berror="([^"]*)"/.exec(challenge)?.[1] ?? null;
}

function checkField(field, value, minLength, maxLength, alphabet) {
  if (typeof value !== "string") {
    throw new Error(`invalid request proof ${field}: expected a string`);
  }
  if (value.length < minLength || value.length > maxLength) {
    throw new Error(`invalid request proof ${field}: ${value.length} characters, expected ${minLength} to ${maxLength}`);
  }
  if (!alphabet.test(value)) {
    throw new Error(`invalid request proof ${field}: contains a character outside its alphabet`);
  }
}

// ---------------------------------------------------------------------------
// Device keys

/**
 * Generates a device key pair: ECDSA P-256 with a non-extractable private
 * key. WebCrypto always leaves the public key extractable.
 */
export function createDeviceKey() {
  return crypto.subtle.generateKey(ECDSA_P256, false, ["sign", "verify"]);
}

/** Exports a P-256 public key as the 65-byte uncompressed SEC 1 point (0x04, x, y). */
export async function exportPublicKey(publicKey) {
  return new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
}

/**
 * Returns the did:key of a P-256 public key given as the 65-byte
 * uncompressed point: `did:key:z` and the base58btc encoding of the
 * multicodec prefix and the 33-byte compressed point, as the server's
 * `hearth_access::did` names it.
 */
export function didFromP256(rawPublicKey) {
  if (rawPublicKey.length !== 65 || rawPublicKey[0] !== 4) {
    throw new Error(`invalid P-256 public key of ${rawPublicKey.length} bytes: expected a 65-byte uncompressed point`);
  }
  const compressed = new Uint8Array(P256_MULTICODEC.length + 33);
  compressed.set(P256_MULTICODEC);
  compressed[P256_MULTICODEC.length] = rawPublicKey[64] & 1 ? 3 : 2;
  compressed.set(rawPublicKey.subarray(1, 33), P256_MULTICODEC.length + 1);
  return `did:key:z${encodeBase58(compressed)}`;
}

function encodeBase58(bytes) {
  let leadingZeros = 0;
  while (leadingZeros < bytes.length && bytes[leadingZeros] === 0) leadingZeros += 1;

  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let digits = "";
  while (value > 0n) {
    digits = BASE58_ALPHABET[Number(value % 58n)] + digits;
    value /= 58n;
  }
  return "1".repeat(leadingZeros) + digits;
}

// ---------------------------------------------------------------------------
// Signed requests and sessions

/** A failed API request, with the server's `{"error": …}` text. */
export class ApiError extends Error {
  constructor(status, message, { proofError = null, retryAfterSeconds = null } = {}) {
    super(message);
    this.name = "ApiError";
    /** HTTP status code. */
    this.status = status;
    /** The `error` code of a `WWW-Authenticate: HearthProof` challenge, or null. */
    this.proofError = proofError;
    /** Seconds from a `Retry-After` header (sign-in back-off), or null. */
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Builds the error from a failed response, reading its JSON body. */
  static async from(response) {
    const body = await response.json().catch(() => null);
    const text = typeof body?.error === "string" ? body.error : `${response.status} ${response.statusText}`;
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    return new ApiError(response.status, text, {
      proofError: proofErrorCode(response),
      retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null,
    });
  }
}

/** Raised when this browser has no paired device key. */
export class NotPairedError extends Error {
  constructor() {
    super("this browser is not paired with the server: open the pairing link from hearth pair");
    this.name = "NotPairedError";
  }
}

/**
 * One paired device talking to one server origin: signs each request,
 * follows the server's `Hearth-Binding` and stores the session id.
 *
 * `sessionStore` is `sessionStorage` in a page (or any object with
 * getItem, setItem and removeItem); `onSessionEnded(reason)` runs with
 * "expired" or "revoked" when the server ends the session.
 */
export class DeviceClient {
  #keyPair;
  #did;
  #origin;
  #fetch;
  #sessionStore;
  #onSessionEnded;
  #binding = null;
  #session = null;

  constructor({ keyPair, did, origin, fetch = globalThis.fetch, sessionStore = null, onSessionEnded = () => {} }) {
    this.#keyPair = keyPair;
    this.#did = did;
    this.#origin = new URL(origin).origin;
    // Browsers throw "Illegal invocation" when fetch runs with another
    // `this` than the window, as a method call on this object would.
    this.#fetch = (input, init) => fetch(input, init);
    this.#sessionStore = sessionStore;
    this.#onSessionEnded = onSessionEnded;
    this.#session = this.#loadSession();
  }

  /** Forgets the session here; the server keeps it until it expires. */
  clearSession() {
    this.#session = null;
    this.#sessionStore?.removeItem(SESSION_STORAGE_KEY);
  }

  /**
   * Sends a signed request, like `fetch`, and returns its response.
   *
   * `path` is a path on the server's origin with an optional query. The
   * request carries `Hearth-Session` when a session exists and
   * `Hearth-Device` otherwise (sign-in). When the server responds with 401 and
   * `error="binding"`, because the request travelled on another TLS
   * connection than the one whose value was signed, the request is signed
   * again with the new value and sent once more.
   *
   * NOTE: that second send reuses `options.body`, so a ReadableStream body
   * fails on it; pass strings, Blobs or FormData.
   */
  async fetch(path, options = {}) {
    return this.#signedFetch(path, options, true);
  }

  /**
   * Signs in: `POST /api/v1/login` with `{name, password}`, signed with an
   * empty session id. Stores and returns the session
   * (`{session_id, expires_at, user, device}`); throws ApiError when the
   * server rejects the sign-in.
   */
  async signIn(name, password) {
    this.clearSession();

    const response = await this.#signedFetch(
      LOGIN_PATH,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, password }) },
      true,
    );
    if (!response.ok) throw await ApiError.from(response);

    const session = await response.json();
    if (typeof session?.session_id !== "string" || !BASE64URL.test(session.session_id)) {
      throw new ApiError(response.status, "sign-in response has no valid session_id");
    }
    this.#session = session;
    this.#sessionStore?.setItem(SESSION_STORAGE_KEY, JSON.stringify(session));
    return session;
  }

  /**
   * Stores a session that another sign-in opened with this device's proof
   * (a passkey, passkeys.js) and returns it; throws ApiError when it has no
   * valid session_id. `signIn` does the same with the password's answer.
   */
  adoptSession(session) {
    if (typeof session?.session_id !== "string" || !BASE64URL.test(session.session_id)) {
      throw new ApiError(200, "sign-in response has no valid session_id");
    }
    this.#session = session;
    this.#sessionStore?.setItem(SESSION_STORAGE_KEY, JSON.stringify(session));
    return session;
  }

  /** Signs out: `POST /api/v1/logout`, then clears the session even if that failed. */
  async signOut() {
    if (this.#session === null) return;
    try {
      await this.#signedFetch(LOGOUT_PATH, { method: "POST" }, false);
    } finally {
      this.clearSession();
    }
  }

  /** Fetches a new `Hearth-Binding` value from the public health check. */
  async refreshBinding() {
    const response = await this.#fetch(new URL(HEALTH_PATH, this.#origin).href, { cache: "no-store" });
    this.#recordBinding(response);
    if (this.#binding === null) {
      throw new Error(`${HEALTH_PATH} returned no valid ${HEADERS.binding} header: the server does not support request proofs`);
    }
  }

  /** The current session as the sign-in returned it, or null. */
  get session() {
    return this.#session;
  }

  /** The device's did:key. */
  get did() {
    return this.#did;
  }

  /** The last `Hearth-Binding` value received, or null before the first response. */
  get binding() {
    return this.#binding;
  }

  async #signedFetch(path, options, notifySessionEnd) {
    const target = this.#requestTarget(path);
    // fetch upper-cases only the six standard methods (not PATCH), and the
    // server compares the method byte for byte.
    const method = (options.method ?? "GET").toUpperCase();
    if (this.#binding === null) await this.refreshBinding();

    let response = await this.#send(method, target, options);
    if (response.status === 401 && proofErrorCode(response) === "binding") {
      response = await this.#send(method, target, options);
    }

    if (response.status === 401 && notifySessionEnd) this.#noticeRejection(response);
    return response;
  }

  async #send(method, target, options) {
    const sessionId = this.#session?.session_id ?? "";
    // NOTE: the timestamp comes from this device's clock. A device whose
    // clock is more than 60 s off the server's cannot make valid proofs.
    const proof = await signProof(this.#keyPair.privateKey, { method, target, binding: this.#binding, sessionId });

    const headers = new Headers(options.headers);
    if (sessionId) {
      headers.set(HEADERS.session, sessionId);
    } else {
      headers.set(HEADERS.device, this.#did);
    }
    headers.set(HEADERS.proof, proof.header);

    // A response from the HTTP cache would carry the binding of an old
    // connection, so signed requests skip the cache unless `options.cache` is set.
    const init = { cache: "no-store", ...options, method, headers };
    const response = await this.#fetch(this.#origin + target, init);
    this.#recordBinding(response);
    return response;
  }

  /** Returns the path and query that fetch sends for `path`, which is what gets signed. */
  #requestTarget(path) {
    const url = new URL(path, this.#origin);
    if (url.origin !== this.#origin) {
      throw new Error(`signed requests go only to ${this.#origin}, not to ${url.origin}`);
    }
    return url.pathname + url.search;
  }

  #recordBinding(response) {
    const value = response.headers.get(HEADERS.binding);
    if (isBindingValue(value)) this.#binding = value;
  }

  #noticeRejection(response) {
    const code = proofErrorCode(response);
    if (code === "revoked") {
      this.clearSession();
      this.#onSessionEnded("revoked");
    } else if (this.#session !== null && (code === "expired" || code === "missing")) {
      this.clearSession();
      this.#onSessionEnded("expired");
    }
  }

  #loadSession() {
    const stored = this.#sessionStore?.getItem(SESSION_STORAGE_KEY);
    if (!stored) return null;
    try {
      const session = JSON.parse(stored);
      return typeof session?.session_id === "string" && BASE64URL.test(session.session_id) ? session : null;
    } catch {
      return null;
    }
  }
}

// ---------------------------------------------------------------------------
// Browser storage and the page-wide client

const DATABASE_NAME = "hearth";
const DATABASE_VERSION = 1;
const STORE_NAME = "device";
const KEY_RECORD = "key";
const PAIRING_RECORD = "pairing";

/** sessionStorage entry of the session; never localStorage, so a session ends with its tab. */
const SESSION_STORAGE_KEY = "hearth.session";

export const SIGN_IN_PAGE = "/login";
export const PAIR_PAGE = "/pair";

/**
 * Loads the paired device from IndexedDB: `{ keyPair, publicKey, pairing }`
 * with the CryptoKeyPair, the base64url raw public key and
 * `{ did, name, user, credential, paired_at }`, or null when this browser
 * is not paired.
 */
export async function loadDevice() {
  const database = await openDatabase();
  try {
    const transaction = database.transaction(STORE_NAME, "readonly");
    const store = transaction.objectStore(STORE_NAME);
    const [key, pairing] = await Promise.all([requestResult(store.get(KEY_RECORD)), requestResult(store.get(PAIRING_RECORD))]);
    if (!key?.keyPair || !pairing?.did) return null;
    return { keyPair: key.keyPair, publicKey: key.public_key, pairing };
  } finally {
    database.close();
  }
}

/**
 * Stores a newly paired device, replacing any earlier one: the
 * CryptoKeyPair object itself (IndexedDB keeps the non-extractable private
 * key without exposing its bytes) and the pairing response. Also ends the
 * session of the earlier device in this tab.
 */
export async function savePairedDevice(keyPair, pairing) {
  const publicKey = encodeBase64url(await exportPublicKey(keyPair.publicKey));
  const database = await openDatabase();
  try {
    const transaction = database.transaction(STORE_NAME, "readwrite");
    const store = transaction.objectStore(STORE_NAME);
    store.put({ keyPair, public_key: publicKey }, KEY_RECORD);
    store.put(pairing, PAIRING_RECORD);
    await transactionDone(transaction);
  } finally {
    database.close();
  }

  sessionStorage.removeItem(SESSION_STORAGE_KEY);
  clientPromise = null;
}

/** Deletes the device key and pairing from this browser. */
export async function forgetDevice() {
  const database = await openDatabase();
  try {
    const transaction = database.transaction(STORE_NAME, "readwrite");
    transaction.objectStore(STORE_NAME).clear();
    await transactionDone(transaction);
  } finally {
    database.close();
  }

  sessionStorage.removeItem(SESSION_STORAGE_KEY);
  clientPromise = null;
}

let sessionEndedHandler = goToSignInOrPairing;
let clientPromise = null;

/**
 * Sets what happens when the server ends the session or the device is not
 * usable: `handler(reason)` with "expired", "revoked" or "unpaired". The
 * default opens the sign-in page, or the pairing page for "revoked" and
 * "unpaired".
 */
export function onSessionEnded(handler) {
  sessionEndedHandler = handler;
}

/**
 * Returns the page's DeviceClient for this browser's paired device. Throws
 * NotPairedError, after calling the session-ended handler with "unpaired",
 * when there is none.
 */
export function deviceClient() {
  clientPromise ??= openClient().catch((error) => {
    clientPromise = null;
    throw error;
  });
  return clientPromise;
}

/** Sends a signed request with the page's client; see DeviceClient#fetch. */
export async function signedFetch(path, options = {}) {
  return (await deviceClient()).fetch(path, options);
}

/** Signs in with the page's client; see DeviceClient#signIn. */
export async function signIn(name, password) {
  return (await deviceClient()).signIn(name, password);
}

/** Signs out with the page's client; see DeviceClient#signOut. */
export async function signOut() {
  return (await deviceClient()).signOut();
}

async function openClient() {
  const device = await loadDevice();
  if (device === null) {
    sessionEndedHandler("unpaired");
    throw new NotPairedError();
  }
  return new DeviceClient({
    keyPair: device.keyPair,
    did: device.pairing.did,
    origin: location.origin,
    sessionStore: sessionStorage,
    onSessionEnded: (reason) => sessionEndedHandler(reason),
  });
}

function goToSignInOrPairing(reason) {
  const page = reason === "revoked" || reason === "unpaired" ? PAIR_PAGE : SIGN_IN_PAGE;
  if (location.pathname !== page) location.assign(page);
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE_NAME, DATABASE_VERSION);
    request.addEventListener("upgradeneeded", () => request.result.createObjectStore(STORE_NAME));
    request.addEventListener("success", () => resolve(request.result));
    request.addEventListener("error", () => reject(request.error));
  });
}

function requestResult(request) {
  return new Promise((resolve, reject) => {
    request.addEventListener("success", () => resolve(request.result));
    request.addEventListener("error", () => reject(request.error));
  });
}

function transactionDone(transaction) {
  return new Promise((resolve, reject) => {
    transaction.addEventListener("complete", () => resolve());
    transaction.addEventListener("error", () => reject(transaction.error));
    transaction.addEventListener("abort", () => reject(transaction.error ?? new Error("IndexedDB transaction aborted")));
  });
}
