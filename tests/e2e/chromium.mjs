// Steps shared by the Chromium end-to-end scripts (play.mjs, revoke.mjs):
// read the environment, trust the household CA, start Chromium, and drive
// the pairing, sign-in and library pages as a person would.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

// Sample file from Debian's forensics-samples-files: movie2/movie-hello.mp4,
// H.264 and AAC, 8.3 s. The same folder has Theora, MPEG-1 and AVI files
// with the same title, so the MIME type picks the H.264 file that Debian's
// Chromium plays.
export const ITEM_TITLE = "movie-hello";
export const ITEM_MIME = "video/mp4";
// Playback time that proves frames were decoded, not only metadata read.
export const MIN_PLAYED_SECONDS = 1;

// The flags of the end-to-end run. Playwright adds its own automation
// switches and a fresh temporary --user-data-dir, which it deletes on close.
// The background, sync and component-update switches keep Chromium from
// calling anything but the server under test.
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

// API paths a page may call without a session: the health check that
// hands out the first Hearth-Binding, the sign-in (signed with the device
// key and Hearth-Device) and the two pairing steps.
const PUBLIC_API_PATHS = new Set(["/api/v1/health", "/api/v1/login", "/api/v1/pair/start", "/api/v1/pair/finish"]);

/**
 * Reads the inputs that every script takes from the environment; `name` is
 * the script's name for messages and `extra` lists further required
 * variables. Exits with status 2 when one is missing.
 */
export function readConfig(name, extra = []) {
  const required = ["HEARTH_URL", "HEARTH_CA", "HEARTH_PAIR_LINK", "HEARTH_PASSWORD", ...extra];
  const missing = required.filter((variable) => !process.env[variable]);
  if (missing.length > 0) {
    process.stderr.write(`${name}: ${missing.join(", ")} not set; set ${required.join(", ")}\n`);
    process.exit(2);
  }
  return {
    url: process.env.HEARTH_URL.replace(/\/+$/, ""),
    ca: process.env.HEARTH_CA,
    pairLink: process.env.HEARTH_PAIR_LINK,
    user: process.env.HEARTH_USER || "admin",
    password: process.env.HEARTH_PASSWORD,
    screenshot: process.env.HEARTH_SCREENSHOT || null,
    chromium: process.env.HEARTH_CHROMIUM || "/usr/bin/chromium",
    timeoutMs: readTimeout(name, process.env.HEARTH_TIMEOUT_MS),
  };
}

function readTimeout(name, text) {
  if (!text) return 30000;
  const milliseconds = Number(text);
  if (!Number.isInteger(milliseconds) || milliseconds <= 0) {
    process.stderr.write(`${name}: invalid HEARTH_TIMEOUT_MS ${JSON.stringify(text)}: expected a positive number of milliseconds\n`);
    process.exit(2);
  }
  return milliseconds;
}

/**
 * Starts Chromium with a fresh $HOME whose NSS database trusts the
 * household CA, runs `body(browser)`, prints its result as one JSON line,
 * and cleans up. A failure goes to stderr with exit status 1.
 */
