// Passkeys (WebAuthn) for Hearth pages (docs/access.md, "Passkeys"):
// register one for the signed-in user, sign in with one, list and delete.
//
// Every request is signed with the device key through device.js, so a
// passkey signs in only on a paired browser of its own user. The server
// sends WebAuthn options with binary fields as base64url; this module turns
// them into the ArrayBuffers that navigator.credentials expects, and the
// credential's ArrayBuffers back into base64url.

import { ApiError, decodeBase64url, deviceClient, encodeBase64url, signedFetch } from "./device.js";

export const PASSKEYS_PATH = "/api/v1/passkeys";
export const REGISTER_START_PATH = "/api/v1/passkeys/register/start";
export const REGISTER_FINISH_PATH = "/api/v1/passkeys/register/finish";
export const LOGIN_START_PATH = "/api/v1/passkeys/login/start";
export const LOGIN_FINISH_PATH = "/api/v1/passkeys/login/finish";

const JSON_HEADERS = Object.freeze({ "Content-Type": "application/json" });

/** Returns whether this browser can create and use passkeys. */
export function passkeysSupported() {
  return typeof PublicKeyCredential === "function" && typeof navigator.credentials?.create === "function";
}

/**
 * Registers a new passkey named `name` for the signed-in user: asks the
 * server for creation options, lets the browser create the credential
 * (the person confirms with the screen lock or a security key), and sends
 * it back. Returns the stored passkey `{id, name, credential_id,
 * created_at, last_used, counter}`; throws ApiError when the server
 * rejects a step, and the browser's DOMException when the person cancels.
 */
export async function registerPasskey(name) {
  const start = await signedFetch(REGISTER_START_PATH, { method: "POST", headers: JSON_HEADERS, body: "{}" });
  if (!start.ok) throw await ApiError.from(start);
  const { publicKey } = await start.json();

  const credential = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
  if (credential === null) throw new Error("the browser created no passkey");

  const body = JSON.stringify({ name, credential: registrationJson(credential) });
  const finish = await signedFetch(REGISTER_FINISH_PATH, { method: "POST", headers: JSON_HEADERS, body });
  if (!finish.ok) throw await ApiError.from(finish);
  return finish.json();
}

/**
 * Signs in with a passkey of this device's user. Both steps carry the
 * device's proof with an empty session id, as the password sign-in does.
 * Stores and returns the session (`{session_id, expires_at, user,
 * device}`, the answer of the password sign-in); throws ApiError when the
 * server rejects a step.
 */
export async function signInWithPasskey() {
  const client = await deviceClient();
  client.clearSession();

  const start = await client.fetch(LOGIN_START_PATH, { method: "POST", headers: JSON_HEADERS, body: "{}" });
  if (!start.ok) throw await ApiError.from(start);
  const { publicKey } = await start.json();

  const assertion = await navigator.credentials.get({ publicKey: requestOptions(publicKey) });
  if (assertion === null) throw new Error("the browser returned no passkey");

  const body = JSON.stringify(assertionJson(assertion));
  const finish = await client.fetch(LOGIN_FINISH_PATH, { method: "POST", headers: JSON_HEADERS, body });
  if (!finish.ok) throw await ApiError.from(finish);
  return client.adoptSession(await finish.json());
}

/** Lists the signed-in user's passkeys. */
export async function listPasskeys() {
  const response = await signedFetch(PASSKEYS_PATH);
  if (!response.ok) throw await ApiError.from(response);
  return response.json();
}

/** Deletes one of the signed-in user's passkeys by its id. */
export async function deletePasskey(id) {
  const response = await signedFetch(`${PASSKEYS_PATH}/${encodeURIComponent(id)}`, { method: "DELETE" });
  if (!response.ok) throw await ApiError.from(response);
}

// ---------------------------------------------------------------------------
// WebAuthn JSON and ArrayBuffers

/** PublicKeyCredentialCreationOptions from the server's JSON. */
export function creationOptions(json) {
  const options = withoutNulls(json);
  options.challenge = buffer(options.challenge);
  options.user = { ...options.user, id: buffer(options.user.id) };
  options.excludeCredentials = (options.excludeCredentials ?? []).map(descriptor);
  return options;
}

/** PublicKeyCredentialRequestOptions from the server's JSON. */
export function requestOptions(json) {
  const options = withoutNulls(json);
  options.challenge = buffer(options.challenge);
  options.allowCredentials = (options.allowCredentials ?? []).map(descriptor);
  return options;
}

/** The JSON the server reads for a new credential (a RegisterPublicKeyCredential). */
export function registrationJson(credential) {
  const response = credential.response;
  const extensions = credential.getClientExtensionResults?.() ?? {};
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: base64url(response.attestationObject),
      clientDataJSON: base64url(response.clientDataJSON),
      transports: response.getTransports?.() ?? [],
    },
    // Only credProps is read; the server treats it as a hint.
    extensions: extensions.credProps ? { credProps: extensions.credProps } : {},
  };
}

/** The JSON the server reads for an assertion (a PublicKeyCredential). */
export function assertionJson(assertion) {
  const response = assertion.response;
  return {
    id: assertion.id,
    rawId: base64url(assertion.rawId),
    type: assertion.type,
    response: {
      authenticatorData: base64url(response.authenticatorData),
      clientDataJSON: base64url(response.clientDataJSON),
      signature: base64url(response.signature),
      userHandle: response.userHandle ? base64url(response.userHandle) : null,
    },
    extensions: {},
  };
}

function descriptor(credential) {
  return { ...credential, id: buffer(credential.id) };
}

function buffer(text) {
  return decodeBase64url(text).buffer;
}

function base64url(arrayBuffer) {
  return encodeBase64url(new Uint8Array(arrayBuffer));
}

// WebIDL dictionaries reject null where a member is optional, so members
// the server leaves empty are dropped.
function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== "object") return value;
  const copy = {};
  for (const [key, member] of Object.entries(value)) {
    if (member !== null) copy[key] = withoutNulls(member);
  }
  return copy;
}
