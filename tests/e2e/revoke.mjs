// Revokes a playing browser from the admin page and measures how fast it
// stops, in Debian's Chromium with two browser contexts (two devices):
//
// 1. The admin context pairs with the first-run link and signs in.
// 2. In the admin section it creates a pairing link for a new person and
//    reads the link from the page.
// 3. The member context opens that link, pairs, signs in and plays the
//    H.264 sample through a media grant.
// 4. The admin context revokes the member's device in the device list.
// 5. The member skips ahead in the video, so the player needs bytes it has
//    not loaded yet. The script measures, from the moment the revoke request
//    returned: the rejected range request, the media element's error (or
//    stall), the member page's first API call rejected with `revoked`, and its
//    arrival on /pair or /login.
//
// The sample is 4.3 MB, which Chromium loads in one range request within
// a fraction of a second on loopback and then replays from its media cache,
// even after `load()`. The member context's download is therefore throttled
// to MEMBER_BYTES_PER_SECOND (DevTools network emulation), so the end of the
// file is still unloaded when the admin revokes, as with a feature film.
//
// Inputs (environment): those of play.mjs, plus
//   HEARTH_MEMBER      account name of the second person (default member)
//
// Output: one JSON line on stdout with the measurements. On a failure the
// script writes the reason to stderr and exits with status 1, or 2 when an
// input is missing.

import {
  connectionInfo,
  findItem,
  firstLine,
  mediaState,
  openContext,
  pairWithLink,
  playItem,
  readConfig,
  runWithChromium,
  settleRequests,
  signIn,
} from "./chromium.mjs";

// Above the sample's 4.1 Mbit/s (515 kB/s), so it plays, and slow enough
// that loading all 4.3 MB takes 6.6 s, seconds longer than the admin steps.
// The rate stays fixed: in a trial with Chromium 156, lowering it once the
// video played still left the whole sample loaded before the revocation.
const MEMBER_BYTES_PER_SECOND = 650_000;
// Where the member skips to: near the end of the 8.3 s sample.
const SKIP_TO_SECONDS = 7.8;
// How long the script waits for each effect of the revocation, in milliseconds.
const EFFECT_WAIT_MS = 15_000;

const config = readConfig("revoke.mjs");
const memberName = process.env.HEARTH_MEMBER || "member";
await runWithChromium("revoke.mjs", config, (browser) => revokeWhilePlaying(browser, config));

async function revokeWhilePlaying(browser, config) {
  const admin = await openContext(browser, config.timeoutMs);
  const adminAccount = { name: config.user, password: config.password };
  await pairWithLink(admin.page, config.pairLink, adminAccount);
  await signIn(admin.page, adminAccount);
  const offer = await createOfferInAdminPage(admin.page, memberName);

  const member = await openContext(browser, config.timeoutMs);
  const memberAccount = { name: memberName, password: config.password };
  await pairWithLink(member.page, offer.link, memberAccount);
  await signIn(member.page, memberAccount);
  const memberDid = await member.page.evaluate(async () => (await (await import("/device.js")).loadDevice()).pairing.did);
  const memberConnection = await connectionInfo(member.page);

  const cdp = await member.context.newCDPSession(member.page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: MEMBER_BYTES_PER_SECOND, uploadThroughput: -1 });
  const itemId = await findItem(member.page);
  await playItem(member.page, itemId, config.timeoutMs);
  const beforeRevoke = await mediaState(member.page);
  const effects = await watchMember(member);

  const revokedAt = await revokeInAdminPage(admin.page, memberDid);
  const bufferedEnd = await member.page.locator("#media").evaluate((element) => (element.buffered.length ? element.buffered.end(element.buffered.length - 1) : 0));
  if (bufferedEnd >= SKIP_TO_SECONDS) {
    throw new Error(`the member had loaded the sample to ${bufferedEnd} s before the revocation, so skipping to ${SKIP_TO_SECONDS} s needs no range request`);
  }
  await member.page.locator("#media").evaluate((element, seconds) => {
    element.currentTime = seconds;
  }, SKIP_TO_SECONDS);
  const skippedAt = Date.now();

  const leftTo = await member.page
    .waitForURL((url) => url.pathname === "/pair" || url.pathname === "/login", { timeout: EFFECT_WAIT_MS })
    .then(() => new URL(member.page.url()).pathname)
    .catch(() => null);
  const leftAt = leftTo === null ? null : Date.now();
  const pairNotice = leftTo === "/pair" ? await member.page.locator("#status").textContent() : null;
  const adminRow = await admin.page.locator(`#devices tr[data-did="${memberDid}"]`).evaluate((row) => ({
    status: row.cells[4].textContent,
    buttons: row.querySelectorAll("button").length,
  }));
  await settleRequests(admin);
  await settleRequests(member);

  const since = (time) => (time === null || time === undefined ? null : time - revokedAt);
  const rejectedRange = member.mediaResponses.find((response) => response.kind === "stream" && response.at >= revokedAt && response.status >= 400);
  const mediaError = effects.mediaEvents.find((event) => event.at >= revokedAt && event.type === "error");
  const revokedAnswer = effects.apiRejections.find((rejection) => rejection.at >= revokedAt && rejection.code === "revoked");

  return {
    browser: browser.version(),
    offer: { code_matches_link: offer.codeMatchesLink, qr_image: offer.qrImage, link_origin: new URL(offer.link).origin },
    member_key_exchange_group: memberConnection.key_exchange_group,
    member_media_path: beforeRevoke.src,
    member_time_at_revoke: beforeRevoke.currentTime,
    member_buffered_to: bufferedEnd,
    skip_ms: skippedAt - revokedAt,
    range_rejected_ms: since(rejectedRange?.at),
    range_rejected_status: rejectedRange?.status ?? null,
    media_error_ms: since(mediaError?.at),
    media_error: mediaError?.detail ?? null,
    api_revoked_ms: since(revokedAnswer?.at),
    left_to: leftTo,
    left_ms: since(leftAt),
    pair_notice: pairNotice,
    admin_row_status: adminRow.status,
    admin_row_buttons: adminRow.buttons,
    admin_unsigned_api_requests: admin.unsignedApiRequests,
    member_unsigned_api_requests: member.unsignedApiRequests,
    token_requests: [...admin.tokenRequests, ...member.tokenRequests],
    legacy_media_requests: [...admin.legacyMediaRequests, ...member.legacyMediaRequests],
    admin_console_errors: admin.consoleErrors,
  };
}

