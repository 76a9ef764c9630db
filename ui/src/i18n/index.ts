// Message lookup. Every string the UI shows comes from a catalog in this
// folder, one JSON file per language named by its BCP 47 tag (en.json,
// de.json, pt-BR.json). A new translation is a new file: the glob below
// picks it up at build time, and a key missing from it falls back to
// English.
//
// A message is a string with {name} placeholders, or an object of plural
// forms keyed by Intl.PluralRules categories ("one", "other", ...) and
// chosen by the `count` value.

import en from "./en.json";

export type MessageKey = keyof typeof en;
type Message = string | Partial<Record<Intl.LDMLPluralRule, string>>;
type Catalog = Partial<Record<MessageKey, Message>>;

const catalogs: Record<string, Catalog> = Object.fromEntries(
  Object.entries(import.meta.glob<Catalog>("./*.json", { eager: true, import: "default" })).map(([path, catalog]) => [
    path.replace(/^\.\/|\.json$/g, ""),
    catalog,
  ]),
);

/** The language of the UI: the first of the browser's languages that has a catalog, else English. */
export const locale: string = pickLocale(globalThis.navigator?.languages ?? []);

const catalog: Catalog = catalogs[locale] ?? en;
const pluralRules = new Intl.PluralRules(locale);

/** Looks up `key` and fills in its {placeholders} from `values`. */
export function t(key: MessageKey, values: Record<string, string | number> = {}): string {
  let message: Message = catalog[key] ?? en[key];
  if (typeof message === "object") {
    const count = Number(values.count ?? 0);
    message = message[pluralRules.select(count)] ?? message.other ?? "";
  }
  return message.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ""));
}

function pickLocale(preferred: readonly string[]): string {
  for (const tag of preferred) {
    if (tag in catalogs) return tag;
    const language = tag.split("-")[0];
    if (language in catalogs) return language;
  }
  return "en";
}

// Formatters follow the chosen language.
export const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
export const dayFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium" });
export const timeFormat = new Intl.DateTimeFormat(locale, { timeStyle: "short" });
export const numberFormat = new Intl.NumberFormat(locale);

/** Formats Unix seconds as a date and time. */
export function formatTime(unixSeconds: number): string {
  return dateFormat.format(new Date(unixSeconds * 1000));
}

/** Formats a duration in milliseconds as H:MM:SS or M:SS. */
export function formatDuration(milliseconds: number): string {
  const total = Math.max(0, Math.floor(milliseconds / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** Formats a byte count with a binary unit from the catalog. */
export function formatBytes(bytes: number): string {
  const units: MessageKey[] = ["bytesB", "bytesKiB", "bytesMiB", "bytesGiB", "bytesTiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return t(units[unit], { n: new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(value) });
}
