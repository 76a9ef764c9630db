// Passkey sign-in in Debian's Chromium with a Chrome DevTools virtual
// authenticator (docs/access.md, "Passkeys"): pair a browser for a first
// user, sign in with the password, register a passkey, sign out, sign in
// with the passkey; then the failures: an assertion sent twice, another
// user's assertion on a second paired browser, an assertion for a passkey
// deleted meanwhile, and a sign-in after the last passkey is gone.
//
// WebAuthn needs a host name as relying party id, so HEARTH_URL and both
// pairing links use https://localhost:PORT.
//
// Inputs (environment), besides those of chromium.mjs (readConfig):
//   HEARTH_SECOND_PAIR_LINK   pairing link of a new-user offer for the second user (required)
//   HEARTH_SECOND_USER        that user's name (default bob)
//
// Output: one JSON line on stdout with what each step answered.

import { open, openContext, pairWithLink, readConfig, runWithChromium } from "./chromium.mjs";

const config = readConfig("passkey.mjs", ["HEARTH_SECOND_PAIR_LINK"]);
const second = { link: process.env.HEARTH_SECOND_PAIR_LINK, name: process.env.HEARTH_SECOND_USER || "bob" };
await runWithChromium("passkey.mjs", config, (browser) => passkeyFlow(browser, config));

async function passkeyFlow(browser, config) {
  const first = await pairedPage(browser, config.pairLink, { name: config.user, password: config.password });
  const other = await pairedPage(browser, second.link, { name: second.name, password: config.password });

  const signedIn = await first.page.evaluate(firstUserSignsIn, { name: config.user, password: config.password });
  const otherUser = await other.page.evaluate(otherUserSendsForeignAssertion, {
    name: second.name,
    password: config.password,
    foreignAssertion: signedIn.spareAssertion,
  });
  const afterDelete = await first.page.evaluate(firstUserDeletesThePasskey, { session: signedIn.replay.session });

  return {
    browser: browser.version(),
    registered: signedIn.registered,
    listed: signedIn.listed,
    passkey_session: signedIn.passkeySession,
    session_check: signedIn.sessionCheck,
    replay: { first: signedIn.replay.first, second: signedIn.replay.second },
    other_user: otherUser,
    deleted_meanwhile: afterDelete.deletedMeanwhile,
    after_delete: afterDelete.afterDelete,
    remaining: afterDelete.remaining,
    console_errors: [...first.record.consoleErrors, ...other.record.consoleErrors],
  };
}

/** Opens a context, pairs it with `link`, and gives its page a virtual authenticator. */
async function pairedPage(browser, link, account) {
  const record = await openContext(browser, config.timeoutMs);
  const { page } = record;
  await pairWithLink(page, link, account);

  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  // A page of the server's origin that runs no script of its own.
  await open(page, `${new URL(page.url()).origin}/api/v1/health`);
  return { page, record };
}

// The functions below run in the page. Each returns plain JSON; a failed
// step returns its status and error text rather than throwing, so the Rust
// test can name it.

async function firstUserSignsIn({ name, password }) {
  const device = await import("/device.js");
  const passkeys = await import("/passkeys.js");
  const json = { "Content-Type": "application/json" };
  const answer = async (response) => ({ status: response.status, body: await response.json().catch(() => null) });

  await device.signIn(name, password);
  const registered = await passkeys.registerPasskey("virtual authenticator");
  const listed = await passkeys.listPasskeys();
  await device.signOut();

  const passkeySession = await passkeys.signInWithPasskey();
  const sessionCheck = await answer(await device.signedFetch("/api/v1/session"));
  await device.signOut();

  // One assertion, sent twice: the challenge answers one attempt.
  const client = await device.deviceClient();
  const assertion = async () => {
    client.clearSession();
    const start = await client.fetch(passkeys.LOGIN_START_PATH, { method: "POST", headers: json, body: "{}" });
    if (!start.ok) throw new Error(`login/start returned ${start.status}`);
    const { publicKey } = await start.json();
    const credential = await navigator.credentials.get({ publicKey: passkeys.requestOptions(publicKey) });
    return JSON.stringify(passkeys.assertionJson(credential));
  };
  const body = await assertion();
  const first = await answer(await client.fetch(passkeys.LOGIN_FINISH_PATH, { method: "POST", headers: json, body }));
  const second = await answer(await client.fetch(passkeys.LOGIN_FINISH_PATH, { method: "POST", headers: json, body }));

  // An assertion of this user's passkey for the other user's browser.
  const spareAssertion = await assertion();
  return {
    registered,
    listed,
    passkeySession,
    sessionCheck,
    replay: { first: { status: first.status, error: first.body?.error ?? null }, second, session: first.body },
    spareAssertion,
  };
}

async function otherUserSendsForeignAssertion({ name, password, foreignAssertion }) {
  const device = await import("/device.js");
  const passkeys = await import("/passkeys.js");
  const json = { "Content-Type": "application/json" };

  await device.signIn(name, password);
  await passkeys.registerPasskey("second user's key");
  await device.signOut();

  const client = await device.deviceClient();
  client.clearSession();
  const start = await client.fetch(passkeys.LOGIN_START_PATH, { method: "POST", headers: json, body: "{}" });
  const finish = await client.fetch(passkeys.LOGIN_FINISH_PATH, { method: "POST", headers: json, body: foreignAssertion });
  return { start: start.status, status: finish.status, error: (await finish.json().catch(() => null))?.error ?? null };
}

async function firstUserDeletesThePasskey({ session }) {
  const device = await import("/device.js");
  const passkeys = await import("/passkeys.js");
  const json = { "Content-Type": "application/json" };
  const client = await device.deviceClient();

  // Start a sign-in and get the assertion, then delete the passkey in a
  // session before the assertion arrives.
  client.clearSession();
  const start = await client.fetch(passkeys.LOGIN_START_PATH, { method: "POST", headers: json, body: "{}" });
  const { publicKey } = await start.json();
  const credential = await navigator.credentials.get({ publicKey: passkeys.requestOptions(publicKey) });
  client.adoptSession(session);
  for (const passkey of await passkeys.listPasskeys()) {
    await passkeys.deletePasskey(passkey.id);
  }
  const remaining = await passkeys.listPasskeys();
  client.clearSession();
  const finish = await client.fetch(passkeys.LOGIN_FINISH_PATH, {
    method: "POST",
    headers: json,
    body: JSON.stringify(passkeys.assertionJson(credential)),
  });
  const deletedMeanwhile = { status: finish.status, error: (await finish.json().catch(() => null))?.error ?? null };

  // With no passkey left, passkey sign-in fails at its first step.
  const afterDelete = await passkeys
    .signInWithPasskey()
    .then((opened) => ({ status: 200, error: null, session: opened.session_id }))
    .catch((error) => ({ status: error.status ?? null, error: error.message }));
  return { deletedMeanwhile, afterDelete, remaining };
}
