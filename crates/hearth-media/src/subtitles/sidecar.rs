//! Subtitle files next to a video: finding them and converting them.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::charset::decode;
use super::cues::{Syntax, normalize_line_endings, parse_cues};
use super::webvtt::write_document;
use super::{MAX_SUBTITLE_BYTES, SubtitleSource, SubtitleTrack};
use crate::MediaError;

/// Words in sidecar names that look like a language tag but are not one.
const NOT_LANGUAGES: [&str; 2] = ["sdh", "cc"];

/// Label of a sidecar whose name has no words besides the language.
const DEFAULT_LABEL: &str = "External";

/// Subtitle formats that sidecar files can have, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SidecarFormat {
    SubRip,
    WebVtt,
}

impl SidecarFormat {
    fn from_extension(extension: &str) -> Option<Self> {
        if extension.eq_ignore_ascii_case("srt") {
            Some(SidecarFormat::SubRip)
        } else if extension.eq_ignore_ascii_case("vtt") {
            Some(SidecarFormat::WebVtt)
        } else {
            None
        }
    }

    fn codec(self) -> &'static str {
        match self {
            SidecarFormat::SubRip => "subrip",
            SidecarFormat::WebVtt => "webvtt",
        }
    }
}

/// Format, language and label words parsed from a sidecar file name.
#[derive(Debug, PartialEq, Eq)]
struct SidecarName {
    format: SidecarFormat,
    language: Option<String>,
    /// Words between the stem and the extension that are not the language.
    words: Vec<String>,
}

/// Lists the `.srt` and `.vtt` files next to `media` whose names start with
/// the media file's stem, sorted by file name.
///
/// Between the stem and the extension, the first word of two or three
/// letters, or of the form `ll-CC`, is the language (`Film.en.srt`,
/// `Film.pt-BR.vtt`). Other words become the label (`Film.forced.en.srt`).
/// Extensions match in any case. Symbolic links, names that are not valid
/// UTF-8, and anything but regular files are skipped. An unreadable folder
/// yields an empty list, logged at debug level.
pub fn sidecars(media: &Path) -> Vec<SubtitleTrack> {
    let (Some(folder), Some(stem), Some(media_name)) =
        (media_folder(media), media.file_stem(), media.file_name())
    else {
        return Vec::new();
    };
    let Some(stem) = stem.to_str() else {
        return Vec::new();
    };

    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::debug!(folder = %folder.display(), %error, "failed to list sidecar subtitles");
            return Vec::new();
        }
    };

    let mut tracks = Vec::new();
    for entry in entries.flatten() {
        // `DirEntry::file_type` does not follow symbolic links.
        let is_regular_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        if !is_regular_file || entry.file_name() == media_name {
            continue;
        }
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(name) = parse_sidecar_name(stem, &file_name) {
            tracks.push(sidecar_track(file_name, name));
        }
    }
    tracks.sort_by(|a, b| a.id.cmp(&b.id));
    tracks
}

fn sidecar_track(file_name: String, name: SidecarName) -> SubtitleTrack {
    let label = if name.words.is_empty() {
        DEFAULT_LABEL.to_owned()
    } else {
        name.words.join(" ")
    };
    SubtitleTrack {
        id: format!("sidecar:{file_name}"),
        source: SubtitleSource::Sidecar { file_name },
        language: name.language,
        label,
        codec: name.format.codec().to_owned(),
        convertible: true,
    }
}

/// Returns the folder of `media`, `.` for a bare file name.
fn media_folder(media: &Path) -> Option<PathBuf> {
    match media.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(parent) => Some(parent.to_path_buf()),
        None => None,
    }
}

