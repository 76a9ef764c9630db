// Names and text of subtitle tracks for the item page and the player.

import type { SubtitleTrack } from "../api/types";
import { locale, t } from "../i18n";

const languageNames = new Intl.DisplayNames([locale], { type: "language" });

/** Returns the name people see for a track: its language in the UI's language, with the server's label. */
export function subtitleName(track: SubtitleTrack): string {
  if (!track.language) return track.label;
  let language: string;
  try {
    language = languageNames.of(track.language) ?? track.language;
  } catch {
    // Intl rejects tags that are not well-formed BCP 47, such as "eng_US".
    language = track.language;
  }
  return t("subtitleName", { language, label: track.label });
}

/** Returns the plain text of a WebVTT cue: tags such as <i> and <b> removed, line breaks kept. */
export function cueText(cue: TextTrackCue): string {
  const text = (cue as VTTCue).text ?? "";
  return text.replace(/<[^>]*>/g, "");
}
