// Runs the pairing page's protocol functions (`pair.js`) against a
// simulated server that plays SPAKE2 role B with `spake2.js`, as
// docs/access.md describes pair/start and pair/finish. Covers a new-user
// pairing, a wrong code, a changed device name in transit, a server that
// cannot prove the code or names another device, and the error statuses.
// Exits non-zero on the first failed check: `node tests/e2e/pair_protocol.mjs`.

import assert from "node:assert/strict";
import { passwordScalar, start } from "../../crates/hearth-server/src/web/spake2.js";
import { createDeviceKey, decodeBase64url, didFromP256, encodeBase64url } from "../../crates/hearth-server/src/web/device.js";
import {
  PairingError,
  describeBrowser,
  normalizeCode,
  pairingAdditionalData,
  parsePairingLink,
  startPairing,
} from "../../crates/hearth-server/src/web/pair.js";

const OFFER_ID = encodeBase64url(crypto.getRandomValues(new Uint8Array(16)));
const CODE = "K7QF9M2D";
const DEVICE_NAME = "Chromium on Linux";

checkCodeAndLinkParsing();
checkBrowserDescription();
await pairsNewUser();
await wrongCodeCountsAttempt();
await changedDeviceNameFailsConfirmation();
await forgedServerConfirmationRejected();
await otherDeviceDidRejected();
await errorStatusesHaveKinds();
console.log("pair_protocol.mjs: all checks passed");

function checkCodeAndLinkParsing() {
  assert.equal(normalizeCode("k7qf-9m2d"), CODE);
  assert.equal(normalizeCode(" K7QF 9M2D "), CODE);
  assert.equal(normalizeCode("oil0-0000"), "01100000", "O reads as 0, I and L as 1");
  assert.equal(normalizeCode("K7QF9M2"), null);
  assert.equal(normalizeCode("K7QF9M2U"), null, "U is outside the alphabet");

  const link = parsePairingLink(`https://hearth.local:8443/pair#offer=${OFFER_ID}&code=K7QF-9M2D`);
  assert.deepEqual(link, { offerId: OFFER_ID, code: CODE });
  assert.deepEqual(parsePairingLink(`#offer=${OFFER_ID}`), { offerId: OFFER_ID, code: null });
  assert.deepEqual(parsePairingLink("https://hearth.local:8443/"), { offerId: null, code: null });
  assert.deepEqual(parsePairingLink("#offer=a%20b&code=x"), { offerId: null, code: null });
}

