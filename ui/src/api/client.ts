// The one module through which every screen talks to the server. Each
// request is signed by the server's device.js (device key, request proof
// bound to the TLS connection); pairing and passkeys come from pair.js and
// passkeys.js. Screens import from here, never from those modules.

import {
  ApiError,
  NotPairedError,
  createDeviceKey,
  deviceClient,
  forgetDevice,
  loadDevice,
  onSessionEnded,
  savePairedDevice,
  signIn as deviceSignIn,
  signOut as deviceSignOut,
  signedFetch,
  type SessionEndReason,
  type StoredSession,
} from "@server-web/device.js";
import { PairingError, describeBrowser, normalizeCode, parsePairingLink, startPairing } from "@server-web/pair.js";
import { deletePasskey, listPasskeys, passkeysSupported, registerPasskey, signInWithPasskey } from "@server-web/passkeys.js";
import { capabilities, playHls } from "@server-web/playback.js";

import type {
  AuditPage,
  AuditQuery,
  ConnectionInfo,
  Device,
  Facets,
  ForensicRecord,
  Grant,
  GuardAlerts,
  GuardBan,
  InProgressList,
  Item,
  ItemPage,
  LibraryFolder,
  ItemQuery,
  PairingOffer,
  PairingOfferRequest,
  PlaybackAnswer,
  Rating,
  Rendition,
  ScanProblem,
  ScanProgress,
  ScanStatus,
  SessionInfo,
  SignedInSession,
  TrackList,
  TranscodeStatus,
  User,
  UserRole,
} from "./types";

export { ApiError, NotPairedError, PairingError };
export type { SessionEndReason, StoredSession };
export type { HlsPlayer } from "@server-web/playback.js";
export { createDeviceKey, describeBrowser, forgetDevice, loadDevice, normalizeCode, onSessionEnded, parsePairingLink, savePairedDevice, startPairing };
export { deletePasskey, listPasskeys, passkeysSupported, registerPasskey, signInWithPasskey };

const JSON_HEADERS = { "Content-Type": "application/json" };

/** True in the Hearth desktop window, whose requests the app passes to the server in process as the host admin. */
export const isDesktop = typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;

/**
 * Asks the desktop app to open the native folder picker and add the chosen
 * folder as a library (its `add_library` command). Returns null when the
 * person cancels. Only in the desktop window.
 */
export async function pickLibraryFolder(): Promise<LibraryFolder | null> {
  const internals = (window as unknown as { __TAURI_INTERNALS__?: { invoke: (command: string, args?: object) => Promise<unknown> } }).__TAURI_INTERNALS__;
  if (!internals) throw new Error("the folder picker exists only in the desktop app");
  try {
    return (await internals.invoke("add_library")) as LibraryFolder | null;
  } catch (error) {
    // The app's errors are {kind, message}.
    const message = (error as { message?: string })?.message ?? String(error);
    throw new Error(message);
  }
}

