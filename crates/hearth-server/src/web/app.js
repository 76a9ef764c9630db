// Hearth's sign-in page (/login) and library page (/), with the library
// page's admin section. Both pages load this module, and `data-page` on
// <body> picks which one starts. Every API call is a signed request from
// device.js (docs/access.md), and media elements get their URLs from
// media grants. Every visible string comes from MESSAGES.

import { ApiError, NotPairedError, PAIR_PAGE, SIGN_IN_PAGE, deviceClient, loadDevice, onSessionEnded, signIn, signOut, signedFetch } from "./device.js";
import { capabilities, playHls } from "./playback.js";

const MESSAGES = {
  en: {
    // Sign-in page
    signInTitle: "Sign in to Hearth",
    deviceLine: "This browser is paired as {device}.",
    userName: "User name",
    password: "Password",
    signIn: "Sign in",
    signingIn: "Signing in…",
    nameMissing: "Enter your user name and password.",
    wrongPassword: "The user name or password is wrong.",
    tooManyAttempts: {
      one: "Too many failed sign-ins. Try again in {count} second.",
      other: "Too many failed sign-ins. Try again in {count} seconds.",
    },
    notPaired: "The server does not know this browser. Pair it again with a link from an admin.",
    revoked: "An admin revoked this browser or disabled your account. Ask an admin for a new pairing link.",
    proofRejected: "The server rejected this browser's signature ({error}). Check that the device's clock is right, then try again.",
    signInFailed: "Sign-in failed: {error}",
    network: "Could not reach the server: {error}",
    storageFailed: "This browser cannot read its device key ({error}). Private windows may block storage.",
    unsupported: "This browser cannot sign in: it needs WebCrypto and IndexedDB, and the page must be opened over HTTPS.",
    pairLink: "Pair this browser",
    sessionExpired: "Your session ended. Sign in again.",
    tokenRetired: "Browsers no longer sign in with the access token. Pair this browser with a link from an admin, then sign in with your name and password.",

    // Library page
    signedInAs: "Signed in as {name}",
    signOut: "Sign out",
    search: "Search",
    kind: "Type",
    kindAll: "All",
    kindVideo: "Video",
    kindAudio: "Music",
    kindImage: "Photos",
    postQuantum: "Post-quantum: {group}",
    classical: "Classical key exchange: {group}",
    scanning: "Scanning {library}: {processed} of {queued} new files read, {unchanged} unchanged, {problems} problems",
    scanDone: "Library up to date",
    empty: "No items yet. Add media to a library folder and it appears here.",
    loadFailed: "Could not load the library: {error}",
    playFailed: "Could not play {title}: {error}",
    seconds: "{n} s",

    // Admin section
    adminTitle: "Household",
    offerLegend: "Pair a new device",
    offerNewUser: "For a new person",
    offerExistingUser: "For someone who already has an account",
    offerUser: "Account",
    offerCreate: "Create pairing link",
    offerNameMissing: "Enter a user name of 1 to 64 characters for the new person.",
    offerUserMissing: "Choose the account that the device is for.",
    offerIntro: "Open this link on the new device, or scan the QR code with it. It works once, until {time}. Do not open it on this browser: that would replace this browser's pairing.",
    offerLink: "Pairing link",
    offerCode: "Pairing code:",
    offerQr: "QR code of the pairing link",
    offerCreated: "Pairing link created for {name}.",
    role: "Role",
    role_admin: "Admin",
    role_adult: "Adult",
    role_teen: "Teen",
    role_child: "Child",
    devicesTitle: "Devices",
    usersTitle: "Users",
    refresh: "Refresh",
    deviceColumn: "Device",
    userColumn: "User",
    pairedColumn: "Paired",
    lastUsedColumn: "Last used",
    createdColumn: "Created",
    statusColumn: "Status",
    actionColumn: "Action",
    thisDevice: "{name} (this browser)",
    never: "never",
    active: "Active",
    notApproved: "Waiting for approval",
    revokedAt: "Revoked {time}",
    disabled: "Disabled",
    revoke: "Revoke",
    revokeLabel: "Revoke {name}",
    revokedDevice: "Revoked {name}. Its sessions and media links stop at their next request.",
    rename: "Rename",
    renameLabel: "Rename {name}",
    renamePrompt: "New name for {name}:",
    renamedDevice: "Renamed to {name}.",
    unknownUser: "user {id}",
    adminFailed: "The request failed: {error}",
  },
};

