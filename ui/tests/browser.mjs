// Chromium for the UI tests: a fresh $HOME whose NSS database trusts the
// test server's household CA, so pages load over real TLS with no
// certificate bypass, and a record of each page's console errors and CSP
// violations.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

// Switches that keep Chromium from calling anything but the server under test.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

/** Launches Chromium trusting `caFile`; returns `{ browser, close() }`. */
export async function launchBrowser({ executable, caFile, timeoutMs }) {
  const home = mkdtempSync(join(tmpdir(), "hearth-ui-home-"));
  const database = `sql:${join(home, ".pki", "nssdb")}`;
  mkdirSync(join(home, ".pki", "nssdb"), { recursive: true });
  execFileSync("certutil", ["-N", "-d", database, "--empty-password"], { stdio: "pipe" });
  execFileSync("certutil", ["-A", "-d", database, "-n", "Hearth household CA", "-t", "C,,", "-i", caFile], { stdio: "pipe" });

  const browser = await chromium.launch({ executablePath: executable, args: CHROMIUM_ARGS, env: { ...process.env, HOME: home }, timeout: timeoutMs });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a page in a new context (its own IndexedDB, so its own device key)
 * and records its console errors, uncaught exceptions, unsigned API calls
 * and the bodies of its playback requests.
 */
export async function openDevice(browser, { viewport, timeoutMs }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(timeoutMs);
  const page = await context.newPage();
  const record = { context, page, errors: [], unsignedApiRequests: [], failedResponses: [], playbackBodies: [] };
  page.on("response", (response) => {
    if (process.env.HEARTH_UI_DEBUG && (response.request().method() === "DELETE" || response.url().includes("/playback"))) process.stdout.write(`debug ${response.status()} ${response.request().method()} ${response.url()} on ${page.url()}\n`);
    if (response.status() >= 400) record.failedResponses.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname.replace(/\/(media|hls|api\/v1\/hls)\/[^/]+/, "/$1/GRANT")}`);
  });
  page.on("console", (message) => {
    // The location names the resource that failed to load, with any grant in its path hidden.
    const source = (message.location().url ?? "").replace(/\/(media|hls|api\/v1\/hls)\/[^/]+/, "/$1/GRANT");
    if (message.type() === "error") record.errors.push(`${message.text()} (${source || "no location"}, on ${new URL(page.url()).pathname})`);
  });
  page.on("pageerror", (error) => record.errors.push(`uncaught: ${error.message}`));
  page.on("request", (request) => {
    const url = new URL(request.url());
    const publicPaths = ["/api/v1/health", "/api/v1/login", "/api/v1/pair/start", "/api/v1/pair/finish", "/api/v1/passkeys/login/start", "/api/v1/passkeys/login/finish"];
    if (request.method() === "POST" && /^\/api\/v1\/items\/[^/]+\/playback$/.test(url.pathname)) record.playbackBodies.push(request.postDataJSON());
    if (url.pathname.startsWith("/api/") && !publicPaths.includes(url.pathname) && !request.headers()["hearth-session"]) {
      record.unsignedApiRequests.push(`${request.method()} ${url.pathname}`);
    }
  });
  return record;
}

/**
 * Runs axe-core on the page for WCAG 2.1 A and AA rules and returns the
 * violations of impact "serious" or "critical". The script is evaluated
 * through DevTools, so the page's CSP (script-src 'self') stays in force.
 */
export async function seriousViolations(page) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.slice(0, 5).map((node) => node.target.join(" ")),
    }));
  });
  return violations.filter((violation) => violation.impact === "serious" || violation.impact === "critical");
}
