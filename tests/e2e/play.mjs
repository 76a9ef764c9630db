// Plays a video from a running hearth server in Debian's Chromium, the way a
// household member would: trust the household CA in the user's NSS database,
// sign in through /login, click the item, and watch it play.
//
// Inputs (environment):
//   HEARTH_URL         base URL of the server, e.g. https://127.0.0.1:8443 (required)
//   HEARTH_TOKEN       access token printed by `hearth serve` (required)
//   HEARTH_CA          household CA certificate, PEM (required)
//   HEARTH_SCREENSHOT  path of a PNG screenshot taken while the video plays (optional)
//   HEARTH_CHROMIUM    Chromium executable (default /usr/bin/chromium)
//   HEARTH_TIMEOUT_MS  limit of each browser step in milliseconds (default 30000)
//
// Output: one JSON line on stdout with what the page saw. On a failure the
// script writes the reason to stderr and exits with status 1, or 2 when an
// input is missing.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

// Sample file from Debian's forensics-samples-files: movie2/movie-hello.mp4,
// H.264 and AAC. The same folder has Theora, MPEG-1 and AVI files with the
// same title, so the MIME type picks the H.264 file that Debian's Chromium plays.
const ITEM_TITLE = "movie-hello";
const ITEM_MIME = "video/mp4";
// Playback time that proves frames were decoded, not only metadata read.
const MIN_PLAYED_SECONDS = 1;

// The flags of the end-to-end run. Playwright adds its own automation
// switches and a fresh temporary --user-data-dir, which it deletes on close.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const config = readConfig();
const home = mkdtempSync(join(tmpdir(), "hearth-e2e-home-"));
let browser;
try {
  trustHouseholdCa(home, config.ca);
  browser = await chromium.launch({
    executablePath: config.chromium,
    args: CHROMIUM_ARGS,
    env: { ...process.env, HOME: home },
    timeout: config.timeoutMs,
  });
  const result = await playVideo(browser, config);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`play.mjs: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch((error) => process.stderr.write(`play.mjs: closing Chromium failed: ${error.message}\n`));
  rmSync(home, { recursive: true, force: true });
}

function readConfig() {
  const required = (name) => {
    const value = process.env[name];
    if (!value) {
      process.stderr.write(`play.mjs: ${name} is not set; set HEARTH_URL, HEARTH_TOKEN and HEARTH_CA\n`);
      process.exit(2);
    }
    return value;
  };
  return {
    url: required("HEARTH_URL").replace(/\/+$/, ""),
    token: required("HEARTH_TOKEN"),
    ca: required("HEARTH_CA"),
    screenshot: process.env.HEARTH_SCREENSHOT || null,
    chromium: process.env.HEARTH_CHROMIUM || "/usr/bin/chromium",
    timeoutMs: readTimeout(process.env.HEARTH_TIMEOUT_MS),
  };
}

function readTimeout(text) {
  if (!text) return 30000;
  const milliseconds = Number(text);
  if (!Number.isInteger(milliseconds) || milliseconds <= 0) {
    process.stderr.write(`play.mjs: invalid HEARTH_TIMEOUT_MS ${JSON.stringify(text)}: expected a positive number of milliseconds\n`);
    process.exit(2);
  }
  return milliseconds;
}

// Creates the NSS database that Chromium on Linux reads from
// $HOME/.pki/nssdb and imports the CA as trusted to issue TLS server
// certificates ("C,,"), the steps a user follows with certutil.
function trustHouseholdCa(homeDir, caFile) {
  const database = `sql:${join(homeDir, ".pki", "nssdb")}`;
  mkdirSync(join(homeDir, ".pki", "nssdb"), { recursive: true });
  const certutil = (args) => {
    try {
      return execFileSync("certutil", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      if (error.code === "ENOENT") {
        throw new Error("certutil not found: install it with `apt-get install libnss3-tools`");
      }
      throw new Error(`certutil ${args.join(" ")} failed: ${error.stderr || error.message}`);
    }
  };

  certutil(["-N", "-d", database, "--empty-password"]);
  certutil(["-A", "-d", database, "-n", "Hearth household CA", "-t", "C,,", "-i", caFile]);
  const listing = certutil(["-L", "-d", database]);
  if (!/Hearth household CA\s+C,,/.test(listing)) {
    throw new Error(`household CA missing from the NSS database after import:\n${listing}`);
  }
}

async function playVideo(browser, config) {
  const context = await browser.newContext();
  context.setDefaultTimeout(config.timeoutMs);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const source = message.location().url;
    consoleErrors.push(source ? `${message.text()} [${source}]` : message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.message}`));

  await signIn(page, config);
  const itemId = await findItem(page);

  await page.locator(`#items button[data-id="${itemId}"][data-kind="video"]`).click();
  const video = page.locator("#media");
  await video.waitFor();
  await waitForPlayback(page, config.timeoutMs);

  const badgeGroup = await page.locator("#connection[data-group]").getAttribute("data-group");
  const connection = await page.evaluate(async () => {
    const response = await fetch("/api/v1/connection", { credentials: "same-origin" });
    return { status: response.status, body: await response.json() };
  });
  if (connection.status !== 200) {
    throw new Error(`GET /api/v1/connection from the page returned ${connection.status}`);
  }

  const playback = await video.evaluate((element) => ({
    tag: element.tagName.toLowerCase(),
    currentTime: element.currentTime,
    duration: element.duration,
    readyState: element.readyState,
    paused: element.paused,
    videoWidth: element.videoWidth,
    videoHeight: element.videoHeight,
  }));
  if (config.screenshot) {
    await page.screenshot({ path: config.screenshot });
  }

  return {
    browser: browser.version(),
    item_id: itemId,
    key_exchange_group: connection.body.key_exchange_group,
    post_quantum: connection.body.post_quantum,
    protocol: connection.body.protocol,
    alpn: connection.body.alpn,
    badge_group: badgeGroup,
    element: playback.tag,
    current_time: playback.currentTime,
    duration: playback.duration,
    ready_state: playback.readyState,
    paused: playback.paused,
    video_width: playback.videoWidth,
    video_height: playback.videoHeight,
    console_errors: consoleErrors,
    screenshot: config.screenshot,
  };
}

