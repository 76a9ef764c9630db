// When the first-run wizard opens by itself: for an admin, right after
// sign-in, while the household has no library folder or no device besides
// this one, until the admin finishes or skips it in this browser.
//
// NOTE: the "finished" mark is in this browser's localStorage, because the
// server stores no set-up state. Another browser of the same admin opens
// the wizard once more while the household still looks new.

import { isDesktop, listDevices, listLibraries } from "../api/client";

const STORAGE_KEY = "hearth.setup-finished";

/** Returns whether `user` finished or skipped the wizard in this browser. */
export function setupFinished(user: string): boolean {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]") as unknown;
    return Array.isArray(stored) && stored.includes(user);
  } catch {
    return false;
  }
}

/** Records that `user` finished or skipped the wizard, so it no longer opens by itself. */
export function markSetupFinished(user: string): void {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]") as unknown;
    const users = Array.isArray(stored) ? stored.filter((entry): entry is string => typeof entry === "string") : [];
    if (!users.includes(user)) localStorage.setItem(STORAGE_KEY, JSON.stringify([...users, user]));
  } catch {
    // Blocked storage (private windows): the wizard may open again after the next sign-in.
  }
}

/**
 * Returns whether the household still looks new: no library folder, or at
 * most one device that is not revoked. The desktop window is no paired
 * device, so there only a missing library folder counts.
 */
export async function householdLooksNew(): Promise<boolean> {
  if (isDesktop) return (await listLibraries()).length === 0;
  const [folders, devices] = await Promise.all([listLibraries(), listDevices()]);
  const active = devices.filter((device) => device.revoked_at == null);
  return folders.length === 0 || active.length <= 1;
}
