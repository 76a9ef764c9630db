// Hearth pairing page (/pair): pairs this browser as a device with a one-time
// offer from `hearth pair`, by SPAKE2 over the offer's code (docs/access.md,
// "Pairing a device"). Every visible string comes from MESSAGES.
//
// The protocol functions are exported and need only WebCrypto and fetch, so
// Node tests import this module. The page itself starts only where a
// `document` exists.

import { passwordScalar, start } from "./spake2.js";
import { createDeviceKey, decodeBase64url, didFromP256, encodeBase64url, exportPublicKey, savePairedDevice, SIGN_IN_PAGE } from "./device.js";

const MESSAGES = {
  en: {
    pageTitle: "Pair this device · Hearth",
    title: "Pair this device",
    intro: "Pairing lets this browser sign in to Hearth. Use the link and code that hearth pair printed; they work once, for 10 minutes.",
    linkLabel: "Pairing link",
    linkHint: "Paste the whole link, starting with https://.",
    codeLabel: "Pairing code",
    codeHint: "8 letters and digits, such as K7QF-9M2D.",
    deviceNameLabel: "Device name",
    deviceNameHint: "Shown in the household's device list.",
    deviceNameDefault: "{browser} on {system}",
    unknownBrowser: "Browser",
    unknownSystem: "unknown system",
    accountLegend: "New account",
    accountIntro: "This offer creates a new account. Choose its user name and password.",
    accountNamedIntro: "This offer creates the account {name}. Choose its password.",
    accountOptionalIntro: "Fill these in only if the offer is for a new account.",
    accountName: "User name",
    password: "Password",
    passwordHint: "At least {min} characters.",
    passwordConfirm: "Password again",
    submit: "Pair",
    submitAccount: "Create account and pair",
    working: "Pairing…",
    paired: "Paired as {device} for {user}. Opening the sign-in page…",
    unsupported: "This browser cannot pair: it needs WebCrypto and IndexedDB, and the page must be opened over HTTPS.",
    linkMissing: "Paste the pairing link first.",
    linkInvalid: "This is not a pairing link. Paste the link that contains #offer=.",
    codeInvalid: "A pairing code has 8 letters and digits, such as K7QF-9M2D.",
    deviceNameInvalid: "Enter a device name of at most 128 bytes, without control characters.",
    nameInvalid: "Enter a user name of 1 to 64 characters, without spaces at the start or end.",
    passwordShort: "The password needs at least {min} characters.",
    passwordLong: "The password is too long: at most {max} bytes.",
    passwordMismatch: "The two passwords differ.",
    accountMissing: "This offer creates a new account: choose a user name and password.",
    wrongCode: {
      one: "The code does not match this offer. {count} attempt left.",
      other: "The code does not match this offer. {count} attempts left.",
    },
    wrongCodeUncounted: "The code does not match this offer. Check it and try again.",
    burned: "Too many wrong codes: this offer no longer works. Ask an admin for a new one (hearth pair).",
    expired: "This pairing offer has expired. Ask an admin for a new one (hearth pair).",
    used: "This pairing offer was already used. Ask an admin for a new one (hearth pair).",
    notFound: "The server does not know this pairing offer. Check the link, or ask an admin for a new one.",
    accountRejected: "The server rejected the account: {error}",
    serverUnverified: "The server did not prove that it knows the code, so this browser did not store the pairing. Ask an admin to check the device list and make a new offer.",
    storageFailed: "The server paired this device, but the browser could not store its key ({error}). Private windows may block storage. Ask an admin to revoke the device and make a new offer.",
    network: "Could not reach the server: {error}",
    failed: "Pairing failed: {error}",
    revokedNotice: "An admin revoked this browser or disabled its account, so it was signed out. Pair it again with a new link from an admin.",
  },
};

export const PAIR_START_PATH = "/api/v1/pair/start";
export const PAIR_FINISH_PATH = "/api/v1/pair/finish";

/** SPAKE2 identities of the two roles. */
const IDENTITY_DEVICE = "hearth device";
const IDENTITY_SERVER = "hearth server";

/** Pairing codes: 8 characters of this alphabet (40 bits). */
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH = 8;

