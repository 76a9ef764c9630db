// Types of the Hearth HTTP API as this UI reads them (docs/api.md and
// docs/access.md). Every type the screens use lives in this one file, so
// the client generated later from the server's OpenAPI document replaces
// it in one place.
//
// NOTE: written by hand from the Rust types of hearth-server,
// hearth-catalog and hearth-media; nothing checks that they match yet.

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
export interface SessionInfo {
  role: SessionRole;
  user_role: UserRole | null;
  device: string | null;
  expires_at: number | null;
}

/** `GET /api/v1/connection` and each entry of `GET /api/v1/connections`. */
export interface ConnectionInfo {
  id: number;
  peer: string;
  key_exchange_group: string | null;
  post_quantum: boolean;
  protocol: string | null;
  cipher_suite: string | null;
  alpn: string | null;
  server_name: string | null;
  established_at: number;
}

/** One line of `GET /api/v1/items`. */
export interface ItemSummary {
  id: string;
  kind: MediaKind;
  title: string;
  mime: string;
  size: number;
  duration_ms: number | null;
  width: number | null;
  height: number | null;
  artist: string | null;
  album: string | null;
  missing: boolean;
  added_at: number;
  has_thumbnail: boolean;
  rating: string | null;
}

export interface ItemPage {
  items: ItemSummary[];
  total: number;
  offset: number;
  limit: number;
}

export interface ItemQuery {
  q?: string;
  kind?: MediaKind;
  sort?: SortKey;
  order?: SortOrder;
  offset?: number;
  limit?: number;
}

export interface PlayState {
  position_ms: number;
  completed: boolean;
  updated_at: number;
}

export interface VideoStream {
  codec: string;
  width: number | null;
  height: number | null;
  frame_rate: number | null;
  bit_rate: number | null;
}

export interface AudioStream {
  codec: string;
  channels: number | null;
  sample_rate: number | null;
  bit_rate: number | null;
}

export interface Tags {
  title: string | null;
  artist: string | null;
  album: string | null;
  track: number | null;
  genre: string | null;
  date: string | null;
}

export interface Exif {
  camera_make: string | null;
  camera_model: string | null;
  taken_at: string | null;
  orientation: number | null;
  gps: { latitude: number; longitude: number; altitude_m: number | null } | null;
}

export interface Probe {
  kind: MediaKind;
  mime: string;
  container: string | null;
  duration_ms: number | null;
  bit_rate: number | null;
  video: VideoStream | null;
  audio: AudioStream | null;
  tags: Tags;
  image: { width: number; height: number; format: string; exif: Exif | null } | null;
  has_cover_art: boolean;
}

/** `GET /api/v1/items/{id}`. */
export interface Item extends ItemSummary {
  path: string;
  sha256: string;
  probe: Probe;
  play_state: PlayState | null;
}

/** `POST /api/v1/items/{id}/grant`. */
export interface Grant {
  stream_url: string;
  thumbnail_url: string;
  expires_at: number;
}

/** Codecs, containers and HLS support of this browser, from playback.js's `capabilities()`. */
export interface Capabilities {
  video_codecs: string[];
  audio_codecs: string[];
  containers: string[];
  hls: "mse" | "native" | "none";
}

export interface PlaybackRequest {
  capabilities: Capabilities;
  quality?: Rendition;
  audio_track?: number;
}

export interface SubtitleTrack {
  label: string;
  language: string | null;
  codec: string;
  url: string;
}

/** `POST /api/v1/items/{id}/playback`. */
export interface PlaybackAnswer {
  mode: "direct" | "hls";
  url: string;
  key_url?: string;
  video?: "direct" | "transcode";
  audio?: "direct" | "transcode";
  renditions?: Rendition[];
  encoder?: string;
  reason?: string;
  subtitles: SubtitleTrack[];
  trickplay?: string;
  expires_at: number;
}

/** `GET /api/v1/admin/transcodes`. */
export interface TranscodeStatus {
  encoder: string;
  limit: number;
  running: number;
  queued: number;
  peak: number;
  started_total: number;
}

export type ScanPhase = "scanning" | "finishing" | "done";

/** One `progress` event of `GET /api/v1/scan/events`. */
export interface ScanProgress {
  library: string;
  phase: ScanPhase;
  discovered: number;
  queued: number;
  processed: number;
  unchanged: number;
  problems: number;
  current: string | null;
}

/** `GET /api/v1/scan`. */
export interface ScanStatus {
  running: boolean;
  latest: ScanProgress | null;
}

/** One entry of `GET /api/v1/scan/problems`. */
export interface ScanProblem {
  library: string;
  path: string;
  category: string;
  severity: "error" | "warning";
  reason: string;
  first_seen: number;
  last_seen: number;
}

/** One entry of `GET /api/v1/admin/users`. */
export interface User {
  id: number;
  did: string;
  name: string;
  role: UserRole;
  disabled: boolean;
  created_at: number;
}

/** One entry of `GET /api/v1/admin/devices`. */
export interface Device {
  id: number;
  did: string;
  name: string;
  user_id: number;
  approved: boolean;
  created_at: number;
  revoked_at: number | null;
  last_seen: number | null;
}

/** Body of `POST /api/v1/admin/pairing-offers`. */
export type PairingOfferRequest = { new_user: { name: string; role: UserRole } } | { user: string };

/** `POST /api/v1/admin/pairing-offers`. */
export interface PairingOffer {
  offer_id: string;
  code: string;
  expires_at: number;
  link: string;
  qr_svg: string | null;
}

/** One record of `GET /api/v1/admin/audit`. */
export interface AuditRecord {
  id: number;
  time: number;
  subject: string | null;
  device: string | null;
  action: string;
  resource: string;
  allowed: boolean;
  reason: string;
  source: string;
}

export interface AuditPage {
  records: AuditRecord[];
  next_before: number | null;
}

export interface AuditQuery {
  subject?: string;
  decision?: "allow" | "deny";
  before?: number;
  limit?: number;
}
