// Checks of passkey sign-in, for run.mjs. WebAuthn rejects an IP address
// as the relying party id, so a new browser opens the server as
// https://localhost:PORT, a name its certificate covers, and the server
// takes the relying party id from the Host the browser sends. The admin
// pairs that browser with an offer for their own account, signs in with
// the password, adds a passkey in the security center, signs out and signs
// in again with the passkey. Chromium's virtual authenticator, attached
// through the DevTools protocol, replaces the screen lock.

import { openDevice } from "./browser.mjs";

const PASSKEY_NAME = "Laptop screen lock";
/** How long a failed passkey request may take to show its message, in milliseconds. */
const FAILURE_TIMEOUT_MS = 10_000;

/**
 * Runs the checks. `adminPage` is a signed-in admin's page at 127.0.0.1,
 * which creates the pairing offer in the household screen. `admin` is the
 * admin's `{ name, password }`. `check`, `shoot`, `shootSection` and
 * `axeCheck` are run.mjs's helpers. The new browser context opens at
 * `viewport` and is closed at the end.
 */
export async function checkPasskeySignIn({ browser, adminPage, admin, check, shoot, shootSection, axeCheck, viewport, timeoutMs }) {
  // The admin creates an offer for their own account on a new device.
  await adminPage.getByRole("link", { name: "Household" }).click();
  await adminPage.locator('input[name="offer-kind"][value="existing"]').check();
  await adminPage.locator("#offer-user").selectOption(admin.name);
  await adminPage.locator("#offer-create").click();
  await adminPage.locator("#offer-link").waitFor();
  const offerLink = new URL(await adminPage.locator("#offer-link").inputValue());
  // The link contains the host the admin used (127.0.0.1), so the laptop swaps in the name.
  offerLink.hostname = "localhost";

  const laptop = await openDevice(browser, { viewport, timeoutMs });
  const page = laptop.page;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });

  await page.goto(offerLink.toString());
  await page.locator("#pair-submit").click();
  await page.waitForURL(/\/ui\/login/);
  const passkeyButton = page.getByRole("button", { name: "Sign in with a passkey" });
  const offered = await passkeyButton.waitFor({ timeout: 5_000 }).then(
    () => true,
    () => false,
  );
  check("sign-in at localhost offers a passkey", offered, page.url());
  await shoot(page, "sign-in-passkey");
  await axeCheck(page, "sign-in-passkey");

  // Before the user has a passkey, the server's reason reaches the screen.
  const status = page.locator("#sign-in-status");
  await passkeyButton.click();
  const noPasskey = await status.filter({ hasText: "has no passkey" }).waitFor({ timeout: FAILURE_TIMEOUT_MS }).then(
    () => true,
    () => false,
  );
  check("passkey sign-in without a passkey says so", noPasskey, await textOf(status));

  await page.locator("#password").fill(admin.password);
  await page.locator("#sign-in-submit").click();
  await page.locator("#items .item-card").first().waitFor();

  // Registration in the security center.
  await page.getByRole("link", { name: "Security" }).click();
  const passkeys = page.locator("section", { has: page.locator("#passkeys-title") });
  const nameInput = passkeys.locator("#passkey-name");
  const registrable = await nameInput.waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("security center at localhost offers to add a passkey", registrable, await textOf(passkeys.locator(".hint")));
  await nameInput.fill(PASSKEY_NAME);
  await passkeys.getByRole("button", { name: "Add a passkey" }).click();
  const passkeyStatus = passkeys.locator(".status");
  const added = await passkeyStatus.filter({ hasText: `Added the passkey ${PASSKEY_NAME}.` }).waitFor({ timeout: FAILURE_TIMEOUT_MS }).then(
    () => true,
    () => false,
  );
  check("security center adds a passkey", added, await textOf(passkeyStatus));
  const row = passkeys.locator(".row", { hasText: PASSKEY_NAME });
  const listed = await row.waitFor({ timeout: 5_000 }).then(
    () => true,
    () => false,
  );
  check("security center lists the new passkey", listed);
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  check("authenticator holds the new credential", credentials.length === 1, `${credentials.length} credentials`);
  await shootSection(page, "security-passkeys", passkeys);

  // Sign out, then sign in with the passkey alone.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/ui\/login/);
  await passkeyButton.click();
  const signedIn = await page.locator("#items .item-card").first().waitFor({ timeout: 15_000 }).then(
    () => true,
    () => false,
  );
  check("passkey signs in and opens the library", signedIn, signedIn ? "" : await textOf(status));
  const accountName = await textOf(page.locator(".account-name"));
  check("passkey session belongs to its user", accountName === admin.name, accountName);

  await page.getByRole("link", { name: "Security" }).click();
  const rowMeta = row.locator(".row-meta");
  const used = await rowMeta.filter({ hasText: "last used" }).waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("security center shows the passkey's last use", used, await textOf(rowMeta));

  // An authenticator without the credential: the browser rejects the
  // request, and the screen shows a message instead of waiting.
  // WebAuthn reports a missing credential and a cancelled prompt with the
  // same NotAllowedError, so one message covers both.
  await cdp.send("WebAuthn.clearCredentials", { authenticatorId });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/ui\/login/);
  await passkeyButton.click();
  const cancelled = await status.filter({ hasText: "No passkey was used" }).waitFor({ timeout: FAILURE_TIMEOUT_MS }).then(
    () => true,
    () => false,
  );
  check("missing credential ends with a message", cancelled, await textOf(status));
  check("sign-in screen is usable after the failure", await passkeyButton.isEnabled());
  await shoot(page, "sign-in-passkey-failed", [viewport]);
  await axeCheck(page, "sign-in-passkey-failed");

  // Page health. The sign-in without a passkey is the one rejected request.
  const expectedFailure = "400 POST /api/v1/passkeys/login/start";
  const failures = laptop.failedResponses.filter((line) => line !== expectedFailure);
  const errors = laptop.errors.filter((text) => !/status of 400 .*\/api\/v1\/passkeys\/login\/start/.test(text));
  check("passkey device has no console errors", errors.length === 0 && failures.length === 0, [...errors.slice(0, 5), ...failures.slice(0, 5)].join(" | "));
  check("passkey device signs every API call", laptop.unsignedApiRequests.length === 0, laptop.unsignedApiRequests.join(", "));

  await laptop.context.close();
}

async function textOf(locator) {
  return ((await locator.first().textContent({ timeout: 1_000 }).catch(() => "")) ?? "").replace(/\s+/g, " ").trim();
}
