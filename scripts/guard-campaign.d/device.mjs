// A paired Hearth device for scripts/guard-campaign, built on the web
// pages' own protocol modules (pair.js, device.js) under Node's WebCrypto:
// it pairs with a pairing link, signs in with a password, and then runs one
// job.
//
//   node device.mjs massdownload   pulls every media file of the library
//                                  through media grants, as fast as it can,
//                                  again and again, until --seconds pass
//   node device.mjs playback       starts HLS playbacks for a player that
//                                  cannot sign requests (ffmpeg, mpv) and
//                                  acts as that player's app: see below
//
// Inputs (environment):
//   HEARTH_URL           base URL, e.g. https://127.0.0.1:8443 (required)
//   HEARTH_PAIR_LINK     pairing link of a new-user offer (required)
//   HEARTH_USER          account name, used when the offer leaves it open (default admin)
//   HEARTH_PASSWORD      password to choose and sign in with (required)
//   NODE_EXTRA_CA_CERTS  the household CA, so that fetch trusts the server
//
// massdownload options: --seconds N (default 150), --concurrency N
// (default 4), --stop-after-refused N: stop once every response for N
// seconds was refused (429, 403, 401 or a failed connection; default 0,
// never). Output: one JSON line with counts, bytes, statuses and the time of
// the first refusal.
//
// playback reads commands from stdin, one a line, and answers each with one
// JSON line on stdout:
//   start TITLE [MIME]   starts a playback of the video titled TITLE with
//                        native HLS (MPEG-TS segments, key on the grant URL);
//                        answers {"event": "started", "url", "key_url", ...}
//   position MS          saves the play position of the current item
//   stop                 ends the current playback (DELETE /api/v1/hls/GRANT)
//   quit                 ends the playback, signs out and exits
// It first answers {"event": "ready", "user", "device"} after sign-in.
// Failures go to stderr as {"event": "error", "message"} and exit status 1.

import https from "node:https";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { DeviceClient, createDeviceKey } from "../../crates/hearth-server/src/web/device.js";
import { parsePairingLink, startPairing } from "../../crates/hearth-server/src/web/pair.js";

/** Codecs and containers of ffmpeg 5.1 and mpv 0.35 as the playback request names them. */
const PLAYER_CAPABILITIES = {
  video_codecs: ["h264", "hevc", "vp8", "vp9", "av1", "theora", "mpeg2", "mpeg4"],
  audio_codecs: ["aac", "mp3", "opus", "vorbis", "flac", "pcm", "ac3"],
  // No container: the server must choose HLS, whose URL carries the grant.
  containers: [],
  hls: "native",
};

/** Statuses that mean the server refused the request. */
const REFUSED_STATUSES = new Set([401, 403, 429]);

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "150" },
    concurrency: { type: "string", default: "4" },
    "stop-after-refused": { type: "string", default: "0" },
  },
});

const job = positionals[0];
try {
  if (job !== "massdownload" && job !== "playback") {
    throw new Error(`unknown job ${JSON.stringify(job)}: expected massdownload or playback`);
  }
  const config = readConfig();
  const client = await pairAndSignIn(config);
  if (job === "massdownload") {
    const result = await massDownload(client, config.url, {
      seconds: positiveNumber("--seconds", options.seconds),
      concurrency: positiveNumber("--concurrency", options.concurrency),
      stopAfterRefused: Number(options["stop-after-refused"]) || 0,
    });
    print(result);
  } else {
    await servePlayback(client, config.url);
  }
} catch (error) {
  process.stderr.write(`${JSON.stringify({ event: "error", message: error.stack ?? String(error) })}\n`);
  process.exitCode = 1;
}

function readConfig() {
  const missing = ["HEARTH_URL", "HEARTH_PAIR_LINK", "HEARTH_PASSWORD"].filter((name) => !process.env[name]);
  if (missing.length > 0) throw new Error(`${missing.join(", ")} not set`);
  return {
    url: process.env.HEARTH_URL.replace(/\/+$/, ""),
    pairLink: process.env.HEARTH_PAIR_LINK,
    user: process.env.HEARTH_USER || "admin",
    password: process.env.HEARTH_PASSWORD,
  };
}

