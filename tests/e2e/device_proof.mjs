// Signs request proofs with the browser module `device.js` under Node's
// WebCrypto and prints them as JSON, so that
// crates/hearth-access/tests/browser_proof.rs can verify them with the
// server's `ProofVerifier`. Before printing, it checks the client's
// behaviour against a simulated server: the sign-in headers, the retry
// after `error="binding"`, and the end of a session. Exits non-zero on the
// first failed check.
//
// Output: {"public_key_b64u", "did", "proofs": [{"label", "method",
// "path_and_query", "exporter_b64u", "session_id", "header",
// "signed_string", "accepted"}]}, where "exporter_b64u" is the binding of
// the simulated connection that the request arrived on and "accepted" is
// whether the proof must verify there.

import assert from "node:assert/strict";
import {
  DeviceClient,
  HEADERS,
  createDeviceKey,
  decodeBase64url,
  didFromP256,
  encodeBase64url,
  exportPublicKey,
  proofString,
  signProof,
} from "../../crates/hearth-server/src/web/device.js";

const ORIGIN = "https://hearth.test:8443";
const SESSION_ID = encodeBase64url(crypto.getRandomValues(new Uint8Array(32)));

const randomBinding = () => encodeBase64url(crypto.getRandomValues(new Uint8Array(32)));

const keyPair = await createDeviceKey();
const rawPublicKey = await exportPublicKey(keyPair.publicKey);
const did = didFromP256(rawPublicKey);
const proofs = [];

checkKeyPair();
await signDirectly();
await signThroughClient();
checkProofStringRejectsBadFields();

process.stdout.write(`${JSON.stringify({ public_key_b64u: encodeBase64url(rawPublicKey), did, proofs }, null, 2)}\n`);

function checkKeyPair() {
  assert.equal(keyPair.privateKey.extractable, false, "the private key must be non-extractable");
  assert.equal(rawPublicKey.length, 65);
  assert.equal(rawPublicKey[0], 4);
  assert.match(did, /^did:key:zDn[1-9A-HJ-NP-Za-km-z]+$/);
}

async function signDirectly() {
  const binding = randomBinding();
  const proof = await signProof(keyPair.privateKey, { method: "POST", target: "/api/v1/login", binding });

  assert.match(proof.header, /^v1;t=\d+;n=[A-Za-z0-9_-]{22};s=[A-Za-z0-9_-]{86}$/);
  assert.equal(proof.signature.length, 64, "WebCrypto ECDSA signatures are raw r || s");
  assert.equal(proof.signedString.split("\n").length, 7);
  assert.ok(proof.signedString.endsWith(`\n${binding}\n`), "an empty session id leaves an empty last line");
  await assertSignatureValid(proof.signedString, proof.signature);

  proofs.push({
    label: "signProof at sign-in",
    method: "POST",
    path_and_query: "/api/v1/login",
    exporter_b64u: binding,
    session_id: "",
    header: proof.header,
    signed_string: proof.signedString,
    accepted: true,
  });
}

