// The playback response that the item page requested, handed to the
// player so that pressing Play sends no second request. Each response is
// used once.

import type { PlaybackAnswer } from "../api/types";

/** Maximum age of a kept response, in milliseconds; the player requests a new one after that. */
const MAX_AGE_MS = 10 * 60 * 1000;

let cached: { itemId: string; answer: PlaybackAnswer; at: number } | null = null;

export function keepAnswer(itemId: string, answer: PlaybackAnswer): void {
  cached = { itemId, answer, at: Date.now() };
}

/** Removes and returns the response kept for the item, or null. */
export function takeAnswer(itemId: string): PlaybackAnswer | null {
  const entry = cached;
  cached = null;
  if (entry === null || entry.itemId !== itemId || Date.now() - entry.at > MAX_AGE_MS) return null;
  return entry.answer;
}

/** Returns the response kept for the item without removing it, or null. */
export function peekAnswer(itemId: string): PlaybackAnswer | null {
  return cached?.itemId === itemId ? cached.answer : null;
}
