// Plays every video in the library in Debian's Chromium, as a household
// member would: each through whatever the server decides for this browser
// (direct play, or HLS with hls.js), past PLAY_SECONDS, then seeks to the
// middle and waits until playback goes on from there.
//
// Inputs (environment): as play.mjs (HEARTH_URL, HEARTH_CA, HEARTH_PAIR_LINK,
// HEARTH_PASSWORD, HEARTH_USER, HEARTH_TIMEOUT_MS, HEARTH_CHROMIUM), and
// HEARTH_KIND: `video` (default) or `audio`, the kind of item to play, and
// HEARTH_NATIVE_HLS=1 to hide Media Source Extensions from the page, so that
// the library page reports a native HLS player, as Safari on an iPhone does.
//
// Output: one JSON line on stdout: `{results: [...], console_errors, ...}`
// with, per video, the playback mode, the element's frame size, the time
// reached before and after the seek, or the error that stopped it.

import { openContext, pairWithLink, readConfig, runWithChromium, settleRequests, signIn } from "./chromium.mjs";

/** Seconds each video must play before the seek, or 60 % of a shorter one. */
const PLAY_SECONDS = 2;
/** Seconds each video must play after the seek target. */
const AFTER_SEEK_SECONDS = 0.5;

const config = readConfig("play_all.mjs");
const kind = process.env.HEARTH_KIND === "audio" ? "audio" : "video";
await runWithChromium("play_all.mjs", config, (browser) => playAll(browser, config));

async function playAll(browser, config) {
  const record = await openContext(browser, config.timeoutMs);
  const { page } = record;
  if (process.env.HEARTH_NATIVE_HLS === "1") {
    await page.addInitScript(() => {
      delete window.MediaSource;
      delete window.ManagedMediaSource;
    });
  }
  const account = { name: config.user, password: config.password };
  await pairWithLink(page, config.pairLink, account);
  await signIn(page, account);

  const items = await page.evaluate(async (kind) => {
    const { signedFetch } = await import("/device.js");
    const response = await signedFetch(`/api/v1/items?kind=${kind}&limit=500`);
    return response.ok ? (await response.json()).items : { error: `GET /api/v1/items returned ${response.status}` };
  }, kind);
  if (items.error) throw new Error(items.error);

  const results = [];
  for (const item of items) {
    results.push(await playOne(page, item, config.timeoutMs));
  }
  const transcodes = await page.evaluate(async () => {
    const { signedFetch } = await import("/device.js");
    const response = await signedFetch("/api/v1/admin/transcodes");
    return response.ok ? response.json() : { error: response.status };
  });
  await settleRequests(record);
  return {
    browser: browser.version(),
    results,
    transcodes,
    unsigned_api_requests: record.unsignedApiRequests,
    console_errors: record.consoleErrors,
  };
}

async function playOne(page, item, timeoutMs) {
  const result = { title: item.title, mime: item.mime, id: item.id };
  await page.locator(`#items button[data-id="${item.id}"]`).click();
  await page.locator(`#media[data-id="${item.id}"]`).waitFor();
  try {
    // The phone sample lasts 1.6 s: short videos play to 60 % of their length.
    const duration = await page
      .waitForFunction(() => Number.isFinite(document.getElementById("media").duration) && document.getElementById("media").duration, null, { timeout: timeoutMs })
      .then((handle) => handle.jsonValue());
    result.play_target = Math.min(PLAY_SECONDS, duration * 0.6);
    result.played = await waitForTime(page, result.play_target, timeoutMs);
    Object.assign(result, await page.locator("#media").evaluate((element) => ({
      mode: element.dataset.mode,
      source: element.dataset.source,
      rendition: element.dataset.rendition ?? null,
      video_width: element.videoWidth,
      video_height: element.videoHeight,
      duration: element.duration,
    })));
    const target = result.duration / 2;
    result.seek_target = target;
    await page.locator("#media").evaluate((element, to) => { element.currentTime = to; }, target);
    result.after_seek = await waitForTime(page, target + AFTER_SEEK_SECONDS, timeoutMs);
  } catch (error) {
    result.error = String(error.message || error).split("\n")[0];
  }
  return result;
}

/** Waits until #media plays past `seconds`; throws with the media error or the state. */
async function waitForTime(page, seconds, timeoutMs) {
  const outcome = await page
    .waitForFunction(
      (minimum) => {
        const element = document.getElementById("media");
        if (element.error) return { error: `media error ${element.error.code}: ${element.error.message || "no message"}` };
        return element.currentTime > minimum && !element.seeking ? { reached: element.currentTime } : false;
      },
      seconds,
      { timeout: timeoutMs },
    )
    .then((handle) => handle.jsonValue())
    .catch(async (error) => {
      const state = await page.locator("#media").evaluate((element) => `currentTime ${element.currentTime}, readyState ${element.readyState}`);
      return { error: `${String(error.message).split("\n")[0]} (${state})` };
    });
  if (outcome.error) throw new Error(outcome.error);
  return outcome.reached;
}
