// Starts a Hearth server for the UI tests: a fresh data folder, the Debian
// sample libraries, the built UI in HEARTH_UI_DIR, on 127.0.0.1 only.
// Reads the first-run pairing link and the household CA from its output.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Time the server may take to print its pairing link, in milliseconds. */
const START_TIMEOUT_MS = 60_000;

/**
 * Starts `binary serve` and resolves with `{ url, pairLink, ca, stop() }`
 * once the first-run pairing link is printed. `log` receives every output line.
 */
export async function startServer({ binary, port, uiDir, libraries, log }) {
  const dataDir = mkdtempSync(join(tmpdir(), "hearth-ui-test-"));
  const args = ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--no-watch"];
  for (const library of libraries) args.push("--library", library);

  const child = spawn(binary, args, {
    env: { ...process.env, HEARTH_UI_DIR: uiDir, RUST_LOG: process.env.RUST_LOG ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });

  const found = { pairLink: null, ca: null, listening: false };
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${binary} printed no pairing link within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const onLine = (line) => {
      log(line);
      const link = /Pairing link:\s+(\S+)/.exec(line);
      if (link) found.pairLink = link[1];
      const ca = /Household CA:\s+(\S+)/.exec(line);
      if (ca) found.ca = ca[1];
      if (/listening address=/.test(line)) found.listening = true;
      if (found.pairLink && found.ca && found.listening) {
        clearTimeout(timer);
        resolve();
      }
    };
    readLines(child.stdout, onLine);
    readLines(child.stderr, onLine);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited early with status ${code ?? signal}`));
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`${binary} did not start: ${error.message}`));
    });
  });

  try {
    await ready;
  } catch (error) {
    child.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    url: `https://127.0.0.1:${port}`,
    dataDir,
    pairLink: found.pairLink,
    ca: found.ca,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function readLines(stream, onLine) {
  let buffer = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) onLine(line);
  });
}
