// Items this browser played lately, newest first, for the "Continue
// watching" row. Only the ids are kept here; the positions come from the
// server's play state of each item.
//
// TODO: replace with a server listing of the user's items in progress
// (ui/NEEDS.md), so the row also shows what was started on other devices.

const STORAGE_KEY = "hearth.recent";
/** Maximum number of ids kept per user. */
const MAX_RECENT = 24;

/** Returns the ids that `user` played lately in this browser, newest first. */
export function recentItems(user: string): string[] {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") as Record<string, unknown>;
    const ids = stored[user];
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}

/** Records that `user` played the item now. */
export function rememberPlayed(user: string, itemId: string): void {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") as Record<string, string[]>;
    const ids = [itemId, ...(stored[user] ?? []).filter((id) => id !== itemId)].slice(0, MAX_RECENT);
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...stored, [user]: ids }));
  } catch {
    // Storage may be full or blocked (private windows); the row then stays empty.
  }
}