const ICONS = { video: "\u{1F39E}", audio: "\u{266B}", image: "\u{1F5BC}" };

/** Interval of play-state saves during playback, in milliseconds; each one also keeps the session alive. */
const SAVE_INTERVAL_MS = 60_000;
/** Delay before the scan progress stream reconnects after it broke, in milliseconds. */
const SCAN_RETRY_MS = 15_000;
/** A cached media grant is used only while it has at least this long to live, in seconds. */
const GRANT_MARGIN_SECONDS = 60;
/** Maximum length of a user name that the server accepts (`hearth_access::users`), in characters. */
const MAX_USER_NAME_CHARS = 64;

const locale = navigator.language?.split("-")[0] in MESSAGES ? navigator.language.split("-")[0] : "en";
const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const timeFormat = new Intl.DateTimeFormat(locale, { timeStyle: "short" });

/** Looks up a message; a message with plural forms is picked by `values.count`. */
function t(key, values = {}) {
  let text = MESSAGES[locale][key] ?? MESSAGES.en[key] ?? key;
  if (typeof text === "object") text = text[new Intl.PluralRules(locale).select(values.count)] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function translatePage() {
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
}

const byId = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Sign-in page

async function setUpSignIn() {
  translatePage();
  // This page reports a rejected sign-in itself instead of leaving it.
  onSessionEnded(() => {});

  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) {
    showSignInStatus(t("unsupported"), { error: true });
    byId("submit").disabled = true;
    return;
  }

  let device;
  try {
    device = await loadDevice();
  } catch (error) {
    showSignInStatus(t("storageFailed", { error: error.message }), { error: true });
    return;
  }
  if (device === null) {
    location.replace(PAIR_PAGE);
    return;
  }

  byId("device-line").textContent = t("deviceLine", { device: device.pairing.name ?? device.pairing.did });
  if (new URLSearchParams(location.search).get("ended") === "expired") showSignInStatus(t("sessionExpired"));
  const name = byId("name");
  if (!name.value && typeof device.pairing.user?.name === "string") name.value = device.pairing.user.name;
  (name.value ? byId("password") : name).focus();

  byId("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitSignIn();
  });
}

async function submitSignIn() {
  const name = byId("name").value.trim();
  const password = byId("password").value;
  if (!name || !password) {
    showSignInStatus(t("nameMissing"), { error: true });
    (name ? byId("password") : byId("name")).focus();
    return;
  }

  const submit = byId("submit");
  submit.disabled = true;
  showSignInStatus(t("signingIn"));
  try {
    await signIn(name, password);
    location.assign("/");
    return;
  } catch (error) {
    reportSignInError(error);
  }
  if (!submit.dataset.lockedUntil) submit.disabled = false;
}

function reportSignInError(error) {
  if (error instanceof NotPairedError) {
    showSignInStatus(t("notPaired"), { error: true, pairLink: true });
    return;
  }
  if (!(error instanceof ApiError)) {
    // fetch rejects with a TypeError when the server cannot be reached.
    const key = error instanceof TypeError ? "network" : "signInFailed";
    showSignInStatus(t(key, { error: error.message }), { error: true });
    return;
  }

  if (error.status === 429) {
    const seconds = error.retryAfterSeconds ?? 60;
    showSignInStatus(t("tooManyAttempts", { count: seconds }), { error: true });
    lockSubmit(seconds);
    return;
  }
  // NOTE: the server sends `invalid` for an unknown device, a revoked
  // device and a wrong password alike (docs/access.md), so the page
  // distinguishes them by the server's message text.
  if (error.status === 401 && (error.proofError === "revoked" || /\brevoked\b/.test(error.message))) {
    showSignInStatus(t("revoked"), { error: true, pairLink: true });
  } else if (error.status === 401 && /\bnot paired\b/.test(error.message)) {
    showSignInStatus(t("notPaired"), { error: true, pairLink: true });
  } else if (error.status === 401 && /\bname or password\b/.test(error.message)) {
    showSignInStatus(t("wrongPassword"), { error: true });
    byId("password").select();
    byId("password").focus();
  } else if (error.status === 401 && error.proofError === "invalid") {
    showSignInStatus(t("proofRejected", { error: error.message }), { error: true });
  } else {
    showSignInStatus(t("signInFailed", { error: error.message }), { error: true });
  }
}