export async function runWithChromium(name, config, body) {
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
    const result = await body(browser);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`${name}: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  } finally {
    await browser?.close().catch((error) => process.stderr.write(`${name}: closing Chromium failed: ${error.message}\n`));
    rmSync(home, { recursive: true, force: true });
  }
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

/**
 * Opens a page in a new browser context, which has its own IndexedDB and
 * storage and so its own device key. Returns a record of what the context's
 * pages do:
 * - `consoleErrors`;
 * - `unsignedApiRequests`: API requests outside the public list without a Hearth-Session header;
 * - `tokenRequests`: requests with the old `hearth_token` cookie or an Authorization header;
 * - `legacyMediaRequests`: media from /api/v1/items/…/stream or …/thumbnail instead of a grant URL;
 * - `mediaResponses`: status and time of every /media/ response.
 */
export async function openContext(browser, timeoutMs) {
  const context = await browser.newContext();
  context.setDefaultTimeout(timeoutMs);
  const page = await context.newPage();
  const record = {
    page,
    context,
    consoleErrors: [],
    unsignedApiRequests: [],
    tokenRequests: [],
    legacyMediaRequests: [],
    mediaResponses: [],
    pending: [],
  };

  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const source = message.location().url;
    record.consoleErrors.push(source ? `${message.text()} [${source}]` : message.text());
  });
  page.on("pageerror", (error) => record.consoleErrors.push(`uncaught: ${error.message}`));
  context.on("request", (request) => record.pending.push(inspectRequest(request, record)));
  context.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (path.startsWith("/media/")) {
      record.mediaResponses.push({ at: Date.now(), status: response.status(), kind: path.endsWith("/stream") ? "stream" : "thumbnail" });
    }
  });
  return record;
}

async function inspectRequest(request, record) {
  const url = new URL(request.url());
  const headers = await request.allHeaders().catch(() => request.headers());
  const line = `${request.method()} ${url.pathname}`;
  if (/(^|;\s*)hearth_token=/.test(headers.cookie ?? "") || headers.authorization) record.tokenRequests.push(line);
  if (/^\/api\/v1\/items\/[^/]+\/(stream|thumbnail)$/.test(url.pathname)) record.legacyMediaRequests.push(line);
  if (url.pathname.startsWith("/api/") && !PUBLIC_API_PATHS.has(url.pathname) && !headers["hearth-session"]) {
    record.unsignedApiRequests.push(line);
  }
}

/** Waits until every request seen so far has been inspected. */
export async function settleRequests(record) {
  await Promise.all(record.pending);
}

/** Opens `url`, turning a certificate error into a message about HEARTH_CA. */
export async function open(page, url) {
  try {
    await page.goto(url);
  } catch (error) {
    if (/ERR_CERT/.test(error.message)) {
      const origin = new URL(url).origin;
      throw new Error(`Chromium rejected the certificate of ${origin}, so it does not chain to HEARTH_CA in the NSS database: ${firstLine(error)}`);
    }
    throw error;
  }
}

/**
 * Pairs the context's browser with a pairing link on /pair, choosing
 * `password` and, where the offer leaves it open, the account `name`. Ends
 * on /login, where the pairing page goes when it has stored the device.
 */
export async function pairWithLink(page, link, { name, password }) {
  await open(page, link);
  const code = page.locator("#code");
  await code.waitFor();
  if (!(await code.inputValue())) throw new Error(`the pairing page did not take the code from the link ${redactLink(link)}`);

  // pair/start runs first; the account fields appear for a new-user offer.
  await page.locator("#submit").click();
  await waitForStep(page, () => page.locator("#account:not([hidden])").waitFor(), "the account fields after pair/start");
  const accountName = page.locator("#account-name");
  if (await accountName.evaluate((input) => input.readOnly)) {
    const fixed = await accountName.inputValue();
    if (fixed !== name) throw new Error(`the offer is for account ${JSON.stringify(fixed)}, expected ${JSON.stringify(name)}`);
  } else {
    await accountName.fill(name);
  }
  await page.locator("#password").fill(password);
  await page.locator("#password-confirm").fill(password);

  await page.locator("#submit").click();
  await waitForStep(page, () => page.waitForURL((url) => url.pathname === "/login"), "the sign-in page after pair/finish");
}

/** Signs in on /login and waits for the library page to list items. */
export async function signIn(page, { name, password }) {
  if (new URL(page.url()).pathname !== "/login") await open(page, `${new URL(page.url()).origin}/login`);
  // The module has read the paired device once it names it.
  await page.locator("#device-line:not(:empty)").waitFor();
  await page.locator("#name").fill(name);
  await page.locator("#password").fill(password);
  await page.locator("#submit").click();
  await waitForStep(page, () => page.waitForURL((url) => url.pathname === "/"), "the library page after sign-in");
  await page.locator("#items button[data-id]").first().waitFor();
}

// Runs one waiting step and, when it fails, names the step and the status
// line the page showed.
async function waitForStep(page, step, what) {
  try {
    await step();
  } catch (error) {
    const status = await page.locator("#status").textContent().catch(() => null);
    throw new Error(`no ${what} (now at ${page.url()}, page status ${JSON.stringify(status)}): ${firstLine(error)}`);
  }
}

/**
 * Picks the sample item through the API the page itself uses (a signed
 * request from device.js), because the list shows several files titled
 * "movie-hello" that differ only in format.
 */
export async function findItem(page) {
  const items = await page.evaluate(async () => {
    const { signedFetch } = await import("/device.js");
    const response = await signedFetch("/api/v1/items?kind=video&limit=500");
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

/** Clicks the item in the library and waits until its video plays past MIN_PLAYED_SECONDS. */
export async function playItem(page, itemId, timeoutMs) {
  await page.locator(`#items button[data-id="${itemId}"][data-kind="video"]`).click();
  await page.locator("#media").waitFor();

  // Fails early with the media error when the element reports one.
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

/** Returns the state of the #media element. */
export function mediaState(page) {
  return page.locator("#media").evaluate((element) => ({
    tag: element.tagName.toLowerCase(),
    src: new URL(element.currentSrc || element.src, location.href).pathname,
    currentTime: element.currentTime,
    duration: element.duration,
    readyState: element.readyState,
    paused: element.paused,
    videoWidth: element.videoWidth,
    videoHeight: element.videoHeight,
  }));
}

/** Returns the body of `GET /api/v1/connection` sent as the page's own signed request. */
export async function connectionInfo(page) {
  const connection = await page.evaluate(async () => {
    const { signedFetch } = await import("/device.js");
    const response = await signedFetch("/api/v1/connection");
    return { status: response.status, body: await response.json() };
  });
  if (connection.status !== 200) {
    throw new Error(`GET /api/v1/connection from the page returned ${connection.status}`);
  }
  return connection.body;
}

/** Replaces the code in a pairing link, a one-time secret, for messages. */
export function redactLink(link) {
  return link.replace(/code=[^&]*/, "code=…");
}

/** Strips the multi-line call log from a Playwright error message. */
export function firstLine(error) {
  return error.message.split("\n")[0];
}