/** Sends a signed request and returns its JSON body, or null for 204; throws ApiError on an error status. */
async function call<T>(path: string, options: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const init: RequestInit = { method: options.method ?? "GET", signal: options.signal };
  if (options.body !== undefined) {
    init.headers = JSON_HEADERS;
    init.body = JSON.stringify(options.body);
  }
  const response = isDesktop ? await fetch(path, init) : await signedFetch(path, init);
  if (!response.ok) throw await ApiError.from(response);
  if (response.status === 204 || response.status === 202) return null as T;
  return (await response.json()) as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const itemPath = (id: string) => `/api/v1/items/${encodeURIComponent(id)}`;

// ---------------------------------------------------------------------------
// Session

/** Returns the stored session of this tab, or null before sign-in. Throws NotPairedError when the browser is not paired. */
export async function currentSession(): Promise<StoredSession | null> {
  if (isDesktop) return { session_id: "", expires_at: 0, user: { name: "This computer", role: "admin" }, device: { did: "", name: "Hearth desktop" } };
  return (await deviceClient()).session;
}

export const signIn = (name: string, password: string) => deviceSignIn(name, password);
export const signOut = () => deviceSignOut();
export const getSession = () => call<SessionInfo>("/api/v1/session");
export const getConnection = () => call<ConnectionInfo>("/api/v1/connection");
export const listConnections = () => call<ConnectionInfo[]>("/api/v1/connections");

// ---------------------------------------------------------------------------
// Library

export const listItems = (params: ItemQuery, signal?: AbortSignal) =>
  call<ItemPage>(`/api/v1/items${query({ ...params })}`, { signal });
export const getItem = (id: string) => call<Item>(itemPath(id));
export const listFacets = () => call<Facets>("/api/v1/items/facets");
export const listInProgress = (limit?: number) => call<InProgressList>(`/api/v1/items/in-progress${query({ limit })}`);
export const getTracks = (id: string) => call<TrackList>(`${itemPath(id)}/tracks`);
export const issueGrant = (id: string) => call<Grant>(`${itemPath(id)}/grant`, { method: "POST" });
export const savePlayState = (id: string, positionMs: number, completed: boolean) =>
  call<null>(`${itemPath(id)}/play-state`, { method: "PUT", body: { position_ms: Math.max(0, Math.floor(positionMs)), completed } });
export const setRating = (id: string, rating: Rating | null) => call<null>(`${itemPath(id)}/rating`, { method: "PUT", body: { rating } });

// ---------------------------------------------------------------------------
// Playback

/** Asks the server for direct play or HLS for this browser. */
export function startPlayback(id: string, options: { quality?: Rendition; audioTrack?: number } = {}) {
  const body: Record<string, unknown> = { capabilities: capabilities() };
  if (options.quality) body.quality = options.quality;
  if (options.audioTrack !== undefined && options.audioTrack > 0) {
    body.audio_track = options.audioTrack;
    // A <video> element plays a file's first audio track and offers no
    // choice (Chromium has no audioTracks). The server returns direct play
    // regardless of audio_track, so naming no container makes it return
    // HLS, which carries the chosen track.
    body.capabilities = { ...capabilities(), containers: [] };
  }
  return call<PlaybackAnswer>(`${itemPath(id)}/playback`, { method: "POST", body });
}

/**
 * Attaches an HLS playback response to `element` with playback.js. Returns
 * the function that stops the playback and its transcode; its `hls` property
 * is the hls.js instance, or absent for the platform's own HLS player.
 */
export function attachHls(element: HTMLMediaElement, answer: PlaybackAnswer, onFatal: (message: string) => void) {
  return playHls(element, answer, { signedFetch: isDesktop ? fetch : signedFetch, onFatal });
}

/** Fetches a media-grant URL (trickplay index, subtitles); the grant in the path opens it, so it is not signed. */
export async function fetchGrantText(url: string): Promise<string> {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw await ApiError.from(response);
  return response.text();
}

// ---------------------------------------------------------------------------
// Scans and transcodes

export const getScanStatus = () => call<ScanStatus>("/api/v1/scan");
export const startScan = () => call<null>("/api/v1/scan", { method: "POST" });
export const listScanProblems = () => call<ScanProblem[]>("/api/v1/scan/problems");
export const getTranscodes = () => call<TranscodeStatus>("/api/v1/admin/transcodes");

/**
 * Calls `onProgress` for each `progress` event of `GET /api/v1/scan/events`
 * until `signal` aborts or the stream ends. EventSource cannot send the
 * proof headers, so the stream is a signed fetch parsed here.
 */
export async function followScanEvents(onProgress: (progress: ScanProgress) => void, signal: AbortSignal): Promise<void> {
  const response = await (isDesktop ? fetch : signedFetch)("/api/v1/scan/events", { headers: { Accept: "text/event-stream" }, signal });
  if (!response.ok) throw await ApiError.from(response);
  if (response.body === null) return;
  for await (const event of serverSentEvents(response.body)) {
    if (event.type === "progress") onProgress(JSON.parse(event.data) as ScanProgress);
  }
}

/** Parses a `text/event-stream` body into `{type, data}` events (the HTML standard's format, without `id` and `retry`). */
async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ type: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let type = "message";
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) yield { type, data: data.join("\n") };
        type = "message";
        data = [];
      } else if (line.startsWith("event:")) {
        type = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Household (admin)

export const listDevices = () => call<Device[]>("/api/v1/admin/devices");
export const revokeDevice = (id: number) => call<null>(`/api/v1/admin/devices/${id}/revoke`, { method: "POST" });
export const renameDevice = (id: number, name: string) => call<null>(`/api/v1/admin/devices/${id}/rename`, { method: "POST", body: { name } });
export const listUsers = () => call<User[]>("/api/v1/admin/users");
export const disableUser = (id: number) => call<null>(`/api/v1/admin/users/${id}/disable`, { method: "POST" });
export const enableUser = (id: number) => call<null>(`/api/v1/admin/users/${id}/enable`, { method: "POST" });
/** Changes a user's role; the server ends the user's sessions, so the role applies from the next sign-in. */
export const setUserRole = (id: number, role: UserRole) => call<null>(`/api/v1/admin/users/${id}/role`, { method: "POST", body: { role } });
export const listSessions = () => call<SignedInSession[]>("/api/v1/admin/sessions");
export const endSession = (handle: string) => call<null>(`/api/v1/admin/sessions/${encodeURIComponent(handle)}/end`, { method: "POST" });
export const listLibraries = () => call<LibraryFolder[]>("/api/v1/admin/libraries");
/** Adds a folder on the server's host by its absolute path; the server scans it at once. */
export const addLibrary = (path: string) => call<LibraryFolder>("/api/v1/admin/libraries", { method: "POST", body: { path } });
export const removeLibrary = (id: number) => call<null>(`/api/v1/admin/libraries/${id}`, { method: "DELETE" });
export const createPairingOffer = (body: PairingOfferRequest) => call<PairingOffer>("/api/v1/admin/pairing-offers", { method: "POST", body });
export const listAudit = (params: AuditQuery) => call<AuditPage>(`/api/v1/admin/audit${query({ ...params })}`);

/** Ends an HLS playback that was never attached to a player, so the server drops it now. */
export async function endPlayback(answer: PlaybackAnswer): Promise<void> {
  if (answer.mode !== "hls" || !answer.key_url) return;
  const response = await (isDesktop ? fetch : signedFetch)(answer.key_url.replace(/\/key$/, ""), { method: "DELETE" });
  if (!response.ok) throw await ApiError.from(response);
}

// ---------------------------------------------------------------------------
// Intrusion guard (admin)

const banPath = (source: string) => `/api/v1/admin/guard/bans/${encodeURIComponent(source)}`;
const recordPath = (id: string) => `/api/v1/admin/guard/records/${encodeURIComponent(id)}`;

export const getGuardAlerts = () => call<GuardAlerts>("/api/v1/admin/guard/alerts");
export const listBans = () => call<GuardBan[]>("/api/v1/admin/guard/bans");
/** Lifts the ban or rate limit on an IP address. Throws ApiError 404 when it has neither. */
export const liftBan = (source: string) => call<null>(banPath(source), { method: "DELETE" });
export const listForensicRecords = () => call<ForensicRecord[]>("/api/v1/admin/guard/records");
export const getForensicRecord = (id: string) => call<ForensicRecord>(recordPath(id));
