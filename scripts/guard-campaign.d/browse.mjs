// One benign household session for scripts/guard-campaign, in Debian's
// Chromium on the library pages: pair with the link, sign in, search the
// library, then watch several videos and sounds the way a person does:
// play, pause a while, seek forward, play on, seek back.
//
// Inputs (environment): those of tests/e2e/play.mjs (HEARTH_URL, HEARTH_CA,
// HEARTH_PAIR_LINK, HEARTH_PASSWORD, HEARTH_USER, HEARTH_TIMEOUT_MS,
// HEARTH_CHROMIUM), and
//   HEARTH_ITEMS     how many videos and sounds to watch (default 6)
//   HEARTH_PAUSE_MS  how long each pause lasts (default 2000)
//
// Output: one JSON line on stdout, `{results: [...], console_errors, ...}`,
// with per item the play mode and the times reached before the pause,
// after the forward seek and after the backward seek, or the error that
// stopped it. Exit status 1 when the session itself failed.

import { openContext, pairWithLink, readConfig, runWithChromium, settleRequests, signIn } from "../../tests/e2e/chromium.mjs";

const config = readConfig("browse.mjs");
const itemCount = Number.parseInt(process.env.HEARTH_ITEMS ?? "6", 10) || 6;
const pauseMs = Number.parseInt(process.env.HEARTH_PAUSE_MS ?? "2000", 10) || 2000;
await runWithChromium("browse.mjs", config, (browser) => browse(browser, config));

async function browse(browser, config) {
  const record = await openContext(browser, config.timeoutMs);
  const { page } = record;
  const account = { name: config.user, password: config.password };
  await pairWithLink(page, config.pairLink, account);
  await signIn(page, account);

  // A person types a search first, then browses the whole list.
  const found = await page.evaluate(async () => {
    const { signedFetch } = await import("/device.js");
    const search = await signedFetch("/api/v1/items?q=hello&limit=50");
    const all = await signedFetch("/api/v1/items?limit=500");
    if (!search.ok || !all.ok) return { error: `GET /api/v1/items returned ${search.status} and ${all.status}` };
    return { search: (await search.json()).total, items: (await all.json()).items };
  });
  if (found.error) throw new Error(found.error);

  const playable = found.items.filter((item) => item.kind === "video" || item.kind === "audio");
  // Videos first, then sounds, so short runs still watch a film.
  playable.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "video" ? -1 : 1));
  const results = [];
  for (const item of playable.slice(0, itemCount)) {
    results.push(await watch(page, item, config.timeoutMs));
  }
  await settleRequests(record);
  return {
    browser: browser.version(),
    search_hits: found.search,
    results,
    media_responses: record.mediaResponses.length,
    unsigned_api_requests: record.unsignedApiRequests,
    console_errors: record.consoleErrors,
  };
}

/** Plays one item with a pause, a forward seek and a backward seek. */
async function watch(page, item, timeoutMs) {
  const result = { title: item.title, mime: item.mime, kind: item.kind };
  try {
    await page.locator(`#items button[data-id="${item.id}"]`).click();
    await page.locator(`#media[data-id="${item.id}"]`).waitFor();
    const duration = await page
      .waitForFunction(() => Number.isFinite(document.getElementById("media").duration) && document.getElementById("media").duration, null, { timeout: timeoutMs })
      .then((handle) => handle.jsonValue());
    result.duration = duration;
    result.mode = await page.locator("#media").evaluate((element) => element.dataset.mode ?? null);

    result.played = await waitForTime(page, Math.min(1.5, duration * 0.3), timeoutMs);
    await media(page, (element) => element.pause());
    await page.waitForTimeout(pauseMs);
    result.paused_at = await media(page, (element) => element.currentTime);

    const forward = duration * 0.6;
    await media(page, (element, to) => {
      element.currentTime = to;
      return element.play();
    }, forward);
    result.after_forward_seek = await waitForTime(page, Math.min(forward + 0.5, duration * 0.9), timeoutMs);

    const back = duration * 0.1;
    await media(page, (element, to) => {
      element.currentTime = to;
    }, back);
    result.after_backward_seek = await waitForTime(page, back + 0.3, timeoutMs);
    await media(page, (element) => element.pause());
  } catch (error) {
    result.error = String(error.message || error).split("\n")[0];
  }
  return result;
}

function media(page, action, argument) {
  return page.locator("#media").evaluate(action, argument);
}

/** Waits until #media plays past `seconds` and is not seeking; throws with the media error or the state. */
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
      const state = await media(page, (element) => `currentTime ${element.currentTime}, readyState ${element.readyState}, paused ${element.paused}`);
      return { error: `${String(error.message).split("\n")[0]} (${state})` };
    });
  if (outcome.error) throw new Error(outcome.error);
  return outcome.reached;
}