/** Disables the sign-in button until the server's back-off ends. */
function lockSubmit(seconds) {
  const submit = byId("submit");
  submit.disabled = true;
  submit.dataset.lockedUntil = String(Date.now() + seconds * 1000);
  setTimeout(() => {
    delete submit.dataset.lockedUntil;
    submit.disabled = false;
  }, seconds * 1000);
}

function showSignInStatus(message, { error = false, pairLink = false } = {}) {
  const status = byId("status");
  status.textContent = message;
  status.classList.toggle("error", error);
  status.setAttribute("role", error ? "alert" : "status");
  if (pairLink) {
    const link = Object.assign(document.createElement("a"), { href: PAIR_PAGE, textContent: t("pairLink") });
    status.append(" ", link);
  }
}

// ---------------------------------------------------------------------------
// Library page

/** Media grants by item id, reused for the thumbnail and the player while they live. */
const grants = new Map();
let saveTimer = null;

async function setUpLibrary() {
  translatePage();
  onSessionEnded(leaveForSessionEnd);

  let client;
  try {
    client = await deviceClient();
  } catch (error) {
    // device.js has already sent an unpaired browser to the pairing page.
    if (!(error instanceof NotPairedError)) showNotice(t("storageFailed", { error: error.message }), true);
    return;
  }
  if (client.session === null) {
    location.replace(SIGN_IN_PAGE);
    return;
  }

  const userName = client.session.user?.name;
  if (userName) byId("signed-in-as").textContent = t("signedInAs", { name: userName });
  byId("sign-out").addEventListener("click", async () => {
    byId("sign-out").disabled = true;
    await signOut().catch(() => {});
    location.assign(SIGN_IN_PAGE);
  });

  showConnection().catch(() => {});
  loadItems();
  followScans();
  setUpAdmin(client).catch((error) => showNotice(t("adminFailed", { error: error.message }), true));

  let pending;
  byId("search").addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(loadItems, 250);
  });
  byId("kind").addEventListener("change", loadItems);
  byId("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadItems();
  });
}

/**
 * Runs when the server ends the session: stops the player, then opens the
 * sign-in page for an expired session and the pairing page for a revoked
 * or unpaired device, with the reason in the query.
 */
function leaveForSessionEnd(reason) {
  stopPlayback();
  const page = reason === "expired" ? SIGN_IN_PAGE : PAIR_PAGE;
  location.assign(`${page}?ended=${encodeURIComponent(reason)}`);
}

/** Sends a signed request and returns its JSON body, or null for 204; throws ApiError on an error status. */
async function api(path, { method = "GET", body } = {}) {
  const options = { method };
  if (body !== undefined) {
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify(body);
  }
  const response = await signedFetch(path, options);
  if (!response.ok) throw await ApiError.from(response);
  return response.status === 204 ? null : response.json();
}

function showNotice(message, isError) {
  const notice = byId("notice");
  notice.textContent = message;
  notice.classList.toggle("error", isError);
  notice.hidden = false;
}

async function showConnection() {
  const badge = byId("connection");
  const info = await api("/api/v1/connection");
  const group = info.key_exchange_group ?? "?";
  badge.textContent = t(info.post_quantum ? "postQuantum" : "classical", { group });
  badge.className = `badge ${info.post_quantum ? "pq" : "classical"}`;
  badge.dataset.group = group;
}

function describe(item) {
  const parts = [];
  if (item.duration_ms) parts.push(t("seconds", { n: Math.round(item.duration_ms / 1000) }));
  if (item.width && item.height) parts.push(`${item.width}×${item.height}`);
  if (item.artist) parts.push(item.artist);
  return parts.join(" · ");
}

async function loadItems() {
  const list = byId("items");
  const params = new URLSearchParams({ limit: "200" });
  const search = byId("search").value.trim();
  const kind = byId("kind").value;
  if (search) params.set("q", search);
  if (kind) params.set("kind", kind);

  let page;
  try {
    page = await api(`/api/v1/items?${params}`);
  } catch (error) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: t("loadFailed", { error: error.message }) }));
    return;
  }
  if (page.items.length === 0) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: t("empty") }));
    return;
  }

  thumbnailObserver.disconnect();
  list.replaceChildren(...page.items.map(itemEntry));
}

