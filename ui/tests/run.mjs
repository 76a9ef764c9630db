// End-to-end test of the web UI in Debian's Chromium against a real Hearth
// server that this script starts. It pairs, browses, plays past 2 s and
// resumes. It then uses the household screens, revokes a playing device,
// and runs axe-core on each screen. Screenshots of every main screen at
// phone (390×844) and desktop (1440×900) size go to tests/screenshots/.
//
// Inputs (environment):
//   HEARTH_BIN       the hearth binary (default $CARGO_TARGET_DIR/debug/hearth,
//                    else ~/.cache/hearth-target/debug/hearth)
//   HEARTH_CHROMIUM  Chromium (default /usr/bin/chromium)
//   HEARTH_UI_PORT   port on 127.0.0.1 (default 18543)
//   HEARTH_UI_LOG    file for the server's output (default tests/results/server.log)
//   HEARTH_UI_DEBUG  when set, prints every playback request and HLS clean-up with its status
//
// Needs a built UI (npm run build) and certutil (libnss3-tools). Exits with
// status 1 when a check fails, listing every failed check.

import { execFileSync } from "node:child_process";
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchBrowser, openDevice, seriousViolations } from "./browser.mjs";
import { startServer } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const uiDir = join(here, "..", "dist");
const shotsDir = join(here, "screenshots");
const resultsDir = join(here, "results");
mkdirSync(shotsDir, { recursive: true });
mkdirSync(resultsDir, { recursive: true });

const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "hearth-target");
const binary = process.env.HEARTH_BIN ?? join(targetDir, "debug", "hearth");
const chromiumPath = process.env.HEARTH_CHROMIUM ?? "/usr/bin/chromium";
const port = Number(process.env.HEARTH_UI_PORT ?? 18543);
const logFile = process.env.HEARTH_UI_LOG ?? join(resultsDir, "server.log");

const TIMEOUT_MS = 30_000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1440, height: 900 };
const ADMIN = { name: "admin", password: "correct horse battery staple" };
const MEMBER = { name: "sam", password: "another long passphrase" };
// Debian's forensics-samples: movie2/movie-hello.mp4 is H.264 and AAC,
// 8.3 s, which Chromium plays directly.
const VIDEO_TITLE = "movie-hello";
const VIDEO_MIME = "video/mp4";
// movie2/movie-hello.avi has the same picture in a container Chromium
// cannot open, so the server converts it to HLS.
const HLS_MIME = "video/x-msvideo";
const TV = { width: 1920, height: 1080 };

// A library made here: the H.264 sample with English and French SubRip
// files beside it. An 8-byte MP4 `free` box at the end changes its SHA-256,
// so the scanner indexes it as an item of its own.
const SUBTITLED_TITLE = "Family Picnic";
const subtitledLibrary = makeSubtitledLibrary();

const checks = [];
const logLines = [];

