// The person signed in on this tab. The session itself (id, expiry) lives
// in device.js, in sessionStorage. This state contains what the screens
// show and decide on: the user's name and role and the device's name.

import type { UserRole } from "../api/types";

export interface SignedIn {
  userName: string;
  role: UserRole;
  deviceName: string;
  did: string;
}

export const auth = $state<{ user: SignedIn | null }>({ user: null });

export function isAdmin(): boolean {
  return auth.user?.role === "admin";
}
