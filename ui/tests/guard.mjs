// Checks of the security center's intrusion guard section, for run.mjs.
// curl, bound to a second loopback address, makes two requests that the
// guard's rules flag, so the browser at 127.0.0.1 is never banned. The
// hearth CLI bans another address on the running test server, the admin
// sees the alerts and both bans in the UI, lifts the CLI's ban by keyboard
// through the confirm dialog, and the CLI confirms that the ban is gone.

import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";

/** A documentation address (RFC 5737), so the ban blocks no real client. */
const BANNED = "192.0.2.7";
const BAN_REASON = "lodger's laptop";
/** The source of the flagged requests: loopback, but not the browser's address. */
const PROBER = "127.0.0.2";

/**
 * Runs the checks on `page`, an admin's security screen at desktop size.
 * `server` is startServer's result and must include `dataDir`, because the
 * CLI `binary` needs the data folder to reach the server's admin socket.
 * `check`, `shootSection` and `axeCheck` are run.mjs's helpers. The open
 * dialog is saved to `shotsDir` at each of `sizes`.
 */
export async function checkGuardSection({ page, binary, server, check, shootSection, axeCheck, shotsDir, sizes }) {
  if (!server.dataDir) throw new Error("startServer returned no dataDir, which the hearth guard commands need: return it from tests/server.mjs");
  const hearth = (...args) => execFileSync(binary, [...args, "--data-dir", server.dataDir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const bannedByCli = () => JSON.parse(hearth("guard", "bans", "--json")).some((ban) => ban.source === BANNED);
  // The exit status is not checked: the ban that TRACE causes may close the
  // connection before curl reads the whole response. The alert checks below
  // show whether the requests arrived.
  const probe = (...args) => spawnSync("curl", ["-s", "-o", "/dev/null", "--interface", PROBER, "--cacert", server.ca, ...args], { stdio: "pipe", timeout: 10_000 });

  const section = page.locator("#guard");
  await section.locator("#guard-mode").waitFor();
  const mode = await section.locator("#guard-mode").getAttribute("data-mode");
  check("guard section shows the guard's mode", mode === "enforce", `mode ${mode}`);

  // A request for a sensitive file raises a low alert with no action. The
  // TRACE method raises a high one, which bans the source.
  probe(`${server.url}/.env`);
  probe("-X", "TRACE", `${server.url}/api/v1/health`);
  hearth("guard", "ban", BANNED, "--minutes", "5", "--reason", BAN_REASON);
  check("hearth guard ban bans the address", bannedByCli());
  await section.getByRole("button", { name: "Refresh" }).click();
  const row = section.locator(`#guard-bans .row[data-source="${BANNED}"]`);
  const listed = await row.waitFor({ timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  const rowText = listed ? ((await row.textContent()) ?? "").replace(/\s+/g, " ").trim() : "";
  check("guard section lists the CLI's ban", listed, rowText);
  check("ban row shows the ban's reason", rowText.includes(BAN_REASON), rowText);
  check("ban row says an admin set the ban", rowText.includes("set by an admin"), rowText);
  const ruleBan = ((await section.locator(`#guard-bans .row[data-source="${PROBER}"]`).textContent().catch(() => "")) ?? "").replace(/\s+/g, " ").trim();
  check("guard section lists the rule's ban", ruleBan.includes("rule unusual_method"), ruleBan);

  const alertText = async (severity) =>
    ((await section.locator(`#guard-alerts tr[data-source="${PROBER}"][data-severity="${severity}"]`).first().textContent({ timeout: 5_000 }).catch(() => "")) ?? "").replace(/\s+/g, " ").trim();
  const high = await alertText("high");
  check("high alert shows the ban", high.includes("Banned for"), high);
  check("high alert names the category in words", high.includes("Reconnaissance"), high);
  check("high alert shows the rule", high.includes("rule unusual_method"), high);
  const low = await alertText("low");
  check("low alert shows no action", low.includes("None"), low);

  await shootSection(page, "security-guard", section);
  await axeCheck(page, "security-guard");

  // Keyboard only: Enter on the row's button opens the dialog, whose first
  // button (Cancel) takes the focus, and Tab moves to the confirm button.
  await row.getByRole("button", { name: `Lift ban on ${BANNED}` }).focus();
  await page.keyboard.press("Enter");
  const dialog = page.locator("dialog[open]");
  await dialog.waitFor();
  check("lift ban dialog names the address", ((await dialog.locator("h2").textContent()) ?? "").includes(BANNED));
  const focusedOnOpen = await page.evaluate(() => document.activeElement?.textContent?.trim());
  check("lift ban dialog focuses Cancel", focusedOnOpen === "Cancel", `focus on ${focusedOnOpen}`);
  const original = page.viewportSize();
  for (const size of sizes) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(shotsDir, `security-lift-ban-${size.width}x${size.height}.png`) });
  }
  if (original) await page.setViewportSize(original);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  check("Tab reaches the dialog's Lift ban button", focused === "Lift ban", `focus on ${focused}`);
  await page.keyboard.press("Enter");

  await section.locator("#guard-status", { hasText: `Lifted the ban on ${BANNED}` }).waitFor({ timeout: 10_000 }).then(
    () => check("guard section says the ban is lifted", true),
    () => check("guard section says the ban is lifted", false),
  );
  const gone = await row.waitFor({ state: "detached", timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  check("lifted ban leaves the list", gone);
  check("hearth guard bans no longer lists the address", !bannedByCli());
}