function itemEntry(item) {
  const entry = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = item.id;
  button.dataset.kind = item.kind;

  const placeholder = Object.assign(document.createElement("span"), { className: "placeholder", textContent: ICONS[item.kind] ?? "" });
  placeholder.setAttribute("aria-hidden", "true");
  if (item.has_thumbnail) {
    placeholder.dataset.id = item.id;
    thumbnailObserver.observe(placeholder);
  }

  const title = Object.assign(document.createElement("span"), { className: "title", textContent: item.title });
  const meta = Object.assign(document.createElement("span"), { className: "meta", textContent: describe(item) });
  button.append(placeholder, title, meta);
  button.addEventListener("click", () => play(item));
  entry.append(button);
  return entry;
}

// Thumbnails need a grant each, so they are asked for only when their
// placeholder comes near the viewport.
const thumbnailObserver = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      thumbnailObserver.unobserve(entry.target);
      showThumbnail(entry.target);
    }
  },
  { rootMargin: "200px" },
);

async function showThumbnail(placeholder) {
  let grant;
  try {
    grant = await grantFor(placeholder.dataset.id);
  } catch {
    return;
  }
  const image = Object.assign(document.createElement("img"), { src: grant.thumbnail_url, alt: "" });
  image.addEventListener("load", () => placeholder.replaceWith(image), { once: true });
}

/** Returns a live media grant for an item: `{stream_url, thumbnail_url, expires_at}`. */
async function grantFor(itemId) {
  const cached = grants.get(itemId);
  if (cached && cached.expires_at - GRANT_MARGIN_SECONDS > Date.now() / 1000) return cached;
  const grant = await api(`/api/v1/items/${encodeURIComponent(itemId)}/grant`, { method: "POST" });
  grants.set(itemId, grant);
  return grant;
}

async function play(item) {
  const player = byId("player");
  stopPlayback();

  let element;
  if (item.kind === "image") {
    let grant;
    try {
      grant = await grantFor(item.id);
    } catch (error) {
      showNotice(t("playFailed", { title: item.title, error: error.message }), true);
      return;
    }
    element = Object.assign(document.createElement("img"), { src: grant.stream_url, alt: item.title });
  } else {
    element = document.createElement(item.kind === "audio" ? "audio" : "video");
    element.controls = true;
    element.autoplay = true;
    element.preload = "metadata";
    let answer;
    try {
      answer = await api(`/api/v1/items/${encodeURIComponent(item.id)}/playback`, { method: "POST", body: { capabilities: capabilities() } });
    } catch (error) {
      showNotice(t("playFailed", { title: item.title, error: error.message }), true);
      return;
    }
    element.dataset.mode = answer.mode;
    element.dataset.source = answer.url;
    for (const [index, subtitle] of (answer.subtitles ?? []).entries()) {
      const track = Object.assign(document.createElement("track"), { kind: "subtitles", src: subtitle.url, label: subtitle.label });
      if (subtitle.language) track.srclang = subtitle.language;
      if (index === 0) track.default = true;
      element.append(track);
    }
    if (answer.mode === "hls") {
      const onFatal = (message) => mediaFailed(item, element, message);
      stopHls = await playHls(element, answer, { signedFetch, onFatal });
    } else {
      element.src = answer.url;
    }
    element.addEventListener("playing", () => startSaving(item.id, element));
    element.addEventListener("pause", () => stopSaving(item.id, element));
    element.addEventListener("ended", () => stopSaving(item.id, element, true));
    element.addEventListener("error", () => mediaFailed(item, element));
  }
  element.id = "media";
  element.dataset.id = item.id;
  const heading = Object.assign(document.createElement("h2"), { textContent: item.title });
  player.replaceChildren(heading, element);
  player.hidden = false;
  element.focus?.();
}

/** Stops the running HLS player and its transcode; a no-op for direct play. */
let stopHls = () => {};

function stopPlayback() {
  clearInterval(saveTimer);
  saveTimer = null;
  stopHls();
  stopHls = () => {};
  const media = document.getElementById("media");
  if (media instanceof HTMLMediaElement) {
    media.pause();
    media.removeAttribute("src");
    media.load();
  }
}