/**
 * Creates a new-user pairing offer in the admin section and returns the
 * link as the page shows it, with checks of the code and QR code beside it.
 */
async function createOfferInAdminPage(page, name) {
  await page.locator("#admin:not([hidden])").waitFor();
  await page.locator("#offer-name").fill(name);
  await page.locator("#offer-role").selectOption("adult");
  await page.locator("#offer-create").click();
  try {
    await page.locator("#offer:not([hidden])").waitFor();
  } catch (error) {
    const status = await page.locator("#admin-status").textContent();
    throw new Error(`the admin page showed no pairing link (status ${JSON.stringify(status)}): ${firstLine(error)}`);
  }

  const link = await page.locator("#offer-link").inputValue();
  const code = await page.locator("#offer-code").textContent();
  const qrSource = await page.locator("#offer-qr").getAttribute("src");
  const linkCode = new URLSearchParams(new URL(link).hash.slice(1)).get("code") ?? "";
  return {
    link,
    codeMatchesLink: linkCode.replace(/-/g, "") === code.replace(/-/g, ""),
    qrImage: (qrSource ?? "").startsWith("data:image/svg+xml") && (await page.locator("#offer-qr").evaluate((image) => image.naturalWidth > 0)),
  };
}

/** Clicks Revoke on the device `did` in the admin page; returns when the server confirmed it. */
async function revokeInAdminPage(page, did) {
  await page.locator("#devices-refresh").click();
  const button = page.locator(`#devices tr[data-did="${did}"] button[data-action="revoke"]`);
  await button.waitFor();
  const [response] = await Promise.all([
    page.waitForResponse((candidate) => candidate.request().method() === "POST" && /\/api\/v1\/admin\/devices\/\d+\/revoke$/.test(new URL(candidate.url()).pathname)),
    button.click(),
  ]);
  const revokedAt = Date.now();
  if (response.status() !== 204) throw new Error(`revoking device ${did} returned ${response.status()}`);
  await page.locator(`#devices tr[data-did="${did}"] td.revoked`).waitFor();
  return revokedAt;
}

/**
 * Records the member page's media `error` events and its API requests
 * rejected with 401, with their `WWW-Authenticate` error code.
 */
async function watchMember(member) {
  const effects = { mediaEvents: [], apiRejections: [] };
  await member.page.exposeBinding("hearthTestMediaEvent", (_source, type, detail) => {
    effects.mediaEvents.push({ type, detail, at: Date.now() });
  });
  await member.page.locator("#media").evaluate((element) => {
    element.addEventListener("error", () => {
      window.hearthTestMediaEvent("error", `${element.error?.code}: ${element.error?.message}`);
    });
  });
  member.context.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (!path.startsWith("/api/") || response.status() !== 401) return;
    const code = /error="([^"]*)"/.exec(response.headers()["www-authenticate"] ?? "")?.[1] ?? null;
    effects.apiRejections.push({ path, code, at: Date.now() });
  });
  return effects;
}