// Limits of the server's account and device checks (`hearth_access::users`
// and `hearth_access::password`).
const MAX_DEVICE_NAME_BYTES = 128;
const MAX_USER_NAME_CHARS = 64;
const MIN_PASSWORD_CHARS = 12;
const MAX_PASSWORD_BYTES = 1024;
const MAX_OFFER_ID_LENGTH = 64;

const ENCODER = new TextEncoder();

// ---------------------------------------------------------------------------
// Protocol

/** A pairing step the server rejected, or a server that failed to prove the code. */
export class PairingError extends Error {
  /**
   * `kind` is one of "wrong_code", "burned", "expired", "used",
   * "not_found", "account", "server_unverified", "server", or "storage"
   * when the browser failed to store a verified pairing.
   */
  constructor(kind, message, { status = null, attemptsLeft = null } = {}) {
    super(message);
    this.name = "PairingError";
    this.kind = kind;
    /** HTTP status of the rejecting response, or null. */
    this.status = status;
    /** Attempts the offer has left after a wrong code, when the server reports them. */
    this.attemptsLeft = attemptsLeft;
  }
}

const ERROR_KINDS = new Set(["wrong_code", "burned", "expired", "used", "not_found", "account"]);

/**
 * Normalises a typed code: upper case, spaces and dashes dropped, O read as
 * 0 and I or L as 1. Returns the 8-character code, or null when the text is
 * not a code.
 */
