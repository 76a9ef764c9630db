// Types of the server's browser modules in crates/hearth-server/src/web,
// which this UI imports through the `@server-web` alias (vite.config.ts).
// Only the exports this UI uses are declared; the JSDoc in each module is
// the contract.

declare module "@server-web/device.js" {
  /** A stored sign-in: the response body of `POST /api/v1/login`. */
  export interface StoredSession {
    session_id: string;
    expires_at: number;
    user?: { name: string; role: string };
    device?: { did: string; name: string };
  }

  export interface PairingRecord {
    did: string;
    name: string;
    user: { name: string; role: string };
    credential: string;
    paired_at: number;
  }

  export interface LoadedDevice {
    keyPair: CryptoKeyPair;
    publicKey: string;
    pairing: PairingRecord;
  }

  export class ApiError extends Error {
    constructor(status: number, message: string, options?: { proofError?: string | null; retryAfterSeconds?: number | null });
    status: number;
    proofError: string | null;
    retryAfterSeconds: number | null;
    static from(response: Response): Promise<ApiError>;
  }

  export class NotPairedError extends Error {}

  export interface DeviceClient {
    fetch(path: string, options?: RequestInit): Promise<Response>;
    signIn(name: string, password: string): Promise<StoredSession>;
    signOut(): Promise<void>;
    clearSession(): void;
    readonly session: StoredSession | null;
    readonly did: string;
  }

  export type SessionEndReason = "expired" | "revoked" | "unpaired";

  export function loadDevice(): Promise<LoadedDevice | null>;
  export function savePairedDevice(keyPair: CryptoKeyPair, pairing: PairingRecord): Promise<void>;
  export function forgetDevice(): Promise<void>;
  export function onSessionEnded(handler: (reason: SessionEndReason) => void): void;
  export function deviceClient(): Promise<DeviceClient>;
  export function signedFetch(path: string, options?: RequestInit): Promise<Response>;
  export function signIn(name: string, password: string): Promise<StoredSession>;
  export function signOut(): Promise<void>;
  export function createDeviceKey(): Promise<CryptoKeyPair>;
}

declare module "@server-web/pair.js" {
  export class PairingError extends Error {
    kind: "wrong_code" | "burned" | "expired" | "used" | "not_found" | "account" | "server_unverified" | "server" | "storage";
    status: number | null;
    attemptsLeft: number | null;
  }

  export interface PairedDevice {
    device: { did: string; name: string };
    user: { name: string; role: string };
    credential: string;
  }

  export interface PendingPairing {
    needsAccount: boolean | null;
    accountName: string | null;
    finish(account?: { name: string; password: string } | null): Promise<PairedDevice>;
  }

  export function normalizeCode(text: string): string | null;
  export function parsePairingLink(text: string): { offerId: string | null; code: string | null };
  export function describeBrowser(
    userAgent?: string,
    brands?: { brand: string }[],
    platform?: string,
  ): { browser: string | null; system: string | null };
  export function startPairing(options: {
    offerId: string;
    code: string;
    deviceName: string;
    keyPair: CryptoKeyPair;
    fetch?: typeof fetch;
  }): Promise<PendingPairing>;
}

declare module "@server-web/passkeys.js" {
  import type { StoredSession } from "@server-web/device.js";

  export interface Passkey {
    id: number;
    name: string;
    credential_id: string;
    created_at: number;
    last_used: number | null;
    counter: number;
  }

  export function passkeysSupported(): boolean;
  export function registerPasskey(name: string): Promise<Passkey>;
  export function signInWithPasskey(): Promise<StoredSession>;
  export function listPasskeys(): Promise<Passkey[]>;
  export function deletePasskey(id: number): Promise<void>;
}

declare module "@server-web/playback.js" {
  import type { Capabilities, PlaybackAnswer } from "../api/types";

  /** The parts of an hls.js 1.7 instance that the player uses. */
  export interface HlsPlayer {
    /** Variants of the multivariant playlist; `name` is the rendition's NAME attribute. */
    readonly levels: { name?: string; height?: number }[];
    /** Index into `levels` playing now; set it to switch at once, or to -1 for automatic choice. */
    currentLevel: number;
    readonly autoLevelEnabled: boolean;
    on(event: string, listener: (event: string, data: { level: number }) => void): void;
  }

  export function capabilities(): Capabilities;
  export function playHls(
    element: HTMLMediaElement,
    answer: PlaybackAnswer,
    options: { signedFetch: (path: string, options?: RequestInit) => Promise<Response>; onFatal: (message: string) => void },
  ): Promise<(() => void) & { hls?: HlsPlayer }>;
}