function positiveNumber(option, text) {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`invalid ${option} ${JSON.stringify(text)}: expected a positive number`);
  return value;
}

function print(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Pairs a new device key with the link's offer and signs in; returns the DeviceClient. */
async function pairAndSignIn(config) {
  const { offerId, code } = parsePairingLink(config.pairLink);
  if (!offerId || !code) throw new Error("HEARTH_PAIR_LINK lacks the offer or the code after #");

  const keyPair = await createDeviceKey();
  const originFetch = oneConnectionFetch(config.url);
  const pending = await startPairing({ offerId, code, deviceName: "guard-campaign device", keyPair, fetch: originFetch });
  const name = pending.accountName ?? config.user;
  const paired = await pending.finish(pending.needsAccount === false ? null : { name, password: config.password });

  const client = new DeviceClient({ keyPair, did: paired.device.did, origin: config.url, fetch: originFetch });
  await client.signIn(paired.user.name, config.password);
  return client;
}

/**
 * Returns a fetch for the API that keeps one keep-alive HTTP/1.1 connection
 * and echoes the last `Hearth-Binding` it received on each signed request.
 *
 * Node's fetch spreads sequential requests over several pooled
 * connections, so a proof signed for one connection's binding often travels
 * on another. DeviceClient retries only after `error="binding"`, which the
 * server can tell only from the echoed header; device.js does not send it.
 * One connection and the echo keep every proof valid or retried once.
 */
function oneConnectionFetch(origin) {
  // The household CA comes from NODE_EXTRA_CA_CERTS, which node:https trusts too.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  let lastBinding = null;

  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const url = new URL(input, origin);
      const headers = Object.fromEntries(new Headers(init.headers));
      if (headers["hearth-proof"] && lastBinding) headers["hearth-binding"] = lastBinding;

      const request = https.request(url, { method: init.method ?? "GET", headers, agent }, (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          const binding = response.headers["hearth-binding"];
          if (binding) lastBinding = binding;
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const item of [].concat(value)) responseHeaders.append(name, item);
          }
          const status = response.statusCode;
          const body = [204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, statusText: response.statusMessage, headers: responseHeaders }));
        });
      });
      request.on("error", reject);
      if (init.body !== undefined && init.body !== null) request.write(init.body);
      request.end();
    });
}

/** Returns the parsed JSON body of a signed request, or throws with the status and body. */
async function signedJson(client, path, init = {}) {
  const response = await client.fetch(path, init);
  if (!response.ok) {
    throw new Error(`${init.method ?? "GET"} ${path} returned ${response.status}: ${await response.text()}`);
  }
  return response.status === 204 ? null : response.json();
}

/** Lists every item of the library: videos, sounds and photos. */
async function listItems(client) {
  const items = [];
  for (let offset = 0; ; offset += 500) {
    const page = await signedJson(client, `/api/v1/items?limit=500&offset=${offset}`);
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total) return items;
  }
}

/**
 * Downloads every item through its media grant, the URL the library page
 * gives media elements, with `concurrency` downloads at once and no pause,
 * until `seconds` pass. Keeps going after refusals, as a careless script
 * would, unless `stopAfterRefused` seconds pass with nothing but refusals.
 */
