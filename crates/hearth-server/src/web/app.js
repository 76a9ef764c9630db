// Hearth library page: lists items, plays them, shows the connection's key
// exchange and live scan progress. Every visible string comes from MESSAGES.
"use strict";

const MESSAGES = {
  en: {
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
    seconds: "{n} s",
  },
};

const ICONS = { video: "\u{1F39E}", audio: "\u{266B}", image: "\u{1F5BC}" };

const locale = navigator.language?.split("-")[0] in MESSAGES ? navigator.language.split("-")[0] : "en";

function t(key, values = {}) {
  const text = MESSAGES[locale][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("signed out");
  }
  if (!response.ok) {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  return response.status === 204 ? null : response.json();
}

function translatePage() {
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
}

async function showConnection() {
  const badge = document.getElementById("connection");
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
  const list = document.getElementById("items");
  const params = new URLSearchParams({ limit: "200" });
  const search = document.getElementById("search").value.trim();
  const kind = document.getElementById("kind").value;
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

  list.replaceChildren(...page.items.map((item) => {
    const entry = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = item.id;
    button.dataset.kind = item.kind;
    let thumb;
    if (item.has_thumbnail) {
      thumb = document.createElement("img");
      thumb.src = `/api/v1/items/${item.id}/thumbnail`;
      thumb.alt = "";
      thumb.loading = "lazy";
    } else {
      thumb = Object.assign(document.createElement("span"), { className: "placeholder", textContent: ICONS[item.kind] ?? "" });
      thumb.setAttribute("aria-hidden", "true");
    }
    const title = Object.assign(document.createElement("span"), { className: "title", textContent: item.title });
    const meta = Object.assign(document.createElement("span"), { className: "meta", textContent: describe(item) });
    button.append(thumb, title, meta);
    button.addEventListener("click", () => play(item));
    entry.append(button);
    return entry;
  }));
}

function play(item) {
  const player = document.getElementById("player");
  const source = `/api/v1/items/${item.id}/stream`;
  let element;
  if (item.kind === "image") {
    element = Object.assign(document.createElement("img"), { src: source, alt: item.title });
  } else {
    element = document.createElement(item.kind === "audio" ? "audio" : "video");
    element.controls = true;
    element.autoplay = true;
    element.preload = "metadata";
    element.src = source;
    element.addEventListener("pause", () => savePosition(item.id, element));
    element.addEventListener("ended", () => savePosition(item.id, element, true));
  }
  element.id = "media";
  element.dataset.id = item.id;
  const heading = Object.assign(document.createElement("h2"), { textContent: item.title });
  player.replaceChildren(heading, element);
  player.hidden = false;
  element.focus?.();
}

function savePosition(id, element, completed = false) {
  const body = JSON.stringify({ position_ms: Math.floor(element.currentTime * 1000), completed });
  api(`/api/v1/items/${id}/play-state`, { method: "PUT", headers: { "Content-Type": "application/json" }, body }).catch(() => {});
}

function followScans() {
  const status = document.getElementById("scan");
  const events = new EventSource("/api/v1/scan/events");
  events.addEventListener("progress", (event) => {
    const progress = JSON.parse(event.data);
    if (progress.phase === "done") {
      status.textContent = t("scanDone");
      loadItems();
    } else {
      status.textContent = t("scanning", progress);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  translatePage();
  showConnection().catch(() => {});
  loadItems();
  followScans();
  let pending;
  document.getElementById("search").addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(loadItems, 250);
  });
  document.getElementById("kind").addEventListener("change", loadItems);
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadItems();
  });
});
