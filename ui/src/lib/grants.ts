// Media grants by item id. A grant opens one item's stream and thumbnail
// for this session (docs/access.md, "Media elements"), so one grant serves
// every card and page of that item while it lives.

import { issueGrant } from "../api/client";
import type { Grant } from "../api/types";

/** A cached grant is used only while it has at least this long to live, in seconds. */
const MARGIN_SECONDS = 120;

const grants = new Map<string, Promise<Grant>>();

/** Returns a live grant for the item, asking the server for one when needed. */
export function grantFor(itemId: string): Promise<Grant> {
  const cached = grants.get(itemId);
  if (cached) {
    return cached.then((grant) => (grant.expires_at - MARGIN_SECONDS > Date.now() / 1000 ? grant : renew(itemId)));
  }
  return renew(itemId);
}

/** Forgets every grant, for example after sign-out. */
export function clearGrants(): void {
  grants.clear();
}

function renew(itemId: string): Promise<Grant> {
  const request = issueGrant(itemId);
  grants.set(itemId, request);
  request.catch(() => grants.delete(itemId));
  return request;
}