/**
 * Runs when the media element or the HLS player fails (`message` names the
 * HLS error), for example because the grant died with a revoked device. A
 * signed request then checks whether the session is still valid. When it is not, device.js ends it and this page leaves.
 */
async function mediaFailed(item, element, message = null) {
  clearInterval(saveTimer);
  saveTimer = null;
  const detail = message || element.error?.message || `media error ${element.error?.code ?? "?"}`;
  try {
    await api("/api/v1/session");
  } catch {
    // A 401 here has already ended the session; other failures fall through.
  }
  showNotice(t("playFailed", { title: item.title, error: detail }), true);
}

function startSaving(itemId, element) {
  clearInterval(saveTimer);
  saveTimer = setInterval(() => savePosition(itemId, element), SAVE_INTERVAL_MS);
}

function stopSaving(itemId, element, completed = false) {
  clearInterval(saveTimer);
  saveTimer = null;
  savePosition(itemId, element, completed);
}

function savePosition(itemId, element, completed = false) {
  const body = { position_ms: Math.floor(element.currentTime * 1000), completed };
  api(`/api/v1/items/${encodeURIComponent(itemId)}/play-state`, { method: "PUT", body }).catch(() => {});
}

/**
 * Shows scan progress from `GET /api/v1/scan/events`. EventSource cannot
 * send the proof headers, so the stream is a signed fetch read here.
 */
async function followScans() {
  const status = byId("scan");
  for (;;) {
    try {
      const response = await signedFetch("/api/v1/scan/events", { headers: { Accept: "text/event-stream" } });
      if (!response.ok) return;
      for await (const event of serverSentEvents(response.body)) {
        if (event.type !== "progress") continue;
        const progress = JSON.parse(event.data);
        if (progress.phase === "done") {
          status.textContent = t("scanDone");
          loadItems();
        } else {
          status.textContent = t("scanning", progress);
        }
      }
    } catch {
      // The stream broke (network, server restart): reconnect below.
    }
    await new Promise((resolve) => setTimeout(resolve, SCAN_RETRY_MS));
  }
}

/** Parses a `text/event-stream` body into `{type, data}` events (the HTML standard's format, without `id` and `retry`). */
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
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
// Admin section

/** Shows the admin section when the session's household role is admin. */
async function setUpAdmin(client) {
  const session = await api("/api/v1/session");
  if (session.user_role !== "admin") return;

  const section = byId("admin");
  section.hidden = false;
  for (const radio of section.querySelectorAll('input[name="offer-kind"]')) {
    radio.addEventListener("change", showOfferKind);
  }
  byId("offer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createOffer();
  });
  byId("devices-refresh").addEventListener("click", () => refreshAdminLists(client.did));
  await refreshAdminLists(client.did);
}

function showOfferKind() {
  const existing = byId("offer-kind-existing").checked;
  byId("offer-new").hidden = existing;
  byId("offer-existing").hidden = !existing;
}