/// Parses `<stem>[.<word>...].<srt|vtt>`; `None` for any other name.
fn parse_sidecar_name(stem: &str, file_name: &str) -> Option<SidecarName> {
    let rest = file_name.strip_prefix(stem)?.strip_prefix('.')?;
    let (middle, extension) = match rest.rsplit_once('.') {
        Some((middle, extension)) => (middle, extension),
        None => ("", rest),
    };
    let format = SidecarFormat::from_extension(extension)?;

    let mut language = None;
    let mut words = Vec::new();
    for word in middle.split('.').filter(|word| !word.is_empty()) {
        match language_tag(word) {
            Some(tag) if language.is_none() => language = Some(tag),
            _ => words.push(word.to_owned()),
        }
    }
    Some(SidecarName {
        format,
        language,
        words,
    })
}

/// Returns `word` as a normalised language tag (`en`, `pt-BR`) when it has
/// the form of one: two or three letters, optionally followed by `-` and a
/// two-letter region.
fn language_tag(word: &str) -> Option<String> {
    let is_letters = |text: &str, lengths: &[usize]| {
        lengths.contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphabetic())
    };

    let (language, region) = match word.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (word, None),
    };
    if !is_letters(language, &[2, 3]) {
        return None;
    }
    let language = language.to_ascii_lowercase();
    if NOT_LANGUAGES.contains(&language.as_str()) {
        return None;
    }
    match region {
        None => Some(language),
        Some(region) if is_letters(region, &[2]) => {
            Some(format!("{language}-{}", region.to_ascii_uppercase()))
        }
        Some(_) => None,
    }
}

/// Converts the sidecar `file_name` of `media` to WebVTT.
///
/// `file_name` may come from a client, so it must name a sidecar of `media`
/// as [`sidecars`] would list it: one path component, the media stem, and a
/// regular file that is not a symbolic link.
pub(super) fn sidecar_to_webvtt(media: &Path, file_name: &str) -> Result<String, MediaError> {
    let folder = media_folder(media).unwrap_or_else(|| PathBuf::from("."));
    let path = folder.join(file_name);
    let invalid = |message: String| MediaError::Io {
        path: path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, message),
    };

    let is_one_component =
        !file_name.contains(['/', '\\']) && file_name != "." && file_name != "..";
    let stem = media.file_stem().and_then(|stem| stem.to_str());
    let name = stem
        .filter(|_| is_one_component)
        .and_then(|stem| parse_sidecar_name(stem, file_name))
        .ok_or_else(|| {
            invalid(format!(
                "not a subtitle file of {}: expected the same name as the video with the extension .srt or .vtt",
                media.display()
            ))
        })?;

    let bytes = read_limited(&path)?;
    let (text, encoding) = decode(&bytes);
    tracing::debug!(path = %path.display(), encoding, "decoded subtitle file");
    let text = normalize_line_endings(&text);

    let cues = match name.format {
        SidecarFormat::SubRip => parse_cues(&text, Syntax::SubRip),
        SidecarFormat::WebVtt => parse_cues(webvtt_body(&path, &text)?, Syntax::WebVtt),
    };
    if cues.is_empty() {
        return Err(MediaError::Corrupt {
            path,
            reason: "it contains no subtitle cue with a valid timing line (such as \"00:00:01,000 --> 00:00:02,000\") and text".to_owned(),
        });
    }
    Ok(write_document(&cues))
}

/// Reads a regular file of at most [`MAX_SUBTITLE_BYTES`], refusing symbolic links.
fn read_limited(path: &Path) -> Result<Vec<u8>, MediaError> {
    let io_error = |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    };

    let metadata = fs::symlink_metadata(path).map_err(io_error)?;
    if metadata.file_type().is_symlink() {
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a symbolic link; only regular subtitle files in the video's folder are read",
        )));
    }
    if !metadata.is_file() {
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        )));
    }

    let file = File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    // Reading one byte more than the limit detects an oversized file, also
    // one that grew after `symlink_metadata`.
    file.take(MAX_SUBTITLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_SUBTITLE_BYTES {
        return Err(io_error(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "the file is larger than the {} MiB limit for subtitle files; split it or convert it elsewhere",
                MAX_SUBTITLE_BYTES / (1024 * 1024)
            ),
        )));
    }
    Ok(bytes)
}