// A stand-in for the server: it responds on one "connection" at a time,
// sends that connection's binding on every response, and rejects a proof
// signed for another binding as the real server does.
async function signThroughClient() {
  const connections = [randomBinding(), randomBinding()];
  let current = 0;
  const received = [];
  const endedReasons = [];

  const fakeFetch = async (url, init = {}) => {
    const { pathname, search, origin } = new URL(url);
    assert.equal(origin, ORIGIN);
    const target = pathname + search;
    const headers = new Headers(init.headers);
    const binding = connections[current];
    const reply = (status, body, extra = {}) =>
      new Response(body === null ? null : JSON.stringify(body), {
        status,
        headers: { [HEADERS.binding]: binding, "Content-Type": "application/json", ...extra },
      });

    if (target === "/api/v1/health") return reply(200, { status: "ok" });

    const proofHeader = headers.get(HEADERS.proof);
    assert.ok(proofHeader, `${target}: missing ${HEADERS.proof}`);
    const [, t, n, s] = /^v1;t=(\d+);n=([^;]+);s=(.+)$/.exec(proofHeader);
    const sessionId = headers.get(HEADERS.session) ?? "";
    const signedFor = await findSignedBinding(init.method, target, Number(t), n, sessionId, decodeBase64url(s), connections);
    const accepted = signedFor === binding;
    received.push({ method: init.method, target, headers, sessionId, proofHeader, accepted, binding, signedFor });

    if (!accepted) {
      return reply(401, { error: "request proof was signed for another connection" }, {
        "WWW-Authenticate": 'HearthProof realm="hearth", error="binding"',
      });
    }
    if (target === "/api/v1/login") {
      return reply(200, { session_id: SESSION_ID, expires_at: 0, user: { name: "alice", role: "adult" }, device: { did, name: "Node" } });
    }
    if (target.startsWith("/api/v1/expire")) {
      return reply(401, { error: "session expired" }, { "WWW-Authenticate": 'HearthProof realm="hearth", error="expired"' });
    }
    return reply(200, { ok: true });
  };

  const storage = new Map();
  const sessionStore = {
    getItem: (key) => storage.get(key) ?? null,
    setItem: (key, value) => storage.set(key, value),
    removeItem: (key) => storage.delete(key),
  };
  const client = new DeviceClient({
    keyPair,
    did,
    origin: ORIGIN,
    fetch: fakeFetch,
    sessionStore,
    onSessionEnded: (reason) => endedReasons.push(reason),
  });

  // Sign-in: binding from the health check, Hearth-Device, no session.
  const session = await client.signIn("alice", "correct horse battery");
  assert.equal(session.session_id, SESSION_ID);
  assert.equal(client.binding, connections[0]);
  const signIn = received.at(-1);
  assert.equal(signIn.headers.get(HEADERS.device), did);
  assert.equal(signIn.headers.get(HEADERS.session), null);
  assert.equal(signIn.sessionId, "");
  assert.ok(storage.get("hearth.session").includes(SESSION_ID), "the session id goes to sessionStorage");
  record("client sign-in", signIn);

  // A request whose query fetch percent-encodes: the signed target is the encoded one.
  const response = await client.fetch("/api/v1/items?q=café au lait&kind=video");
  assert.equal(response.status, 200);
  const listed = received.at(-1);
  assert.equal(listed.target, "/api/v1/items?q=caf%C3%A9%20au%20lait&kind=video");
  assert.equal(listed.headers.get(HEADERS.session), SESSION_ID);
  assert.equal(listed.headers.get(HEADERS.device), null);
  record("client request with session", listed);

  // The next request lands on another connection: one 401, one retry.
  current = 1;
  const before = received.length;
  const retried = await client.fetch("/api/v1/items/42/play-state", {
    method: "put",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ position_ms: 1000, completed: false }),
  });
  assert.equal(retried.status, 200);
  assert.equal(received.length - before, 2, "exactly one retry after error=\"binding\"");
  const [stale, fresh] = received.slice(before);
  assert.equal(stale.accepted, false);
  assert.equal(stale.signedFor, connections[0]);
  assert.equal(fresh.accepted, true);
  assert.equal(fresh.method, "PUT");
  assert.equal(client.binding, connections[1]);
  record("client request signed for the previous connection", stale);
  record("client retry after error=binding", fresh);

  // A lower-case PATCH is upper-cased before signing and sending.
  await client.fetch("/api/v1/items/42", { method: "patch" });
  assert.equal(received.at(-1).method, "PATCH");
  record("client PATCH", received.at(-1));

  // The server ends the session: the hook runs once and the session is gone.
  const expired = await client.fetch("/api/v1/expire");
  assert.equal(expired.status, 401);
  assert.deepEqual(endedReasons, ["expired"]);
  assert.equal(client.session, null);
  assert.equal(storage.has("hearth.session"), false);

  // Requests to another origin are not signed.
  await assert.rejects(client.fetch("https://elsewhere.test/api/v1/items"), /signed requests go only to/);
}

function checkProofStringRejectsBadFields() {
  const good = { method: "GET", target: "/", timestamp: 1, nonce: "A".repeat(22), binding: randomBinding(), sessionId: "" };
  const bad = [
    { method: "get" },
    { method: "" },
    { target: "items" },
    { target: "/a b" },
    { target: "/a\nb" },
    { nonce: "short" },
    { nonce: `${"A".repeat(22)}\n` },
    { sessionId: "a\nb" },
    { binding: "AAAA" },
    { timestamp: -1 },
    { timestamp: 1.5 },
  ];
  assert.doesNotThrow(() => proofString(good));
  for (const change of bad) {
    assert.throws(() => proofString({ ...good, ...change }), /invalid request proof/, JSON.stringify(change));
  }
}

function record(label, request) {
  const [, t, n] = /^v1;t=(\d+);n=([^;]+);/.exec(request.proofHeader);
  proofs.push({
    label,
    method: request.method,
    path_and_query: request.target,
    exporter_b64u: request.binding,
    session_id: request.sessionId,
    header: request.proofHeader,
    signed_string: proofString({
      method: request.method,
      target: request.target,
      timestamp: Number(t),
      nonce: n,
      binding: request.binding,
      sessionId: request.sessionId,
    }),
    accepted: request.accepted,
  });
}

async function findSignedBinding(method, target, timestamp, nonce, sessionId, signature, candidates) {
  for (const binding of candidates) {
    const message = proofString({ method, target, timestamp, nonce, binding, sessionId });
    if (await verify(message, signature)) return binding;
  }
  return null;
}

async function assertSignatureValid(message, signature) {
  assert.ok(await verify(message, signature), "WebCrypto rejects its own signature");
}

function verify(message, signature) {
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, keyPair.publicKey, signature, new TextEncoder().encode(message));
}
