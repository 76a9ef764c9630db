// Names and text of audio and subtitle tracks for the item page and the player.

import type { AudioTrack, SubtitleTrack, SubtitleTrackInfo } from "../api/types";
import { locale, t } from "../i18n";

const languageNames = new Intl.DisplayNames([locale], { type: "language" });

/** Returns a language tag's name in the UI's language, or the tag itself when Intl cannot name it. */
export function languageName(tag: string): string {
  try {
    return languageNames.of(tag) ?? tag;
  } catch {
    // Intl rejects tags that are not well-formed BCP 47, such as "eng_US".
    return tag;
  }
}

/** Returns the name people see for a track: its language in the UI's language, with the server's label. */
export function subtitleName(track: SubtitleTrack): string {
  if (!track.language) return track.label;
  return t("subtitleName", { language: languageName(track.language), label: track.label });
}

/** Returns the name of a subtitle track of `GET /api/v1/items/{id}/tracks`. */
export function subtitleTrackName(track: SubtitleTrackInfo): string {
  if (!track.language) return track.label;
  return t("subtitleName", { language: languageName(track.language), label: track.label });
}

/** Returns the name of an audio track: its title and language, else its number. */
export function audioTrackName(track: AudioTrack): string {
  const language = track.language ? languageName(track.language) : null;
  if (track.title && language) return t("audioTrackTitled", { title: track.title, language });
  return track.title || language || t("audioTrackNumber", { n: track.index + 1 });
}

/** Returns "mono", "stereo" or "6 channels". */
export function channelsName(count: number | null | undefined): string {
  if (!count) return "";
  if (count === 1) return t("channelsMono");
  if (count === 2) return t("channelsStereo");
  return t("channelsMany", { count });
}

/** Returns the plain text of a WebVTT cue: tags such as <i> and <b> removed, line breaks kept. */
export function cueText(cue: TextTrackCue): string {
  const text = (cue as VTTCue).text ?? "";
  return text.replace(/<[^>]*>/g, "");
}
