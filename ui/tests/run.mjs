// End-to-end test of the web UI in Debian's Chromium against a real Hearth
// server that this script starts. It pairs, runs the first-run wizard,
// browses, plays past 2 s and resumes, and pairs the admin's phone, which
// continues what the desktop played. It then uses the household screens,
// ends a session and revokes a playing device, and runs axe-core on each
// screen. Screenshots of every main screen at phone (390×844) and desktop
// (1440×900) size go to tests/screenshots/.
//
// Inputs (environment):
//   HEARTH_BIN       the hearth binary (default $CARGO_TARGET_DIR/debug/hearth,
//                    else ~/.cache/hearth-target/debug/hearth)
//   HEARTH_CHROMIUM  Chromium (default /usr/bin/chromium)
//   HEARTH_UI_PORT   port on 127.0.0.1 (default 18543)
//   HEARTH_UI_LOG    file for the server's output (default tests/results/server.log)
//   HEARTH_UI_DEBUG  when set, prints every playback request and HLS clean-up with its status
//
// Needs a built UI (npm run build), certutil (libnss3-tools) and ffmpeg.
// Exits with status 1 when a check fails, listing every failed check.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchBrowser, openDevice, seriousViolations } from "./browser.mjs";
import { checkGuardSection } from "./guard.mjs";
import { checkPasskeySignIn } from "./passkey.mjs";
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

