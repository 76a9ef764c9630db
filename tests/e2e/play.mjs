// Plays a video from a running hearth server in Debian's Chromium, the way a
// household member would: trust the household CA in the user's NSS database,
// open the pairing link, choose a password, sign in on /login, click the
// item, and watch it play through a media grant.
//
// Inputs (environment):
//   HEARTH_URL         base URL of the server, e.g. https://127.0.0.1:8443 (required)
//   HEARTH_CA          household CA certificate, PEM (required)
//   HEARTH_PAIR_LINK   pairing link of a new-user offer, e.g. the first-run
//                      link that `hearth serve` prints (required)
//   HEARTH_PASSWORD    password to choose for the new account (required)
//   HEARTH_USER        account name to choose when the offer leaves it open (default admin)
//   HEARTH_SCREENSHOT  path of a PNG screenshot taken while the video plays (optional)
//   HEARTH_CHROMIUM    Chromium executable (default /usr/bin/chromium)
//   HEARTH_TIMEOUT_MS  limit of each browser step in milliseconds (default 30000)
//
// Output: one JSON line on stdout with what the page saw. On a failure the
// script writes the reason to stderr and exits with status 1, or 2 when an
// input is missing.

import {
  connectionInfo,
  findItem,
  mediaState,
  openContext,
  pairWithLink,
  playItem,
  readConfig,
  runWithChromium,
  settleRequests,
  signIn,
} from "./chromium.mjs";

const config = readConfig("play.mjs");
await runWithChromium("play.mjs", config, (browser) => playVideo(browser, config));

async function playVideo(browser, config) {
  const record = await openContext(browser, config.timeoutMs);
  const { page } = record;
  const account = { name: config.user, password: config.password };

  await pairWithLink(page, config.pairLink, account);
  await signIn(page, account);
  const itemId = await findItem(page);
  await playItem(page, itemId, config.timeoutMs);

  const badgeGroup = await page.locator("#connection[data-group]").getAttribute("data-group");
  const connection = await connectionInfo(page);
  const playback = await mediaState(page);
  if (config.screenshot) {
    await page.screenshot({ path: config.screenshot });
  }
  await settleRequests(record);

  return {
    browser: browser.version(),
    item_id: itemId,
    key_exchange_group: connection.key_exchange_group,
    post_quantum: connection.post_quantum,
    protocol: connection.protocol,
    alpn: connection.alpn,
    badge_group: badgeGroup,
    element: playback.tag,
    media_path: playback.src,
    current_time: playback.currentTime,
    duration: playback.duration,
    ready_state: playback.readyState,
    paused: playback.paused,
    video_width: playback.videoWidth,
    video_height: playback.videoHeight,
    media_responses: record.mediaResponses.length,
    unsigned_api_requests: record.unsignedApiRequests,
    token_requests: record.tokenRequests,
    legacy_media_requests: record.legacyMediaRequests,
    console_errors: record.consoleErrors,
    screenshot: config.screenshot,
  };
}
