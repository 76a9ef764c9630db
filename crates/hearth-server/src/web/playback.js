// Playback for the library page: reports what this browser decodes, asks the
// server for direct play or HLS, and runs hls.js (served by Hearth itself,
// from /vendor/hls.min.mjs) for HLS. Segments come from media-grant URLs;
// the AES-128 key comes only through a signed request of this session.

/** Module URL of the vendored hls.js build. */
const HLS_MODULE = "/vendor/hls.min.mjs";

/** Paths of playback keys: `/api/v1/hls/{grant}/key`. */
const KEY_PATH = /^\/api\/v1\/hls\/[A-Za-z0-9_-]{43}\/key$/;

/** MIME types checked per codec or container, keyed by the server's name for it. */
const VIDEO_CODECS = {
  h264: 'video/mp4; codecs="avc1.4d401f"',
  hevc: 'video/mp4; codecs="hvc1.1.6.L93.B0"',
  vp8: 'video/webm; codecs="vp8"',
  vp9: 'video/webm; codecs="vp9"',
  av1: 'video/mp4; codecs="av01.0.05M.08"',
  theora: 'video/ogg; codecs="theora"',
  mpeg2: "video/mpeg",
  mpeg4: 'video/mp4; codecs="mp4v.20.8"',
};
const AUDIO_CODECS = {
  aac: 'audio/mp4; codecs="mp4a.40.2"',
  mp3: "audio/mpeg",
  opus: 'audio/ogg; codecs="opus"',
  vorbis: 'audio/ogg; codecs="vorbis"',
  flac: "audio/flac",
  pcm: 'audio/wav; codecs="1"',
  ac3: 'audio/mp4; codecs="ac-3"',
};
const CONTAINERS = {
  mp4: "video/mp4",
  webm: "video/webm",
  matroska: "video/x-matroska",
  ogg: "audio/ogg",
  mp3: "audio/mpeg",
  flac: "audio/flac",
  wav: "audio/wav",
};
/** Codecs of the HLS renditions: H.264 Main and AAC-LC. */
const HLS_CODECS = 'video/mp4; codecs="avc1.4d401f,mp4a.40.2"';

/** Returns the capabilities the server's playback decision needs. */
export function capabilities() {
  const probe = document.createElement("video");
  const plays = (type) => probe.canPlayType(type) === "probably" || probe.canPlayType(type) === "maybe";
  const names = (table) => Object.entries(table).filter(([, type]) => plays(type)).map(([name]) => name);
  let hls = "none";
  if (globalThis.MediaSource?.isTypeSupported?.(HLS_CODECS)) hls = "mse";
  else if (plays("application/vnd.apple.mpegurl")) hls = "native";
  return { video_codecs: names(VIDEO_CODECS), audio_codecs: names(AUDIO_CODECS), containers: names(CONTAINERS), hls };
}

/**
 * Plays an HLS response of `POST /api/v1/items/{id}/playback` in `element`.
 * `signedFetch(path, options)` sends a signed request; `onFatal(message)`
 * runs when playback cannot go on. Returns a function that stops playback
 * and sends the server a DELETE, so the transcode stops at once. With
 * hls.js the function's `hls` property is the hls.js instance, whose
 * `levels` are the renditions by their NAME (`original`, `1080p`, ...), so
 * a player can switch quality within this playback. The platform's own
 * player has no `hls`.
 */
export async function playHls(element, answer, { signedFetch, onFatal }) {
  const grantPath = answer.url.replace(/\/master\.m3u8$/, "").replace(/^\/hls\//, "/api/v1/hls/");
  const stop = () => signedFetch(grantPath, { method: "DELETE" }).catch(() => {});
  if (answer.segments === "ts") {
    // The platform's own player: transport stream segments, key on the grant.
    element.src = answer.url;
    return () => {
      element.removeAttribute("src");
      element.load();
      stop();
    };
  }
  const { default: Hls } = await import(HLS_MODULE);
  if (!Hls.isSupported()) {
    onFatal("this browser has no Media Source Extensions for HLS");
    return () => {};
  }
  const hls = new Hls({ enableWorker: false, loader: signedKeyLoader(Hls.DefaultConfig.loader, signedFetch) });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onFatal(data.details || data.type);
  });
  // A copied original costs the server no encoding, so start there; a
  // transcoded ladder starts where the bandwidth estimate says. hls.js
  // sorts levels by bit rate, so find the original by its NAME.
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    const original = hls.levels.findIndex((level) => level.name === "original");
    if (original >= 0) hls.startLevel = original;
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
    element.dataset.rendition = hls.levels[data.level]?.name ?? "";
  });
  hls.loadSource(answer.url);
  hls.attachMedia(element);
  const stopHls = () => {
    hls.destroy();
    stop();
  };
  return Object.assign(stopHls, { hls });
}

/**
 * Returns a loader class that fetches playback keys with a signed request
 * and leaves every other request (playlists and segments on grant URLs) to
 * hls.js's own loader.
 */
function signedKeyLoader(BaseLoader, signedFetch) {
  return class SignedKeyLoader extends BaseLoader {
    load(context, config, callbacks) {
      const url = new URL(context.url, location.href);
      if (url.origin !== location.origin || !KEY_PATH.test(url.pathname)) {
        super.load(context, config, callbacks);
        return;
      }
      const stats = this.stats;
      stats.loading.start = performance.now();
      signedFetch(url.pathname, { cache: "no-store" })
        .then(async (response) => {
          if (!response.ok) throw Object.assign(new Error(`key request failed with ${response.status}`), { code: response.status });
          const data = await response.arrayBuffer();
          stats.loading.first = stats.loading.end = performance.now();
          stats.loaded = stats.total = data.byteLength;
          callbacks.onSuccess({ url: context.url, data }, stats, context, null);
        })
        .catch((error) => callbacks.onError({ code: error.code ?? 0, text: error.message }, context, null, stats));
    }
  };
}
