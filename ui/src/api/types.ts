// Types of the Hearth HTTP API as this UI reads them. The request and
// response types come from schema.d.ts, which `npm run api` generates from
// docs/openapi.json, the document the server builds from its route table
// and Rust types; `npm run api:check` fails when it is stale. Only query
// parameters and UI-side unions are written here by hand.

import type { components } from "./schema";

type Schemas = components["schemas"];

export type MediaKind = "video" | "audio" | "image";
export type SortKey = "title" | "added" | "duration" | "size";
export type SortOrder = "asc" | "desc";
export type SessionRole = "admin" | "member";
export type UserRole = "admin" | "adult" | "teen" | "child";

/** Ratings that `PUT /api/v1/items/{id}/rating` accepts. */
export const RATINGS = ["G", "PG", "PG-13", "R", "NC-17", "TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14", "TV-MA"] as const;
export type Rating = (typeof RATINGS)[number];

/** Rungs of the HLS ladder that `quality` may name. */
export type Rendition = "original" | "1080p" | "720p" | "480p" | "360p" | "audio";

/** `GET /api/v1/session`. */
export type SessionInfo = Schemas["SessionInfo"];

/** `GET /api/v1/connection` and each entry of `GET /api/v1/connections`. */
export type ConnectionInfo = Schemas["ConnectionInfo"];

/** One line of `GET /api/v1/items`. */
export type ItemSummary = Schemas["ItemSummary"];

export type ItemPage = Schemas["Page"];

export interface ItemQuery {
  q?: string;
  kind?: MediaKind;
  sort?: SortKey;
  order?: SortOrder;
  offset?: number;
  limit?: number;
  year?: number;
  genre?: string;
}

/** `GET /api/v1/items/facets`: the years and genres for the filter menus. */
export type Facets = Schemas["Facets"];

/** One entry of `GET /api/v1/items/in-progress`: an item with the user's play state. */
export type InProgressItem = Schemas["InProgressItem"];

export type InProgressList = Schemas["InProgressList"];

export type PlayState = Schemas["PlayState"];

export type VideoStream = Schemas["VideoStream"];

export type AudioStream = Schemas["AudioStream"];

export type Tags = Schemas["Tags"];

export type Exif = Schemas["Exif"];

export type Probe = Schemas["Probe"];

/** `GET /api/v1/items/{id}`. */
export type Item = Schemas["Item"];

/** `POST /api/v1/items/{id}/grant`. */
export type Grant = Schemas["GrantAnswer"];

/** Codecs, containers and HLS support of this browser, from playback.js's `capabilities()`. */
export type Capabilities = Schemas["ClientCapabilities"];

export type PlaybackRequest = Schemas["PlaybackRequest"];

export type SubtitleTrack = Schemas["SubtitleView"];

/** `GET /api/v1/items/{id}/tracks`: the audio and subtitle tracks of a file. */
export type TrackList = Schemas["TrackList"];

export type AudioTrack = Schemas["AudioTrack"];

export type SubtitleTrackInfo = Schemas["SubtitleTrackView"];

/** `POST /api/v1/items/{id}/playback`. */
export type PlaybackAnswer = Schemas["PlaybackAnswer"];

/** `GET /api/v1/admin/transcodes`: the transcoder's counters and the HLS playbacks. */
export type TranscodeStatus = Schemas["TranscodesView"];

/** One HLS playback of `GET /api/v1/admin/transcodes`, newest first. */
export type PlaybackView = Schemas["PlaybackView"];

export type ScanPhase = "scanning" | "finishing" | "done";

/** One `progress` event of `GET /api/v1/scan/events`. */
export type ScanProgress = Schemas["ScanProgress"];

/** `GET /api/v1/scan`. */
export type ScanStatus = Schemas["ScanStatus"];

/** One entry of `GET /api/v1/scan/problems`. */
export type ScanProblem = Schemas["Problem"];

/** One entry of `GET /api/v1/admin/users`. */
export type User = Schemas["UserView"];

/** One entry of `GET /api/v1/admin/devices`. */
export type Device = Schemas["DeviceView"];

/**
 * One entry of `GET /api/v1/admin/sessions`. The connection fields
 * (`last_seen`, `peer`, `key_exchange_group`, `post_quantum`) describe the
 * session's latest request; the schema makes them optional as a group.
 */
export type SignedInSession = Schemas["SignedInSession"];

/** One entry of `GET /api/v1/admin/libraries`. */
export type LibraryFolder = Schemas["LibraryView"];

/** Body of `POST /api/v1/admin/pairing-offers`. */
export type PairingOfferRequest = { new_user: { name: string; role: UserRole } } | { user: string };

/** `POST /api/v1/admin/pairing-offers`. */
export type PairingOffer = Schemas["OfferView"];

/** One record of `GET /api/v1/admin/audit`. */
export type AuditRecord = Schemas["AuditView"];

export type AuditPage = Schemas["AuditPageView"];

export interface AuditQuery {
  subject?: string;
  decision?: "allow" | "deny";
  before?: number;
  limit?: number;
}

/** Mode of the guard: `enforce` bans and rate-limits, `observe` only raises alerts, `off` inspects nothing. */
export type GuardMode = "enforce" | "observe" | "off";

export type AlertSeverity = "low" | "medium" | "high";

/** `GET /api/v1/admin/guard/alerts`: the guard's mode and its latest alerts, newest first. */
export type GuardAlerts = Schemas["AlertsView"];

/**
 * One alert of `GET /api/v1/admin/guard/alerts`. `device` is the paired
 * device as `device-N` (N is the id of `GET /api/v1/admin/devices`), and
 * `action` is a {@link GuardAction}, which the schema leaves untyped.
 */
export type GuardAlert = Schemas["AlertView"];

/** The guard's decision about an alert: the `action` object of {@link GuardAlert}. */
export type GuardAction =
  | { action: "allow" }
  | { action: "rate_limit"; retry_after_secs: number }
  | { action: "ban"; seconds: number; end_sessions: boolean; rotate_keys: boolean };

/** The neural scorer's reading attached to an alert. */
export type ModelReading = Schemas["ModelView"];

/** One entry of `GET /api/v1/admin/guard/bans`, soonest to end first. */
export type GuardBan = Schemas["BanView"];

/** `GET /api/v1/admin/guard/records/{id}`. The list of all records leaves `requests` empty. */
export type ForensicRecord = Schemas["ForensicRecord"];
