// Live scan progress shared by the header and the Activity screen: one
// signed stream of `GET /api/v1/scan/events` per tab, reconnected after it
// breaks. `libraryVersion` grows when a scan finishes, so screens that list
// items reload them.

import { currentSession, followScanEvents, getScanStatus } from "../api/client";
import type { ScanProgress } from "../api/types";

/** Delay before the stream reconnects after it broke, in milliseconds. */
const RETRY_MS = 15_000;

export const scan = $state<{ latest: ScanProgress | null; byLibrary: Record<string, ScanProgress>; live: boolean; libraryVersion: number }>({
  latest: null,
  byLibrary: {},
  live: false,
  libraryVersion: 0,
});

let started = false;

/** Starts following scan progress; later calls do nothing. */
export function followScans(): void {
  if (started) return;
  started = true;
  void run();
}

async function run(): Promise<void> {
  try {
    const status = await getScanStatus();
    scan.latest = status.latest ?? null;
    for (const progress of status.libraries ?? []) scan.byLibrary[progress.library] = progress;
    if (status.latest) scan.byLibrary[status.latest.library] = status.latest;
  } catch {
    // The stream below reports the latest progress too.
  }

  for (;;) {
    // Without a session (signed out, revoked) the stream stops; the next
    // sign-in starts it again.
    const session = await currentSession().catch(() => null);
    if (session === null) {
      started = false;
      scan.live = false;
      return;
    }
    const controller = new AbortController();
    try {
      scan.live = true;
      await followScanEvents((progress) => {
        const finished = progress.phase === "done" && scan.latest?.phase !== "done";
        scan.latest = progress;
        scan.byLibrary[progress.library] = progress;
        if (finished) scan.libraryVersion += 1;
      }, controller.signal);
    } catch {
      // A network failure or a server restart; reconnect below.
    }
    scan.live = false;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