function showAdminStatus(message, isError = false) {
  const status = byId("admin-status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function createOffer() {
  let body;
  let forName;
  if (byId("offer-kind-existing").checked) {
    forName = byId("offer-user").value;
    if (!forName) return showAdminStatus(t("offerUserMissing"), true);
    body = { user: forName };
  } else {
    forName = byId("offer-name").value.trim();
    if (!forName || [...forName].length > MAX_USER_NAME_CHARS) {
      byId("offer-name").focus();
      return showAdminStatus(t("offerNameMissing"), true);
    }
    body = { new_user: { name: forName, role: byId("offer-role").value } };
  }

  const button = byId("offer-create");
  button.disabled = true;
  try {
    const offer = await api("/api/v1/admin/pairing-offers", { method: "POST", body });
    showOffer(offer);
    showAdminStatus(t("offerCreated", { name: forName }));
  } catch (error) {
    showAdminStatus(t("adminFailed", { error: error.message }), true);
  } finally {
    button.disabled = false;
  }
  return undefined;
}

/**
 * Shows an offer's link, code and QR code. The server's SVG goes into an
 * <img> as a data URL, where the browser renders it as an image and never
 * runs script or loads anything it names.
 */
function showOffer(offer) {
  byId("offer-intro").textContent = t("offerIntro", { time: timeFormat.format(new Date(offer.expires_at * 1000)) });
  byId("offer-link").value = offer.link;
  byId("offer-code").textContent = offer.code;
  const qr = byId("offer-qr");
  qr.hidden = !offer.qr_svg;
  qr.alt = t("offerQr");
  qr.src = offer.qr_svg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(offer.qr_svg)}` : "";
  byId("offer").hidden = false;
  byId("offer-link").focus();
  byId("offer-link").select();
}

async function refreshAdminLists(currentDid) {
  try {
    const users = await api("/api/v1/admin/users");
    showUsers(users);
    const devices = await api("/api/v1/admin/devices");
    showDevices(devices, users, currentDid);
  } catch (error) {
    showAdminStatus(t("adminFailed", { error: error.message }), true);
  }
}

function showUsers(users) {
  const rows = users.map((user) => {
    const status = user.disabled ? t("disabled") : t("active");
    return tableRow([user.name, t(`role_${user.role}`), formatTime(user.created_at), status]);
  });
  byId("users").tBodies[0].replaceChildren(...rows);

  const select = byId("offer-user");
  const chosen = select.value;
  select.replaceChildren(
    ...users.filter((user) => !user.disabled).map((user) => Object.assign(document.createElement("option"), { value: user.name, textContent: user.name })),
  );
  if (chosen) select.value = chosen;
}

function showDevices(devices, users, currentDid) {
  const userNames = new Map(users.map((user) => [user.id, user.name]));
  const rows = devices.map((device) => {
    const name = device.did === currentDid ? t("thisDevice", { name: device.name }) : device.name;
    let status = t("active");
    if (device.revoked_at !== null) status = t("revokedAt", { time: formatTime(device.revoked_at) });
    else if (!device.approved) status = t("notApproved");

    const row = tableRow([
      name,
      userNames.get(device.user_id) ?? t("unknownUser", { id: device.user_id }),
      formatTime(device.created_at),
      device.last_seen ? formatTime(device.last_seen) : t("never"),
      status,
    ]);
    row.dataset.deviceId = String(device.id);
    row.dataset.did = device.did;
    if (device.revoked_at !== null) row.cells[4].className = "revoked";

    const action = document.createElement("td");
    if (device.revoked_at === null) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: t("revoke") });
      button.setAttribute("aria-label", t("revokeLabel", { name: device.name }));
      button.dataset.action = "revoke";
      button.addEventListener("click", () => revokeDevice(device, button, currentDid));
      const rename = Object.assign(document.createElement("button"), { type: "button", textContent: t("rename") });
      rename.setAttribute("aria-label", t("renameLabel", { name: device.name }));
      rename.dataset.action = "rename";
      rename.addEventListener("click", () => renameDevice(device, rename, currentDid));
      action.append(rename, " ", button);
    }
    row.append(action);
    return row;
  });
  byId("devices").tBodies[0].replaceChildren(...rows);
}

async function revokeDevice(device, button, currentDid) {
  button.disabled = true;
  try {
    await api(`/api/v1/admin/devices/${device.id}/revoke`, { method: "POST" });
    showAdminStatus(t("revokedDevice", { name: device.name }));
  } catch (error) {
    button.disabled = false;
    showAdminStatus(t("adminFailed", { error: error.message }), true);
    return;
  }
  await refreshAdminLists(currentDid);
}

async function renameDevice(device, button, currentDid) {
  const name = window.prompt(t("renamePrompt", { name: device.name }), device.name)?.trim();
  if (!name || name === device.name) return;
  button.disabled = true;
  try {
    await api(`/api/v1/admin/devices/${device.id}/rename`, { method: "POST", body: { name } });
    showAdminStatus(t("renamedDevice", { name }));
  } catch (error) {
    showAdminStatus(t("adminFailed", { error: error.message }), true);
  } finally {
    button.disabled = false;
  }
  await refreshAdminLists(currentDid);
}

function tableRow(cells) {
  const row = document.createElement("tr");
  for (const text of cells) row.append(Object.assign(document.createElement("td"), { textContent: text }));
  return row;
}

function formatTime(unixSeconds) {
  return dateFormat.format(new Date(unixSeconds * 1000));
}

// ---------------------------------------------------------------------------
// Start, last, so that every module-level value above exists before a page uses it.

switch (document.body.dataset.page) {
  case "sign-in":
    setUpSignIn();
    break;
  case "library":
    setUpLibrary();
    break;
  default:
    break;
}