function check(name, ok, detail = "") {
  checks.push({ name, ok: Boolean(ok), detail });
  process.stdout.write(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}\n`);
}

const server = await startServer({
  binary,
  port,
  uiDir,
  libraries: ["/usr/share/forensics-samples/original-files", "/usr/share/sounds/freedesktop/stereo", subtitledLibrary],
  log: (line) => logLines.push(line),
});
let chromium;
try {
  chromium = await launchBrowser({ executable: chromiumPath, caFile: server.ca, timeoutMs: TIMEOUT_MS });
  await runScenario(chromium.browser, server);
} catch (error) {
  check("scenario ran to the end", false, error.stack ?? error.message);
} finally {
  await chromium?.close();
  await server.stop();
  rmSync(subtitledLibrary, { recursive: true, force: true });
  writeFileSync(logFile, logLines.join("\n"));
}

const failed = checks.filter((entry) => !entry.ok);
process.stdout.write(`\n${checks.length - failed.length} of ${checks.length} checks passed; screenshots in ${shotsDir}\n`);
process.exitCode = failed.length > 0 ? 1 : 0;

// ---------------------------------------------------------------------------

async function runScenario(browser, server) {
  const admin = await openDevice(browser, { viewport: DESKTOP, timeoutMs: TIMEOUT_MS });
  const page = admin.page;

  // 1. Pairing with the first-run link, pointed at the UI's pairing screen.
  const uiPairLink = server.pairLink.replace("/pair#", "/ui/pair#");
  await page.goto(uiPairLink);
  await page.locator("#pair-submit").waitFor();
  check("pairing screen takes the code from the link", (await page.locator("#code").inputValue()).length >= 8);
  check("pairing screen removes the code from the address bar", !page.url().includes("code="), page.url());
  await shoot(page, "pair");
  await axeCheck(page, "pair");

  await page.locator("#pair-submit").click();
  await page.locator("#account-name").waitFor();
  if (!(await page.locator("#account-name").evaluate((input) => input.readOnly))) await page.locator("#account-name").fill(ADMIN.name);
  await page.locator("#password").fill(ADMIN.password);
  await page.locator("#password-confirm").fill(ADMIN.password);
  await page.locator("#pair-submit").click();
  await page.waitForURL(/\/ui\/login/);
  check("pairing opens the sign-in screen", true);

  // 2. Sign-in.
  await page.locator("#device-line").waitFor();
  await shoot(page, "sign-in");
  await axeCheck(page, "sign-in");
  if (!(await page.locator("#name").inputValue())) await page.locator("#name").fill(ADMIN.name);
  await page.locator("#password").fill(ADMIN.password);
  await page.locator("#sign-in-submit").click();
  await page.waitForURL((url) => url.pathname === "/ui/" || url.pathname === "/ui");
  await page.locator("#items .item-card").first().waitFor();
  check("sign-in opens the library", true);

  // 3. Library: search, type filter, sort.
  await waitForThumbnails(page);
  await shoot(page, "library", [PHONE, DESKTOP, TV]);
  await axeCheck(page, "library");

  await page.locator("#search").fill(VIDEO_TITLE);
  await page.waitForFunction((title) => {
    const titles = [...document.querySelectorAll("#items .item-title")].map((element) => element.textContent);
    return titles.length > 0 && titles.every((text) => text.includes(title));
  }, VIDEO_TITLE);
  check("search narrows the grid", true);
  await page.locator("#search").fill("");
  await page.getByRole("button", { name: "Music" }).click();
  await page.waitForFunction(() => {
    const kinds = [...document.querySelectorAll("#items .item-card")].map((element) => element.dataset.kind);
    return kinds.length > 0 && kinds.every((kind) => kind === "audio");
  });
  check("type filter shows only music", true);
  await page.getByRole("button", { name: "All" }).click();
  await page.locator("#sort").selectOption("added-desc");
  await page.locator('#items[aria-busy="false"] .item-card').first().waitFor();

  // Arrow keys move focus between cards.
  const cards = page.locator("#items .item-card");
  await cards.first().focus();
  await page.keyboard.press("ArrowRight");
  const focusedSecond = await page.evaluate(() => document.activeElement?.closest(".item-card") === document.querySelectorAll("#items .item-card")[1]);
  check("arrow keys move focus along the grid", focusedSecond);

  // 4. Item page and playback.
  const videoCard = page.locator(`#items .item-card[data-mime="${VIDEO_MIME}"]`, { hasText: VIDEO_TITLE }).first();
  await page.locator("#search").fill(VIDEO_TITLE);
  await videoCard.waitFor();
  const itemId = await videoCard.getAttribute("data-id");
  await videoCard.click();
  await page.locator("#item-title").waitFor();
  await page.locator("#play").waitFor();
  await page.waitForFunction(() => !document.querySelector(".tracks")?.textContent?.includes("Loading"));
  await shoot(page, "item");
  await axeCheck(page, "item");

  await page.locator("#play").click();
  await page.waitForURL(/\/ui\/play\//);
  const played = await waitForTime(page, 2.1);
  check("video plays past 2 s", played.ok, played.detail);
  await page.mouse.move(700, 450);
  await shoot(page, "player");
  await showTrickplay(page);
  await page.screenshot({ path: join(shotsDir, `player-trickplay-${DESKTOP.width}x${DESKTOP.height}.png`) });
  await axeCheck(page, "player");

  // Keyboard shortcuts.
  await page.locator(".player").focus().catch(() => {});
  await page.keyboard.press("m");
  check("M mutes", await page.locator("#media").evaluate((element) => element.muted));
  await page.keyboard.press("m");
  await page.keyboard.press("Space");
  await page.waitForFunction(() => document.getElementById("media")?.paused === true);
  check("Space pauses", true);
  const before = await page.locator("#media").evaluate((element) => element.currentTime);
  await page.keyboard.press("ArrowLeft");
  const after = await page.locator("#media").evaluate((element) => element.currentTime);
  check("Left arrow jumps back", after < before, `${before.toFixed(2)} s to ${after.toFixed(2)} s`);
  await page.locator("#media").evaluate((element) => {
    element.currentTime = 3.2;
  });
  await page.waitForTimeout(300);

  // 5. Resume: leaving the player saves the position.
  await page.keyboard.press("Escape");
  await page.waitForURL(/\/ui\/item\//);
  await page.waitForTimeout(500);
  await page.reload();
  const resume = page.locator("#play");
  await resume.waitFor();
  const resumeText = (await resume.textContent()) ?? "";
  check("item page offers to resume", /Resume from 0:0[23]/.test(resumeText), resumeText.trim());
  await resume.click();
  await page.waitForURL(/\/ui\/play\//);
  await page.waitForFunction(() => {
    const element = document.getElementById("media");
    return element !== null && element.readyState >= 1 && element.currentTime > 0;
  });
  const resumedAt = await page.locator("#media").evaluate((element) => element.currentTime);
  check("playback resumes near the saved position", resumedAt >= 2.5, `${resumedAt.toFixed(2)} s`);
  await page.keyboard.press("Escape");
  await page.waitForURL(/\/ui\/item\//);

  await page.getByRole("link", { name: "Library", exact: true }).first().click();
  await page.locator("#continue-watching").waitFor();
  check("continue watching lists the item", (await page.locator(`#continue-watching [data-id="${itemId}"]`).count()) === 1);
  await shoot(page, "library-continue", [PHONE, DESKTOP]);

  // A TV: the remote's arrows move a visible focus ring over the cards.
  await page.setViewportSize(TV);
  await page.locator("#items .item-card").first().focus();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowRight");
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shotsDir, `library-focus-${TV.width}x${TV.height}.png`) });
  await page.setViewportSize(DESKTOP);

  // A photo opens full size on its item page, with its camera data.
  await page.locator("#search").fill("IMG 1054");
  const photoCard = page.locator('#items .item-card[data-kind="image"]', { hasText: "IMG 1054" }).first();
  await photoCard.waitFor();
  await photoCard.click();
  await page.locator(".item-art img.photo").waitFor();
  await page.waitForFunction(() => document.querySelector(".item-art img.photo")?.complete === true);
  check("photo page shows the photo", (await page.locator(".item-art img.photo").evaluate((image) => image.naturalWidth)) > 0);
  await shoot(page, "item-photo");
  await axeCheck(page, "item-photo");
  await page.getByRole("link", { name: "Library", exact: true }).first().click();

  // Music plays in the same player, with its cover or placeholder art.
  await page.locator("#search").fill("bell");
  const audioCard = page.locator('#items .item-card[data-kind="audio"]').first();
  await audioCard.waitFor();
  await page.goto(`${server.url}/ui/play/${await audioCard.getAttribute("data-id")}`);
  const audioPlayed = await waitForTime(page, 0.2);
  check("music plays", audioPlayed.ok, audioPlayed.detail);
  await page.locator("#media").evaluate((element) => element.pause());
  await shoot(page, "player-audio", [PHONE, DESKTOP]);
  await page.keyboard.press("Escape");
  await page.waitForURL(/\/ui\/item\//);
  await page.getByRole("link", { name: "Library", exact: true }).first().click();

  // Subtitles: the item page lists the sidecar files, and C shows them.
  await page.locator("#search").fill(SUBTITLED_TITLE);
  const subtitledCard = page.locator("#items .item-card", { hasText: SUBTITLED_TITLE }).first();
  await subtitledCard.waitFor();
  await subtitledCard.click();
  await page.locator(".tracks dd", { hasText: "English" }).first().waitFor();
  const listed = await page.locator(".tracks").textContent();
  check("item page lists both subtitle files", /English/.test(listed ?? "") && /French/.test(listed ?? ""), (listed ?? "").replace(/\s+/g, " ").slice(0, 200));
  await page.locator("#play").click();
  await waitForTime(page, 0.5);
  await page.keyboard.press("c");
  const showing = await page
    .waitForFunction(() => {
      const track = document.getElementById("media")?.textTracks[0];
      const shown = document.getElementById("subtitle-text")?.textContent ?? "";
      return track !== undefined && track.mode === "hidden" && shown.trim().length > 0;
    })
    .then(
      () => true,
      () => false,
    );
  check("C shows the first subtitle track", showing);
  await page.mouse.move(700, 450);
  await page.getByRole("button", { name: "Subtitles" }).click();
  await page.screenshot({ path: join(shotsDir, `player-subtitles-${DESKTOP.width}x${DESKTOP.height}.png`) });
  await page.keyboard.press("Escape");
  await page.keyboard.press("Escape");
  await page.waitForURL(/\/ui\/item\//);
  await page.getByRole("link", { name: "Library", exact: true }).first().click();

  // HLS: a file Chromium cannot open plays through the server's transcode,
  // and the quality menu switches to another rung of the ladder.
  await page.locator("#search").fill(VIDEO_TITLE);
  const hlsCard = page.locator(`#items .item-card[data-mime="${HLS_MIME}"]`).first();
  await hlsCard.waitFor();
  const hlsId = await hlsCard.getAttribute("data-id");
  await page.goto(`${server.url}/ui/play/${hlsId}`);
  const hlsPlayed = await waitForTime(page, 2.1, 90_000);
  check("HLS video plays past 2 s", hlsPlayed.ok && hlsPlayed.detail.startsWith("hls"), hlsPlayed.detail);
  await page.mouse.move(700, 450);
  await page.getByRole("button", { name: "Quality" }).click();
  const rungs = await page.locator('#quality-menu input[name="quality"]').count();
  check("quality menu lists the HLS ladder", rungs >= 2, `${rungs} choices`);
  await page.screenshot({ path: join(shotsDir, `player-quality-${DESKTOP.width}x${DESKTOP.height}.png`) });
  if (rungs >= 2) {
    const lowest = page.locator('#quality-menu input[name="quality"]').last();
    const label = ((await page.locator("#quality-menu label").last().textContent()) ?? "").trim();
    const oldSource = await page.locator("#media").getAttribute("data-source");
    // Choosing closes the menu, so the radio is gone before it could be read back.
    await lowest.click();
    const switched = await page
      .waitForFunction(
        (previous) => {
          const element = document.getElementById("media");
          return element !== null && element.dataset.source !== previous && element.readyState >= 3 && element.currentTime > 1 && !element.paused;
        },
        oldSource,
        { timeout: 90_000 },
      )
      .then(
        () => true,
        () => false,
      );
    const quality = await page.locator("#media").getAttribute("data-quality");
    check("quality change plays the new rung", switched && quality === label, `${label}: now ${quality}`);
  }
  await page.keyboard.press("Escape");
  await page.waitForURL(/\/ui\/item\//);
  await page.getByRole("link", { name: "Library", exact: true }).first().click();
  await page.locator("#search").fill("");

  // 6. Household: a pairing offer for a second person.
  await page.getByRole("link", { name: "Household" }).click();
  await page.locator("#devices .row").first().waitFor();
  await page.locator("#offer-name").fill(MEMBER.name);
  await page.locator("#offer-role").selectOption("adult");
  await page.locator("#offer-create").click();
  await page.locator("#offer-link").waitFor();
  const memberLink = await page.locator("#offer-link").inputValue();
  check("pairing offer shows a link to the UI's pairing screen", memberLink.includes("/ui/pair#offer="), memberLink.replace(/code=[^&]*/, "code=…"));
  check("pairing offer shows a QR code", (await page.locator("#offer img.qr").count()) === 1);
  await shoot(page, "household");
  await axeCheck(page, "household");

  // 7. The second device pairs, signs in and plays; the admin revokes it.
  const member = await openDevice(browser, { viewport: PHONE, timeoutMs: TIMEOUT_MS });
  await member.page.goto(memberLink);
  await member.page.locator("#pair-submit").click();
  await member.page.locator("#password").waitFor();
  if (!(await member.page.locator("#account-name").evaluate((input) => input.readOnly))) await member.page.locator("#account-name").fill(MEMBER.name);
  await member.page.locator("#password").fill(MEMBER.password);
  await member.page.locator("#password-confirm").fill(MEMBER.password);
  await member.page.locator("#pair-submit").click();
  await member.page.waitForURL(/\/ui\/login/);
  await member.page.locator("#password").fill(MEMBER.password);
  await member.page.locator("#sign-in-submit").click();
  await member.page.locator("#items .item-card").first().waitFor();
  check("second device pairs and signs in", true);
  await waitForThumbnails(member.page);
  check("member sees no household page", (await member.page.getByRole("link", { name: "Household" }).count()) === 0);
  await shoot(member.page, "library-member", [PHONE]);
  await member.page.goto(`${server.url}/ui/play/${itemId}`);
  const memberPlayed = await waitForTime(member.page, 1);
  check("second device plays", memberPlayed.ok, memberPlayed.detail);
  const memberStream = await member.page.locator("#media").evaluate((element) => element.currentSrc);

  await page.getByRole("button", { name: "Refresh" }).first().click();
  const memberRow = page.locator("#devices .row", { hasText: MEMBER.name });
  await memberRow.getByRole("button", { name: /^Revoke/ }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Revoke" }).click();
  await page.locator("#household-status", { hasText: "Revoked" }).waitFor();
  check("admin revokes the device", true);

  const grantStatus = await member.page.evaluate(async (url) => (await fetch(url, { headers: { Range: "bytes=0-1" } })).status, memberStream);
  check("revoked device's media grant stops", grantStatus === 401, `status ${grantStatus}`);
  await member.page.locator(".player-top a").click();
  await member.page.waitForURL(/\/ui\/pair\?ended=revoked/, { timeout: 15_000 }).then(
    () => check("revoked device is sent to pairing", true),
    () => check("revoked device is sent to pairing", false, member.page.url()),
  );
  check("revoked device sees why", (await member.page.locator("#pair-status").textContent())?.includes("revoked"));
  await shoot(member.page, "revoked", [PHONE]);

  // 8. Security and activity. A client limited to X25519 leaves a
  // classical connection in the list, which the screen must flag.
  try {
    execFileSync("curl", ["-s", "-o", "/dev/null", "--cacert", server.ca, "--curves", "X25519", `${server.url}/api/v1/health`], { stdio: "pipe" });
  } catch (error) {
    check("curl made a classical connection", false, error.message.split("\n")[0]);
  }
  await page.getByRole("link", { name: "Security" }).click();
  await page.locator("#own-connection").waitFor();
  await page.locator("#connections tbody tr").first().waitFor();
  const group = await page.locator("#own-connection").getAttribute("data-group");
  check("security shows this connection's key exchange", group === "X25519MLKEM768", group);
  await page.locator("#audit tbody tr").first().waitFor();
  check("security lists audit records", (await page.locator("#audit tbody tr").count()) > 1);
  const classicalRows = await page.locator('#connections tbody tr[data-group="X25519"] .state.warn').count();
  check("security flags the classical connection", classicalRows >= 1, `${classicalRows} flagged rows`);
  await shoot(page, "security");
  await axeCheck(page, "security");

  await page.getByRole("link", { name: "Activity" }).click();
  await page.locator("#scan-progress").waitFor();
  await page.locator("#transcodes").waitFor();
  check("activity shows scan progress", (await page.locator("#scan-progress").getAttribute("data-phase")) === "done");
  await page.getByRole("button", { name: "Scan now" }).click();
  const rescanned = await page
    .waitForFunction(() => {
      const status = document.querySelector(".activity .actions .status")?.textContent ?? "";
      return /Scan started|already running/.test(status) && document.getElementById("scan-progress")?.getAttribute("data-phase") === "done";
    })
    .then(
      () => true,
      () => false,
    );
  check("scan now runs a scan to the end", rescanned);
  await shoot(page, "activity");
  await axeCheck(page, "activity");

  // 9. Page health.
  check("admin page has no console errors", admin.errors.length === 0 && admin.failedResponses.length === 0, [...admin.errors.slice(0, 5), ...admin.failedResponses.slice(0, 5)].join(" | "));
  check("every API call is signed", admin.unsignedApiRequests.length === 0 && member.unsignedApiRequests.length === 0, [...admin.unsignedApiRequests, ...member.unsignedApiRequests].join(", "));
  const memberErrors = member.errors.filter((text) => !/401|Unauthorized/.test(text));
  check("member page has no console errors besides the revocation's 401s", memberErrors.length === 0, memberErrors.slice(0, 5).join(" | "));
}

/** Creates the subtitled library in a temporary folder and returns its path. */
function makeSubtitledLibrary() {
  const folder = mkdtempSync(join(tmpdir(), "hearth-ui-library-"));
  const video = join(folder, `${SUBTITLED_TITLE}.mp4`);
  copyFileSync("/usr/share/forensics-samples/original-files/movie2/movie-hello.mp4", video);
  appendFileSync(video, Buffer.from([0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65]));
  const cues = (lines) => lines.map((text, index) => `${index + 1}\n00:00:0${index * 2},000 --> 00:00:0${index * 2 + 2},000\n${text}\n`).join("\n");
  writeFileSync(join(folder, `${SUBTITLED_TITLE}.en.srt`), cues(["Hello, everyone!", "Is the picnic ready?", "Bring the blanket.", "See you at the park."]));
  writeFileSync(join(folder, `${SUBTITLED_TITLE}.fr.srt`), cues(["Bonjour à tous !", "Le pique-nique est prêt ?", "Apporte la couverture.", "À tout à l'heure au parc."]));
  return folder;
}

/** Saves a screenshot of the whole page at each size (the player: of the screen). */
async function shoot(page, name, sizes = [PHONE, DESKTOP]) {
  const original = page.viewportSize();
  for (const size of sizes) {
    await page.setViewportSize(size);
    await page.waitForTimeout(350);
    if (name !== "player") await loadWholePage(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) check(`${name} at ${size.width} px fits the width`, false, `${overflow} px wider`);
    await page.screenshot({ path: join(shotsDir, `${name}-${size.width}x${size.height}.png`), fullPage: name !== "player" });
  }
  if (original) await page.setViewportSize(original);
}

/** Runs axe-core at phone and desktop size, where the navigation differs. */
async function axeCheck(page, screen) {
  const original = page.viewportSize();
  const found = [];
  for (const size of [PHONE, DESKTOP]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(200);
    for (const violation of await seriousViolations(page)) {
      found.push(`${size.width} px: ${violation.id} (${violation.impact}): ${violation.targets.join(", ")}`);
    }
  }
  if (original) await page.setViewportSize(original);
  check(`${screen}: no serious axe violations`, found.length === 0, found.join(" | "));
}

/** Scrolls to the end and back, so lazily loaded thumbnails load before a full-page screenshot. */
async function loadWholePage(page) {
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  for (let y = 0; y < height; y += 600) {
    await page.evaluate((top) => window.scrollTo(0, top), y);
    await page.waitForTimeout(60);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await waitForThumbnails(page);
  await page.mouse.move(0, 0);
}

/** Waits until every visible thumbnail has loaded or failed, at most 10 s. */
async function waitForThumbnails(page) {
  await page
    .waitForFunction(() => [...document.querySelectorAll(".thumb img")].every((image) => image.complete), null, { timeout: 10_000 })
    .catch(() => {});
}

/** Waits until #media plays past `seconds`; returns `{ok, detail}`. */
async function waitForTime(page, seconds, timeoutMs = 20_000) {
  try {
    await page.locator("#media").waitFor({ state: "attached" });
    await page.waitForFunction(
      (limit) => {
        const element = document.getElementById("media");
        if (element?.error) throw new Error(`media error ${element.error.code}`);
        return element !== null && element.currentTime > limit;
      },
      seconds,
      { timeout: timeoutMs },
    );
    const state = await page.locator("#media").evaluate((element) => `${element.dataset.mode} at ${element.currentTime.toFixed(2)} s`);
    return { ok: true, detail: state };
  } catch (error) {
    return { ok: false, detail: error.message.split("\n")[0] };
  }
}

/** Hovers the seek bar so the trickplay preview shows, if the server made sheets. */
async function showTrickplay(page) {
  const seek = page.locator("#seek");
  const box = await seek.boundingBox();
  if (!box) return;
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.waitForTimeout(300);
  const tile = await page.locator(".seek-tile").count();
  check("seek bar shows a trickplay preview", tile === 1);
}