/// Checks the `WEBVTT` signature of a WebVTT file and returns the text after
/// its header block, which ends at the first blank line.
fn webvtt_body<'a>(path: &Path, text: &'a str) -> Result<&'a str, MediaError> {
    let (first_line, rest) = text.split_once('\n').unwrap_or((text, ""));
    let after_signature = first_line.strip_prefix("WEBVTT");
    let is_signature =
        after_signature.is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']));
    if !is_signature {
        return Err(MediaError::Corrupt {
            path: path.to_path_buf(),
            reason:
                "it does not start with the line \"WEBVTT\" that every WebVTT file must start with"
                    .to_owned(),
        });
    }

    // Header lines such as `Kind: captions` run up to the first blank line.
    // A header line with `-->` is really the first cue's timing line.
    let mut body = rest;
    while !body.is_empty() {
        let (line, after) = body.split_once('\n').unwrap_or((body, ""));
        if line.trim().is_empty() || line.contains("-->") {
            break;
        }
        body = after;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(file_name: &str) -> Option<(Option<String>, Vec<String>)> {
        parse_sidecar_name("Film", file_name).map(|name| (name.language, name.words))
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn name_language_and_words() {
        assert_eq!(parsed("Film.srt"), Some((None, vec![])));
        assert_eq!(parsed("Film.en.srt"), Some((Some("en".into()), vec![])));
        assert_eq!(
            parsed("Film.pt-br.VTT"),
            Some((Some("pt-BR".into()), vec![]))
        );
        assert_eq!(parsed("Film.FRA.Srt"), Some((Some("fra".into()), vec![])));
        assert_eq!(
            parsed("Film.forced.en.srt"),
            Some((Some("en".into()), words(&["forced"])))
        );
        assert_eq!(
            parsed("Film.en.SDH.srt"),
            Some((Some("en".into()), words(&["SDH"])))
        );
        assert_eq!(
            parsed("Film.en.de.srt"),
            Some((Some("en".into()), words(&["de"])))
        );
        assert_eq!(
            parsed("Film.english-uk.srt"),
            Some((None, words(&["english-uk"])))
        );
    }

    #[test]
    fn name_rejects_other_files() {
        assert_eq!(parsed("Film.en.txt"), None);
        assert_eq!(parsed("Film2.en.srt"), None);
        assert_eq!(parsed("Filmsrt"), None);
        assert_eq!(parsed("film.en.srt"), None);
        assert_eq!(parsed("Other.srt"), None);
    }

    #[test]
    fn language_tag_forms() {
        assert_eq!(language_tag("EN").as_deref(), Some("en"));
        assert_eq!(language_tag("zh-tw").as_deref(), Some("zh-TW"));
        assert_eq!(language_tag("e"), None);
        assert_eq!(language_tag("engl"), None);
        assert_eq!(language_tag("en-123"), None);
        assert_eq!(language_tag("cc"), None);
        assert_eq!(language_tag("e1"), None);
    }

    #[test]
    fn webvtt_header_is_skipped() {
        let path = Path::new("x.vtt");
        assert_eq!(webvtt_body(path, "WEBVTT\n\nA").unwrap(), "\nA");
        assert_eq!(
            webvtt_body(path, "WEBVTT - title\nKind: captions\n\nA").unwrap(),
            "\nA"
        );
        assert_eq!(
            webvtt_body(path, "WEBVTT\n00:01.000 --> 00:02.000\nA").unwrap(),
            "00:01.000 --> 00:02.000\nA"
        );
        assert_eq!(webvtt_body(path, "WEBVTT").unwrap(), "");
        assert!(webvtt_body(path, "WEBVTTX\n\n").is_err());
        assert!(webvtt_body(path, "1\n00:00:01,000 --> 00:00:02,000\nA").is_err());
    }
}