function checkBrowserDescription() {
  const chromeOnLinux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
  assert.deepEqual(describeBrowser(chromeOnLinux, [{ brand: "Not/A)Brand" }, { brand: "Chromium" }], "Linux"), { browser: "Chromium", system: "Linux" });
  assert.deepEqual(describeBrowser(chromeOnLinux, [{ brand: "Chromium" }, { brand: "Google Chrome" }], "Linux"), { browser: "Google Chrome", system: "Linux" });
  assert.deepEqual(describeBrowser("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"), { browser: "Firefox", system: "Windows" });
  assert.deepEqual(
    describeBrowser("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
    { browser: "Safari", system: "iOS" },
  );
  assert.deepEqual(describeBrowser(""), { browser: null, system: null });
}

async function pairsNewUser() {
  const server = simulatedServer({ needsAccount: true });
  const keyPair = await createDeviceKey();

  const pending = await startPairing({ offerId: OFFER_ID, code: "k7qf-9m2d", deviceName: DEVICE_NAME, keyPair, fetch: server.fetch });
  assert.equal(pending.needsAccount, true);
  const paired = await pending.finish({ name: "alice", password: "correct horse battery" });

  assert.deepEqual(server.accounts, [{ name: "alice", password: "correct horse battery" }]);
  assert.equal(paired.device.name, DEVICE_NAME);
  assert.equal(paired.user.name, "alice");
  assert.equal(paired.credential, "Y3JlZGVudGlhbA");
}

async function wrongCodeCountsAttempt() {
  const server = simulatedServer({ needsAccount: false });
  const keyPair = await createDeviceKey();

  const pending = await startPairing({ offerId: OFFER_ID, code: "K7QF9M2E", deviceName: DEVICE_NAME, keyPair, fetch: server.fetch });
  const error = await pending.finish().catch((caught) => caught);

  assert.ok(error instanceof PairingError, String(error));
  assert.equal(error.kind, "wrong_code");
  assert.equal(error.status, 403);
  assert.equal(error.attemptsLeft, 4);
}

// Someone between the browser and the server renames the device: the
// additional data differ, so the server's check of cA fails.
async function changedDeviceNameFailsConfirmation() {
  const server = simulatedServer({ needsAccount: false, rewriteDeviceName: "Attacker's laptop" });
  const keyPair = await createDeviceKey();

  const pending = await startPairing({ offerId: OFFER_ID, code: CODE, deviceName: DEVICE_NAME, keyPair, fetch: server.fetch });
  const error = await pending.finish().catch((caught) => caught);

  assert.equal(error.kind, "wrong_code");
}

async function forgedServerConfirmationRejected() {
  const server = simulatedServer({ needsAccount: false, forgeConfirmation: true });
  const keyPair = await createDeviceKey();

  const pending = await startPairing({ offerId: OFFER_ID, code: CODE, deviceName: DEVICE_NAME, keyPair, fetch: server.fetch });
  const error = await pending.finish().catch((caught) => caught);

  assert.equal(error.kind, "server_unverified");
}

async function otherDeviceDidRejected() {
  const other = await createDeviceKey();
  const otherDid = didFromP256(new Uint8Array(await crypto.subtle.exportKey("raw", other.publicKey)));
  const server = simulatedServer({ needsAccount: false, deviceDid: otherDid });
  const keyPair = await createDeviceKey();

  const pending = await startPairing({ offerId: OFFER_ID, code: CODE, deviceName: DEVICE_NAME, keyPair, fetch: server.fetch });
  const error = await pending.finish().catch((caught) => caught);

  assert.equal(error.kind, "server_unverified");
}

async function errorStatusesHaveKinds() {
  const keyPair = await createDeviceKey();
  const cases = [
    [410, {}, "expired"],
    [409, {}, "used"],
    [404, {}, "not_found"],
    [429, {}, "burned"],
    [410, { code: "used" }, "used"],
    [500, {}, "server"],
  ];
  for (const [status, extra, kind] of cases) {
    const fetch = async () => new Response(JSON.stringify({ error: "rejected", ...extra }), { status });
    const error = await startPairing({ offerId: OFFER_ID, code: CODE, deviceName: DEVICE_NAME, keyPair, fetch }).catch((caught) => caught);
    assert.ok(error instanceof PairingError, `${status}: ${error}`);
    assert.equal(error.kind, kind, `${status} ${JSON.stringify(extra)}`);
    assert.equal(error.message, "rejected");
  }
}

/**
 * Returns `{ fetch, accounts }`: a fetch that responds to pair/start and
 * pair/finish for one offer with code CODE, and the accounts it received.
 */
function simulatedServer({ needsAccount, rewriteDeviceName = null, forgeConfirmation = false, deviceDid = null }) {
  const pairings = new Map();
  const accounts = [];
  let attemptsLeft = 5;

  const reply = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

  async function fetch(path, init) {
    const body = JSON.parse(init.body);
    if (path === "/api/v1/pair/start") {
      assert.equal(body.offer_id, OFFER_ID);
      const deviceName = rewriteDeviceName ?? body.device_name;
      const w = await passwordScalar(CODE, OFFER_ID);
      const aad = new TextEncoder().encode(pairingAdditionalData(body.offer_id, body.device_key, deviceName));
      const exchange = start("B", w, "hearth device", "hearth server", aad);
      const keys = await exchange.finish(decodeBase64url(body.share));
      const pairingId = encodeBase64url(crypto.getRandomValues(new Uint8Array(16)));
      pairings.set(pairingId, { keys, deviceKey: body.device_key, deviceName });
      return reply(200, { pairing_id: pairingId, share: encodeBase64url(exchange.share), needs_account: needsAccount });
    }

    assert.equal(path, "/api/v1/pair/finish");
    const pairing = pairings.get(body.pairing_id);
    pairings.delete(body.pairing_id);
    if (!pairing.keys.verifyPeer(decodeBase64url(body.confirmation))) {
      attemptsLeft -= 1;
      return reply(403, { error: "wrong pairing code", attempts_left: attemptsLeft });
    }
    if (needsAccount) accounts.push(body.account);

    const confirmation = forgeConfirmation ? crypto.getRandomValues(new Uint8Array(32)) : pairing.keys.confirmation;
    return reply(200, {
      confirmation: encodeBase64url(confirmation),
      device: { did: deviceDid ?? didFromP256(decodeBase64url(pairing.deviceKey)), name: pairing.deviceName },
      user: { name: body.account?.name ?? "bob", role: "adult" },
      credential: "Y3JlZGVudGlhbA",
    });
  }

  return { fetch, accounts };
}