async function signIn(page, config) {
  const loginUrl = `${config.url}/login`;
  try {
    await page.goto(loginUrl);
  } catch (error) {
    if (/ERR_CERT/.test(error.message)) {
      throw new Error(`Chromium rejected the certificate of ${loginUrl}, so it does not chain to HEARTH_CA in the NSS database: ${firstLine(error)}`);
    }
    throw error;
  }

  await page.locator("#token").fill(config.token);
  await Promise.all([
    page.waitForURL((url) => url.pathname === "/" || url.searchParams.has("failed")),
    page.locator('button[type="submit"]').click(),
  ]).catch((error) => {
    throw new Error(`sign-in did not finish (now at ${page.url()}): ${firstLine(error)}`);
  });
  if (new URL(page.url()).pathname !== "/") {
    throw new Error(`the server rejected HEARTH_TOKEN: sign-in redirected to ${page.url()}`);
  }
  await page.locator("#items button[data-id]").first().waitFor();
}

// Picks the item through the API the page itself uses, because the list
// shows several files titled "movie-hello" that differ only in format.
async function findItem(page) {
  const items = await page.evaluate(async () => {
    const response = await fetch("/api/v1/items?kind=video&limit=500", { credentials: "same-origin" });
    if (!response.ok) return { error: `GET /api/v1/items returned ${response.status}` };
    return (await response.json()).items;
  });
  if (items.error) throw new Error(items.error);

  const matches = items.filter((item) => item.title === ITEM_TITLE && item.mime === ITEM_MIME);
  if (matches.length !== 1) {
    const seen = items.map((item) => `${item.title} (${item.mime})`).join(", ");
    throw new Error(`expected one ${ITEM_MIME} item titled "${ITEM_TITLE}", found ${matches.length}; videos: ${seen}`);
  }
  return matches[0].id;
}

// Waits until the video has played past MIN_PLAYED_SECONDS, and fails early
// with the media error when the element reports one.
async function waitForPlayback(page, timeoutMs) {
  const outcome = await page
    .waitForFunction(
      (minSeconds) => {
        const element = document.getElementById("media");
        if (element.error) return { error: `media error ${element.error.code}: ${element.error.message || "no message"}` };
        return element.currentTime > minSeconds ? { played: element.currentTime } : false;
      },
      MIN_PLAYED_SECONDS,
      { timeout: timeoutMs },
    )
    .then((handle) => handle.jsonValue())
    .catch(async (error) => {
      const state = await page.locator("#media").evaluate((element) => `currentTime ${element.currentTime}, readyState ${element.readyState}, paused ${element.paused}`);
      return { error: `${firstLine(error)} (${state})` };
    });
  if (outcome.error) {
    throw new Error(`video did not play past ${MIN_PLAYED_SECONDS} s: ${outcome.error}`);
  }
}

// Strips the multi-line call log from a Playwright error message.
function firstLine(error) {
  return error.message.split("\n")[0];
}