async function massDownload(client, origin, { seconds, concurrency, stopAfterRefused }) {
  const items = await listItems(client);
  const urls = [];
  for (const item of items) {
    const grant = await signedJson(client, `/api/v1/items/${item.id}/grant`, { method: "POST" });
    urls.push(new URL(grant.stream_url, origin).href);
  }
  if (urls.length === 0) throw new Error("the library has no items to download");

  const started = performance.now();
  const deadline = started + seconds * 1000;
  const stats = {
    job: "massdownload",
    items: urls.length,
    requests: 0,
    complete_files: 0,
    bytes: 0,
    passes: 0,
    statuses: {},
    connection_errors: 0,
    first_refused_after_s: null,
    last_accepted_after_s: null,
    stopped: "time limit",
  };
  let next = 0;
  let lastAccepted = started;

  const elapsed = () => (performance.now() - started) / 1000;
  const refused = () => {
    stats.first_refused_after_s ??= elapsed();
  };
  const shouldStop = () => {
    if (performance.now() >= deadline) return true;
    if (stopAfterRefused > 0 && performance.now() - lastAccepted > stopAfterRefused * 1000) {
      stats.stopped = `refused for ${stopAfterRefused} s`;
      return true;
    }
    return false;
  };

  async function worker() {
    while (!shouldStop()) {
      const index = next;
      next += 1;
      if (index % urls.length === urls.length - 1) stats.passes += 1;
      stats.requests += 1;
      try {
        const response = await fetch(urls[index % urls.length], { signal: AbortSignal.timeout(Math.max(1, Math.ceil(deadline - performance.now()))) });
        stats.statuses[response.status] = (stats.statuses[response.status] ?? 0) + 1;
        if (REFUSED_STATUSES.has(response.status)) {
          refused();
          await response.body?.cancel();
          continue;
        }
        for await (const chunk of response.body ?? []) stats.bytes += chunk.length;
        if (response.ok) {
          stats.complete_files += 1;
          lastAccepted = performance.now();
          stats.last_accepted_after_s = elapsed();
        }
      } catch (error) {
        if (error.name === "TimeoutError" || error.name === "AbortError") break;
        stats.connection_errors += 1;
        stats.last_error ??= String(error.cause?.message ?? error.message);
        refused();
        // A refused connection fails at once; a short pause keeps the loop
        // from spinning while the server bans this address.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  stats.seconds = elapsed();
  stats.mb_per_second = stats.bytes / 1e6 / stats.seconds;
  return stats;
}

/** Runs the playback commands from stdin; see the file comment. */
async function servePlayback(client, origin) {
  const session = client.session;
  print({ event: "ready", user: session.user.name, device: session.device.did });

  let items = null;
  let current = null;
  const stopCurrent = async () => {
    if (current === null) return;
    await signedJson(client, `/api/v1/hls/${current.grant}`, { method: "DELETE" });
    current = null;
  };

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...args] = line.trim().split(/\s+/);
    if (command === "start") {
      await stopCurrent();
      items ??= await listItems(client);
      const [title, mime] = args;
      const item = items.find((candidate) => candidate.kind === "video" && candidate.title === title && (!mime || candidate.mime === mime));
      if (!item) throw new Error(`no video titled ${JSON.stringify(title)}${mime ? ` (${mime})` : ""} in the library`);
      const answer = await signedJson(client, `/api/v1/items/${item.id}/playback`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ capabilities: PLAYER_CAPABILITIES }),
      });
      if (answer.mode !== "hls") throw new Error(`the server chose ${answer.mode} playback for ${title}; expected hls`);
      const grant = /^\/hls\/([^/]+)\//.exec(answer.url)?.[1];
      current = { item, grant };
      print({
        event: "started",
        item_id: item.id,
        title: item.title,
        mime: item.mime,
        duration_ms: item.duration_ms ?? null,
        url: new URL(answer.url, origin).href,
        key_url: answer.key_url ? new URL(answer.key_url, origin).href : null,
        segments: answer.segments,
        video: answer.video ?? null,
        audio: answer.audio ?? null,
      });
    } else if (command === "position") {
      if (current === null) throw new Error("position without a started playback");
      const positionMs = Math.max(0, Math.round(Number(args[0]) || 0));
      await signedJson(client, `/api/v1/items/${current.item.id}/play-state`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ position_ms: positionMs, completed: false }),
      });
      print({ event: "position", position_ms: positionMs });
    } else if (command === "stop") {
      await stopCurrent();
      print({ event: "stopped" });
    } else if (command === "quit") {
      await stopCurrent();
      await client.signOut();
      print({ event: "quit" });
      break;
    } else if (command) {
      throw new Error(`unknown command ${JSON.stringify(command)}: expected start, position, stop or quit`);
    }
  }
}