// A library made here, which the first-run wizard adds: the H.264 sample
// remuxed by ffmpeg with a second audio track, year and genre tags, and
// English and French SubRip files beside it. The remux changes its SHA-256,
// so the scanner indexes it as an item of its own.
const SUBTITLED_TITLE = "Family Picnic";
const SUBTITLED_YEAR = "2019";
const SUBTITLED_GENRE = "Home Movies";
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
  libraries: ["/usr/share/forensics-samples/original-files", "/usr/share/sounds/freedesktop/stereo"],
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

  // 1. Pairing with the first-run link as printed: the server redirects
  // /pair to the UI's pairing screen, and the browser keeps the fragment.
  check("first-run link is the server's /pair link", new URL(server.pairLink).pathname === "/pair", server.pairLink.replace(/code=[^&]*/, "code=…"));
  await page.goto(server.pairLink);
  await page.locator("#pair-submit").waitFor();
  check("printed pairing link opens the UI's pairing screen", new URL(page.url()).pathname === "/ui/pair", page.url());
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

  // 2. Sign-in. The household has one device, so the wizard opens.
  await page.locator("#device-line").waitFor();
  await shoot(page, "sign-in");
  await axeCheck(page, "sign-in");
  if (!(await page.locator("#name").inputValue())) await page.locator("#name").fill(ADMIN.name);
  await page.locator("#password").fill(ADMIN.password);
  await page.locator("#sign-in-submit").click();
  await page.waitForURL(/\/ui\/setup$/).then(
    () => check("sign-in opens the first-run wizard", true),
    () => check("sign-in opens the first-run wizard", false, page.url()),
  );
  const phoneLink = await runWizard(page);

  await page.locator("#items .item-card").first().waitFor();
  check("finishing the wizard opens the library", new URL(page.url()).pathname === "/ui/");

  // The admin's phone pairs with the wizard's offer and signs in. The
  // household now has two devices, so the wizard stays closed there.
  const phone = await openDevice(browser, { viewport: PHONE, timeoutMs: TIMEOUT_MS });
  await phone.page.goto(phoneLink);
  await phone.page.locator("#pair-submit").click();
  await phone.page.waitForURL(/\/ui\/login/);
  await phone.page.locator("#password").fill(ADMIN.password);
  await phone.page.locator("#sign-in-submit").click();
  await phone.page.locator("#items .item-card").first().waitFor();
  check("admin's phone pairs with the wizard's offer and opens the library", new URL(phone.page.url()).pathname === "/ui/", phone.page.url());

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

  // Year and genre come from the tags of the wizard's folder.
  await page.locator(".more-filters summary").click();
  const years = await page.locator("#year option").allTextContents();
  const genres = await page.locator("#genre option").allTextContents();
  check("year filter lists the tagged year", years.includes(SUBTITLED_YEAR), years.join(", "));
  check("genre filter lists the tagged genre", genres.includes(SUBTITLED_GENRE), genres.join(", "));
  await page.locator("#year").selectOption(SUBTITLED_YEAR);
  // The Debian samples have 2019 items too, but movie-hello has no date tag.
  const byYear = await waitForTitles(page, (titles) => titles.includes(SUBTITLED_TITLE) && !titles.some((title) => title.includes(VIDEO_TITLE)));
  check("year filter shows only that year's items", byYear.ok, byYear.detail);
  await shoot(page, "library-filtered", [PHONE, DESKTOP]);
  await page.locator("#clear-filters").click();
  await page.locator("#genre").selectOption(SUBTITLED_GENRE);
  const byGenre = await waitForTitles(page, (titles) => titles.length > 0 && titles.every((title) => title === SUBTITLED_TITLE));
  check("genre filter shows only that genre's items", byGenre.ok, byGenre.detail);
  await page.locator("#clear-filters").click();
  const unfiltered = await waitForTitles(page, (titles) => titles.length > 1);
  check("clearing the filters shows every item again", unfiltered.ok, unfiltered.detail);
  await page.locator(".more-filters summary").click();

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
  check("item page starts no playback", admin.playbackBodies.length === 0, `${admin.playbackBodies.length} playback requests`);

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

  // The row comes from the server: it survives cleared storage, and the
  // same user's phone shows what the desktop played.
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.locator("#items .item-card").first().waitFor();
  const afterClear = await page.locator(`#continue-watching [data-id="${itemId}"]`).waitFor({ timeout: 10_000 }).then(() => true, () => false);
  check("continue watching survives cleared local storage", afterClear);
  await phone.page.reload();
  const onPhone = await phone.page.locator(`#continue-watching [data-id="${itemId}"]`).waitFor({ timeout: 10_000 }).then(() => true, () => false);
  check("continue watching shows the desktop's item on the phone", onPhone);
  await shoot(phone.page, "library-continue-phone", [PHONE]);

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
  await page.locator(".tracks dd[data-subtitle-track]", { hasText: "English" }).first().waitFor();
  const subtitleLines = await page.locator(".tracks dd[data-subtitle-track]").allTextContents();
  check("item page lists both subtitle files", subtitleLines.some((line) => /English/.test(line)) && subtitleLines.some((line) => /French/.test(line)), subtitleLines.join(" | "));
  const audioLines = await page.locator(".tracks dd[data-audio-track]").allTextContents();
  check("item page lists both audio tracks", audioLines.length === 2 && /English/.test(audioLines[0]) && /French/.test(audioLines[1]), audioLines.join(" | "));
  await shoot(page, "item-tracks", [PHONE, DESKTOP]);
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

  // The audio menu lists both tracks; the second one needs a new playback,
  // which continues from the same position.
  await page.mouse.move(700, 450);
  await page.getByRole("button", { name: "Audio" }).click();
  const audioChoices = await page.locator('#audio-menu input[name="audio"]').count();
  check("player offers both audio tracks", audioChoices === 2, `${audioChoices} choices`);
  await page.screenshot({ path: join(shotsDir, `player-audio-tracks-${DESKTOP.width}x${DESKTOP.height}.png`) });
  if (audioChoices === 2) {
    const before = await page.locator("#media").evaluate((element) => ({ source: element.dataset.source, time: element.currentTime }));
    const requestsBefore = admin.playbackBodies.length;
    await page.locator('#audio-menu input[name="audio"]').nth(1).click();
    const switched = await page
      .waitForFunction(
        // The new playback is HLS (see startPlayback), and playback.js names
        // the level once hls.js plays it, so the old direct stream cannot pass.
        (previous) => {
          const element = document.getElementById("media");
          return (
            element !== null &&
            element.dataset.source !== previous &&
            element.dataset.mode === "hls" &&
            Boolean(element.dataset.rendition) &&
            element.readyState >= 3 &&
            !element.paused &&
            element.currentTime > 0.5
          );
        },
        before.source,
        { timeout: 90_000 },
      )
      .then(
        () => true,
        () => false,
      );
    const body = admin.playbackBodies.slice(requestsBefore).at(-1);
    check("audio track choice plays the second track", switched && body?.audio_track === 1, JSON.stringify(body ?? null));
  }
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
    const requestsBefore = admin.playbackBodies.length;
    // Choosing closes the menu, so the radio is gone before it could be read back.
    await lowest.click();
    // playback.js writes the NAME of the level hls.js switched to into data-rendition.
    const switched = await page
      .waitForFunction(
        (name) => {
          const element = document.getElementById("media");
          return element !== null && element.dataset.rendition === name && element.readyState >= 3 && !element.paused;
        },
        label,
        { timeout: 90_000 },
      )
      .then(
        () => true,
        () => false,
      );
    const quality = await page.locator("#media").getAttribute("data-quality");
    const rendition = await page.locator("#media").getAttribute("data-rendition");
    check("quality change switches the hls.js level", switched && quality === label, `${label}: now ${quality}, playing ${rendition}`);
    const sameSource = (await page.locator("#media").getAttribute("data-source")) === oldSource;
    check("quality change keeps the playback", sameSource && admin.playbackBodies.length === requestsBefore, `${admin.playbackBodies.length - requestsBefore} new playback requests`);
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
  check("pairing offer shows the server's link", new URL(memberLink).pathname === "/pair" && memberLink.includes("#offer="), memberLink.replace(/code=[^&]*/, "code=…"));
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

  // Roles: the admin makes the member a teen, then disables and enables the account.
  const samRow = page.locator("#users .row", { hasText: MEMBER.name });
  await samRow.locator("select").selectOption("teen");
  await samRow.getByRole("button", { name: `Change the role of ${MEMBER.name}` }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Change" }).click();
  await page.locator("#household-status", { hasText: "is now Teen" }).waitFor().then(
    () => check("admin changes a user's role", true),
    async () => check("admin changes a user's role", false, (await page.locator("#household-status").textContent()) ?? ""),
  );
  const teenRow = await page.locator(`#users .row[data-role="teen"]`, { hasText: MEMBER.name }).waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("user list shows the new role", teenRow);
  await samRow.getByRole("button", { name: `Disable ${MEMBER.name}` }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Disable" }).click();
  await samRow.getByRole("button", { name: `Enable ${MEMBER.name}` }).waitFor();
  await samRow.getByRole("button", { name: `Enable ${MEMBER.name}` }).click();
  await page.locator("#household-status", { hasText: "Enabled" }).waitFor().then(
    () => check("admin enables a disabled user again", true),
    () => check("admin enables a disabled user again", false),
  );
  await page.locator("#libraries .row").first().waitFor();
  check("household lists the library folders", (await page.locator("#libraries .row").count()) === 3);
  await shootSection(page, "household-users", page.locator("section", { has: page.locator("#users-title") }));
  await shootSection(page, "household-libraries", page.locator("section", { has: page.locator("#libraries-title") }));

  // The phone plays the file that needs conversion, and the admin's
  // activity screen lists that playback with its user and qualities.
  await phone.page.goto(`${server.url}/ui/play/${hlsId}`);
  const phoneHls = await waitForTime(phone.page, 1, 90_000);
  check("phone plays through HLS", phoneHls.ok && phoneHls.detail.startsWith("hls"), phoneHls.detail);
  await page.getByRole("link", { name: "Activity" }).click();
  const playbackRow = page.locator("#playbacks .row", { hasText: VIDEO_TITLE }).first();
  const playbackListed = await playbackRow.waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  const playbackText = playbackListed ? ((await playbackRow.textContent()) ?? "").replace(/\s+/g, " ").trim() : "";
  check("activity lists the phone's HLS playback", playbackListed && playbackText.includes(ADMIN.name), playbackText);
  await shootSection(page, "activity-playbacks", page.locator("section", { has: page.locator("#transcodes-title") }));

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

  // Signed-in devices: the desktop and the phone, both post-quantum; the
  // admin ends the phone's session, and the phone is signed out.
  await page.locator("#sessions .row").first().waitFor();
  const sessionRows = await page.locator("#sessions .row").count();
  check("security lists the signed-in devices", sessionRows >= 2, `${sessionRows} rows`);
  check("security marks this browser's session", (await page.locator('#sessions .row[data-current="true"]').count()) === 1);
  const pqSessions = await page.locator('#sessions .row[data-group="X25519MLKEM768"] .state.good').count();
  check("signed-in devices show post-quantum key exchange", pqSessions >= 2, `${pqSessions} rows`);
  await shoot(page, "security");
  await axeCheck(page, "security");
  await shootSection(page, "security-sessions", page.locator("section", { has: page.locator("#sessions-title") }));
  await checkGuardSection({ page, binary, server, check, shootSection, axeCheck, shotsDir, sizes: [PHONE, DESKTOP] });

  // The member's sessions ended with the revocation, so the only other session is the phone's.
  const phoneRow = page.locator('#sessions .row:not([data-current="true"])').first();
  const phoneHandle = await phoneRow.getAttribute("data-handle");
  await phoneRow.getByRole("button", { name: /^End the session/ }).click();
  await page.locator("dialog[open]").waitFor();
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(shotsDir, `security-end-session-${PHONE.width}x${PHONE.height}.png`) });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(shotsDir, `security-end-session-${DESKTOP.width}x${DESKTOP.height}.png`) });
  await page.locator("dialog[open]").getByRole("button", { name: "End" }).click();
  await page.locator("#sessions-status", { hasText: "Signed" }).waitFor();
  const phoneRowGone = await page.locator(`#sessions .row[data-handle="${phoneHandle}"]`).waitFor({ state: "detached", timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("admin ends the phone's session", phoneRowGone, `${sessionRows} rows before`);
  await phone.page.reload();
  await phone.page.waitForURL(/\/ui\/login/, { timeout: 15_000 }).then(
    () => check("ended session signs the phone out", true),
    () => check("ended session signs the phone out", false, phone.page.url()),
  );

  // After a reload the scan cards come from GET /api/v1/scan alone, which lists every library.
  await page.getByRole("link", { name: "Activity" }).click();
  await page.reload();
  await page.locator("#scan-progress").waitFor();
  await page.locator("#transcodes").waitFor();
  check("activity shows scan progress", (await page.locator("#scan-progress").getAttribute("data-phase")) === "done");
  const scanCards = await page.locator("#scan-progress .scan-card").count();
  check("activity shows every library's scan", scanCards === 3, `${scanCards} libraries`);

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

  // Passkeys need a host name, so a new device opens the server as localhost.
  await checkPasskeySignIn({ browser, adminPage: page, admin: ADMIN, check, shoot, shootSection, axeCheck, viewport: DESKTOP, timeoutMs: TIMEOUT_MS });

  // 9. Page health.
  // The wizard's rejected folder returns 400 on purpose, and the browser logs it.
  const adminFailures = admin.failedResponses.filter((line) => line !== "400 POST /api/v1/admin/libraries");
  const adminErrors = admin.errors.filter((text) => !/status of 400 .*\/api\/v1\/admin\/libraries/.test(text));
  check("admin page has no console errors", adminErrors.length === 0 && adminFailures.length === 0, [...adminErrors.slice(0, 5), ...adminFailures.slice(0, 5)].join(" | "));
  check(
    "every API call is signed",
    admin.unsignedApiRequests.length === 0 && member.unsignedApiRequests.length === 0 && phone.unsignedApiRequests.length === 0,
    [...admin.unsignedApiRequests, ...member.unsignedApiRequests, ...phone.unsignedApiRequests].join(", "),
  );
  const memberErrors = member.errors.filter((text) => !/401|Unauthorized/.test(text));
  check("member page has no console errors besides the revocation's 401s", memberErrors.length === 0, memberErrors.slice(0, 5).join(" | "));
}

/**
 * Runs the first-run wizard: adds the made library and waits for its item,
 * skips the passkey (WebAuthn needs a host name, and the test uses
 * 127.0.0.1), and creates a pairing offer for the admin's phone. Returns
 * the offer's link.
 */
async function runWizard(page) {
  await page.locator("#step-title").waitFor();
  const pathInput = page.getByLabel("Folder path");
  await pathInput.fill("/proc");
  await page.getByRole("button", { name: "Add folder" }).click();
  const rejection = page.locator(".folder-form .status.error");
  const rejected = await rejection.waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("wizard shows why a folder is rejected", rejected, rejected ? ((await rejection.textContent()) ?? "") : "");

  await pathInput.fill(subtitledLibrary);
  await page.getByRole("button", { name: "Add folder" }).click();
  await page.locator("#libraries .row", { hasText: subtitledLibrary }).waitFor();
  const appeared = await page
    .waitForFunction(
      (path) => [...document.querySelectorAll("#libraries .row")].some((row) => row.textContent.includes(path) && Number(row.querySelector("[data-items]")?.dataset.items) >= 1),
      subtitledLibrary,
      { timeout: 60_000 },
    )
    .then(
      () => true,
      () => false,
    );
  check("wizard shows the added folder's items", appeared);
  check("wizard counts the library's items", await page.locator("#setup-found").isVisible());
  await shoot(page, "setup-folders");
  await axeCheck(page, "setup-folders");

  await page.locator("#setup-next").click();
  const explained = await page.locator("#setup-passkey-unavailable").waitFor({ timeout: 5_000 }).then(
    () => true,
    () => false,
  );
  check("wizard says why passkeys need the server's name", explained);
  await shoot(page, "setup-passkey");
  await axeCheck(page, "setup-passkey");
  await page.locator("#setup-skip").click();

  await page.locator("#setup-offer-create").click();
  await page.locator("#offer-link").waitFor();
  const link = await page.locator("#offer-link").inputValue();
  const code = ((await page.locator("#offer-code").textContent()) ?? "").trim();
  check("wizard creates a pairing offer with a QR code", (await page.locator("#offer img.qr").count()) === 1 && link.includes("#offer="), link.replace(/code=[^&]*/, "code=…"));
  check("wizard shows the short code", /^[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(code), code.replace(/[A-Z0-9]/g, "x"));
  await shoot(page, "setup-pair");
  await axeCheck(page, "setup-pair");

  await page.locator("#setup-finish").click();
  await page.waitForURL((url) => url.pathname === "/ui/");
  return link;
}

/** Waits up to 10 s until the grid's titles satisfy `predicate`; returns `{ok, detail}` with the last titles seen. */
async function waitForTitles(page, predicate) {
  let titles = [];
  for (let attempt = 0; attempt < 40; attempt += 1) {
    await page.waitForTimeout(250);
    if ((await page.locator('#items[aria-busy="true"]').count()) > 0) continue;
    titles = await page.locator("#items .item-title").allTextContents();
    if (predicate(titles)) return { ok: true, detail: `${titles.length} items` };
  }
  return { ok: false, detail: titles.slice(0, 8).join(", ") };
}

/** Creates the wizard's library in a temporary folder and returns its path. */
function makeSubtitledLibrary() {
  const folder = mkdtempSync(join(tmpdir(), "hearth-ui-library-"));
  const video = join(folder, `${SUBTITLED_TITLE}.mp4`);
  // The file's first audio track is English and its second French, so the player can switch.
  execFileSync(
    "ffmpeg",
    [
      ...["-v", "error", "-y", "-i", "/usr/share/forensics-samples/original-files/movie2/movie-hello.mp4"],
      ...["-map", "0:v", "-map", "0:a", "-map", "0:a", "-c", "copy"],
      ...["-metadata", `title=${SUBTITLED_TITLE}`, "-metadata", `date=${SUBTITLED_YEAR}`, "-metadata", `genre=${SUBTITLED_GENRE}`],
      ...["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"],
      video,
    ],
    { stdio: "pipe" },
  );
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

/** Saves a screenshot of one section of the page at phone and desktop size. */
async function shootSection(page, name, section) {
  const original = page.viewportSize();
  for (const size of [PHONE, DESKTOP]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(350);
    await section.screenshot({ path: join(shotsDir, `${name}-${size.width}x${size.height}.png`) });
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