export function normalizeCode(text) {
  const code = String(text)
    .toUpperCase()
    .replace(/[\s-]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  if (code.length !== CODE_LENGTH) return null;
  return [...code].every((char) => CODE_ALPHABET.includes(char)) ? code : null;
}

/**
 * Reads a pairing link (`https://HOST:PORT/pair#offer=…&code=…`), or just
 * its fragment. Returns `{ offerId, code }` with null for a missing or
 * invalid part.
 */
export function parsePairingLink(text) {
  const trimmed = String(text).trim();
  const hash = trimmed.indexOf("#");
  const fragment = hash >= 0 ? trimmed.slice(hash + 1) : trimmed;
  const params = new URLSearchParams(fragment);

  const offer = params.get("offer");
  const offerId = offer && offer.length <= MAX_OFFER_ID_LENGTH && /^[A-Za-z0-9_-]+$/.test(offer) ? offer : null;
  const code = params.has("code") ? normalizeCode(params.get("code")) : null;
  return { offerId, code };
}

/**
 * Guesses the browser and operating system for the default device name.
 * `brands` and `platform` are from `navigator.userAgentData` where the
 * browser has it (Chromium); otherwise the user agent string decides.
 * Returns `{ browser, system }`, each null when unknown.
 */
export function describeBrowser(userAgent = "", brands = [], platform = "") {
  const brandNames = brands.map((brand) => brand.brand).filter((name) => !/not.?a.?brand/i.test(name));
  const browser =
    brandNames.find((name) => name !== "Chromium") ??
    brandNames[0] ??
    firstMatch(userAgent, [
      [/Edg\//, "Edge"],
      [/OPR\//, "Opera"],
      [/Firefox\//, "Firefox"],
      [/Chromium\//, "Chromium"],
      [/Chrome\//, "Chrome"],
      [/Safari\//, "Safari"],
    ]);
  const system =
    (platform || null) ??
    firstMatch(userAgent, [
      [/Android/, "Android"],
      [/iPhone|iPod/, "iOS"],
      [/iPad/, "iPadOS"],
      [/CrOS/, "ChromeOS"],
      [/Windows/, "Windows"],
      [/Mac OS X|Macintosh/, "macOS"],
      [/Linux/, "Linux"],
    ]);
  return { browser, system };
}

/** Returns the SPAKE2 additional data: `<offer_id>\n<device_key>\n<device_name>`. */
export function pairingAdditionalData(offerId, deviceKey, deviceName) {
  return `${offerId}\n${deviceKey}\n${deviceName}`;
}

/**
 * Runs the first half of pairing: derives the password scalar from the
 * code and offer id, sends this device's SPAKE2 share with
 * `POST /api/v1/pair/start`, and computes the confirmation from the
 * server's share.
 *
 * Returns `{ needsAccount, accountName, finish(account) }`. `needsAccount`
 * is the server's `needs_account` (true, false, or null when absent), and
 * `accountName` its `account_name`: the name a new-user offer fixes, or null
 * when the person pairing chooses it. `finish`
 * sends the confirmation, with `account` (`{name, password}`) for a
 * new-user offer, checks the server's confirmation and that the server
 * named this key's did, and returns `{ device, user, credential }`. It
 * stores nothing, so the caller stores the pairing only once it is
 * verified.
 */
export async function startPairing({ offerId, code, deviceName, keyPair, fetch = globalThis.fetch }) {
  const rawPublicKey = await exportPublicKey(keyPair.publicKey);
  const deviceKey = encodeBase64url(rawPublicKey);
  const w = await passwordScalar(code, offerId);
  const aad = pairingAdditionalData(offerId, deviceKey, deviceName);
  const exchange = start("A", w, IDENTITY_DEVICE, IDENTITY_SERVER, ENCODER.encode(aad));

  const started = await postJson(fetch, PAIR_START_PATH, {
    offer_id: offerId,
    device_key: deviceKey,
    device_name: deviceName,
    share: encodeBase64url(exchange.share),
  });
  if (typeof started.pairing_id !== "string" || typeof started.share !== "string") {
    throw new PairingError("server", "pair/start response lacks pairing_id or share");
  }
  const keys = await exchange.finish(decodeBase64url(started.share));
  const needsAccount = typeof started.needs_account === "boolean" ? started.needs_account : null;
  const accountName = typeof started.account_name === "string" ? started.account_name : null;

  async function finish(account = null) {
    const request = { pairing_id: started.pairing_id, confirmation: encodeBase64url(keys.confirmation) };
    if (account !== null) request.account = account;
    const finished = await postJson(fetch, PAIR_FINISH_PATH, request, { sentAccount: account !== null });

    // Nothing in the response counts until the server proves the code.
    const confirmation = typeof finished.confirmation === "string" ? safeDecode(finished.confirmation) : null;
    if (confirmation === null || !keys.verifyPeer(confirmation)) {
      throw new PairingError("server_unverified", "the server's SPAKE2 confirmation does not verify");
    }
    const expectedDid = didFromP256(rawPublicKey);
    if (finished.device?.did !== expectedDid) {
      throw new PairingError("server_unverified", `the server named the device ${finished.device?.did}, expected ${expectedDid}`);
    }
    if (typeof finished.user?.name !== "string" || typeof finished.credential !== "string") {
      throw new PairingError("server", "pair/finish response lacks user or credential");
    }
    return { device: finished.device, user: finished.user, credential: finished.credential };
  }

  return { needsAccount, accountName, finish };
}

/**
 * Sends a JSON request of the pairing protocol and returns the JSON response body.
 * Throws PairingError for an error status.
 *
 * NOTE: docs/access.md fixes only 403 for a wrong confirmation. The other
 * statuses (404 unknown offer, 409 used, 410 expired, 429 too many wrong
 * codes) and the body fields `code` and `attempts_left` are this page's
 * expectation of the server.
 */
async function postJson(fetch, path, body, { sentAccount = false } = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
  });
  const responseBody = await response.json().catch(() => null);
  if (response.ok && responseBody !== null) return responseBody;

  const message = typeof responseBody?.error === "string" ? responseBody.error : `${path}: ${response.status} ${response.statusText}`;
  const attemptsLeft = Number.isInteger(responseBody?.attempts_left) ? responseBody.attempts_left : null;
  const kind = ERROR_KINDS.has(responseBody?.code) ? responseBody.code : kindFromStatus(response.status, path, sentAccount);
  throw new PairingError(kind, message, { status: response.status, attemptsLeft });
}

function kindFromStatus(status, path, sentAccount) {
  const finishing = path === PAIR_FINISH_PATH;
  if (status === 403 && finishing) return "wrong_code";
  if (status === 404) return "not_found";
  if (status === 409) return "used";
  if (status === 410) return "expired";
  if (status === 429) return "burned";
  if ((status === 400 || status === 422) && finishing) return "account";
  if (status === 422 && sentAccount) return "account";
  return "server";
}

function safeDecode(text) {
  try {
    return decodeBase64url(text);
  } catch {
    return null;
  }
}

function firstMatch(text, patterns) {
  return patterns.find(([pattern]) => pattern.test(text))?.[1] ?? null;
}

// ---------------------------------------------------------------------------
// Page

const locale = globalThis.navigator?.language?.split("-")[0] in MESSAGES ? navigator.language.split("-")[0] : "en";

/** Looks up a message; a message with plural forms is picked by `values.count`. */
function t(key, values = {}) {
  let text = MESSAGES[locale][key] ?? MESSAGES.en[key] ?? key;
  if (typeof text === "object") text = text[new Intl.PluralRules(locale).select(values.count)] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

if (globalThis.document) setUpPage();

function setUpPage() {
  const form = document.getElementById("pair-form");
  const field = (id) => document.getElementById(id);
  const state = { offerId: null, keyPair: null, pending: null };

  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n, { min: MIN_PASSWORD_CHARS });
  }

  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) {
    showStatus(t("unsupported"), true);
    field("submit").disabled = true;
    return;
  }

  if (new URLSearchParams(location.search).get("ended") === "revoked") showStatus(t("revokedNotice"), true);
  readFragment(state);
  // Opening a pairing link in a tab that already shows /pair changes only
  // the fragment, which does not load the page again.
  window.addEventListener("hashchange", () => readFragment(state));

  const { browser, system } = describeBrowser(navigator.userAgent, navigator.userAgentData?.brands ?? [], navigator.userAgentData?.platform ?? "");
  field("device-name").value = t("deviceNameDefault", { browser: browser ?? t("unknownBrowser"), system: system ?? t("unknownSystem") });

  field("link").addEventListener("input", () => {
    const parsed = parsePairingLink(field("link").value);
    if (parsed.code && !field("code").value) field("code").value = parsed.code;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(state).catch((error) => showStatus(t("failed", { error: error.message }), true));
  });

  const firstEmpty = [field("link"), field("code"), field("device-name")].find((input) => !input.closest("[hidden]") && !input.value);
  (firstEmpty ?? field("submit")).focus();
}

/** Takes the offer id and code from the URL fragment, if it has them. */
function readFragment(state) {
  if (!location.hash) {
    document.getElementById("link-field").hidden = state.offerId !== null;
    return;
  }

  // The fragment never reaches the server. Take it out of the address bar
  // and history too, because the code is a secret until it is used.
  const fromFragment = parsePairingLink(location.hash);
  history.replaceState(null, "", location.pathname);
  if (fromFragment.offerId === null) return;

  state.offerId = fromFragment.offerId;
  state.pending = null;
  lockOfferFields(false);
  document.getElementById("account").hidden = true;
  document.getElementById("account-name").readOnly = false;
  document.getElementById("submit").textContent = t("submit");
  document.getElementById("link-field").hidden = true;
  if (fromFragment.code) document.getElementById("code").value = fromFragment.code;
}

async function submit(state) {
  const field = (id) => document.getElementById(id);

  const offerId = state.offerId ?? parsePairingLink(field("link").value).offerId;
  if (state.offerId === null && !field("link").value.trim()) return invalid("link", t("linkMissing"));
  if (offerId === null) return invalid("link", t("linkInvalid"));
  const code = normalizeCode(field("code").value);
  if (code === null) return invalid("code", t("codeInvalid"));
  const deviceName = field("device-name").value.trim();
  if (!deviceName || ENCODER.encode(deviceName).length > MAX_DEVICE_NAME_BYTES || /\p{Cc}/u.test(deviceName)) {
    return invalid("device-name", t("deviceNameInvalid"));
  }

  const accountShown = !field("account").hidden;
  const account = accountShown ? readAccount() : null;
  if (account === false) return undefined;

  setBusy(true);
  showStatus(t("working"), false);
  try {
    state.keyPair ??= await createDeviceKey();
    if (state.pending === null) {
      state.pending = await startPairing({ offerId, code, deviceName, keyPair: state.keyPair, fetch: (...args) => fetch(...args) });
    }

    // The offer kind is known only now, so the account fields appear after
    // pair/start. The exchange is bound to the code and device name, which
    // stay read-only until it ends.
    if (state.pending.needsAccount !== false && !accountShown) {
      lockOfferFields(true);
      showAccount(state.pending.needsAccount === true, state.pending.accountName);
      showStatus(state.pending.needsAccount === true ? t("accountMissing") : "", false);
      return undefined;
    }
    if (state.pending.needsAccount === true && account === null) return invalid("account-name", t("accountMissing"));

    const pending = state.pending;
    state.pending = null;
    const paired = await pending.finish(pending.needsAccount === false ? null : account);
    await store(state.keyPair, paired);
  } catch (error) {
    state.pending = null;
    lockOfferFields(false);
    reportError(error);
  } finally {
    setBusy(false);
  }
  return undefined;
}

async function store(keyPair, paired) {
  try {
    await savePairedDevice(keyPair, {
      did: paired.device.did,
      name: paired.device.name,
      user: paired.user,
      credential: paired.credential,
      paired_at: Date.now(),
    });
  } catch (error) {
    throw new PairingError("storage", error.message);
  }
  showStatus(t("paired", { device: paired.device.name, user: paired.user.name }), false);
  location.assign(SIGN_IN_PAGE);
}

/** Returns `{name, password}`, null when the optional fields are empty, or false after showing an error. */
function readAccount() {
  const field = (id) => document.getElementById(id);
  const name = field("account-name").value;
  const password = field("password").value;
  const confirm = field("password-confirm").value;
  const required = field("account").dataset.required === "true";

  if (!required && !name && !password && !confirm) return null;
  if (!name || name.trim() !== name || [...name].length > MAX_USER_NAME_CHARS || /\p{Cc}/u.test(name)) {
    invalid("account-name", t("nameInvalid"));
    return false;
  }
  if ([...password].length < MIN_PASSWORD_CHARS) {
    invalid("password", t("passwordShort", { min: MIN_PASSWORD_CHARS }));
    return false;
  }
  if (ENCODER.encode(password).length > MAX_PASSWORD_BYTES) {
    invalid("password", t("passwordLong", { max: MAX_PASSWORD_BYTES }));
    return false;
  }
  if (password !== confirm) {
    invalid("password-confirm", t("passwordMismatch"));
    return false;
  }
  return { name, password };
}

/** Shows the account fields; `fixedName` is the name the offer fixes, shown read-only, or null. */
function showAccount(required, fixedName = null) {
  const fieldset = document.getElementById("account");
  const nameInput = document.getElementById("account-name");
  fieldset.hidden = false;
  fieldset.dataset.required = String(required);
  for (const input of fieldset.querySelectorAll("input")) input.required = required;
  nameInput.readOnly = fixedName !== null;
  if (fixedName !== null) nameInput.value = fixedName;

  let intro = t(required ? "accountIntro" : "accountOptionalIntro");
  if (fixedName !== null) intro = t("accountNamedIntro", { name: fixedName });
  document.getElementById("account-intro").textContent = intro;
  document.getElementById("submit").textContent = t("submitAccount");
  (fixedName !== null ? document.getElementById("password") : nameInput).focus();
}

function reportError(error) {
  if (!(error instanceof PairingError)) {
    // fetch rejects with a TypeError when the server cannot be reached.
    showStatus(t(error instanceof TypeError ? "network" : "failed", { error: error.message }), true);
    return;
  }

  switch (error.kind) {
    case "wrong_code":
      if (error.attemptsLeft === 0) {
        showStatus(t("burned"), true);
      } else if (error.attemptsLeft !== null) {
        invalid("code", t("wrongCode", { count: error.attemptsLeft }));
      } else {
        invalid("code", t("wrongCodeUncounted"));
      }
      return;
    case "account":
      if (document.getElementById("account").hidden) showAccount(true);
      invalid("account-name", t("accountRejected", { error: error.message }));
      return;
    case "burned":
    case "expired":
    case "used":
      showStatus(t(error.kind), true);
      return;
    case "not_found":
      showStatus(t("notFound"), true);
      return;
    case "server_unverified":
      showStatus(t("serverUnverified"), true);
      return;
    case "storage":
      showStatus(t("storageFailed", { error: error.message }), true);
      return;
    default:
      showStatus(t("failed", { error: error.message }), true);
  }
}

function invalid(id, message) {
  const input = document.getElementById(id);
  showStatus(message, true);
  input.setAttribute("aria-invalid", "true");
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"), { once: true });
  input.focus();
  return undefined;
}

function showStatus(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function lockOfferFields(locked) {
  for (const id of ["link", "code", "device-name"]) document.getElementById(id).readOnly = locked;
}

function setBusy(busy) {
  const button = document.getElementById("submit");
  button.disabled = busy;
  document.getElementById("pair-form").setAttribute("aria-busy", String(busy));
}
