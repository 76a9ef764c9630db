//! Writing WebVTT: cue timestamps, safe cue text and the document itself.

use std::fmt::Write as _;
use std::time::Duration;

/// One cue, ready to write: its text is already safe WebVTT cue text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cue {
    /// Optional cue identifier; never empty and never contains `-->` or a newline.
    pub(super) id: Option<String>,
    pub(super) start: Duration,
    pub(super) end: Duration,
    /// Cue settings such as `align:start`, already checked by [`cue_settings`].
    pub(super) settings: String,
    /// Cue text lines joined by `\n`, none of them empty.
    pub(super) text: String,
}

/// Markup convention of the raw text of a cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Markup {
    /// SubRip, WebVTT or Pango markup: `<i>`, `<b>` and `<u>` are kept, the
    /// known styling tags of those formats are dropped, and character
    /// references such as `&amp;` stay as they are.
    Tags,
    /// Plain text (GStreamer's `utf8` text format): every `<`, `>` and `&` is
    /// literal.
    Plain,
}

/// Tags of SubRip, Pango and WebVTT that WebVTT output cannot carry as they
/// are. They are removed and the text inside them is kept.
const DROPPED_TAGS: [&str; 14] = [
    "font", "span", "s", "big", "small", "tt", "sub", "sup", "markup", "c", "v", "lang", "ruby",
    "rt",
];

/// Formatting tags that WebVTT supports and browsers render.
const KEPT_TAGS: [&str; 3] = ["i", "b", "u"];

/// Maximum length of a character reference that is kept as it is, such as `&nbsp;`.
const MAX_REFERENCE_LEN: usize = 32;

/// Writes `cues` as a WebVTT document: the `WEBVTT` line, a blank line, and
/// the cues separated by blank lines.
pub(super) fn write_document(cues: &[Cue]) -> String {
    let mut document = String::from("WEBVTT\n");
    for cue in cues {
        document.push('\n');
        if let Some(id) = &cue.id {
            document.push_str(id);
            document.push('\n');
        }
        document.push_str(&format_timestamp(cue.start));
        document.push_str(" --> ");
        document.push_str(&format_timestamp(cue.end));
        if !cue.settings.is_empty() {
            document.push(' ');
            document.push_str(&cue.settings);
        }
        document.push('\n');
        document.push_str(&cue.text);
        document.push('\n');
    }
    if cues.is_empty() {
        document.push('\n');
    }
    document
}

/// Formats a time as WebVTT's `HH:MM:SS.mmm`; hours grow past two digits
/// when needed.
pub(super) fn format_timestamp(time: Duration) -> String {
    let total_ms = time.as_millis();
    let ms = total_ms % 1000;
    let total_seconds = total_ms / 1000;
    let seconds = total_seconds % 60;
    let minutes = (total_seconds / 60) % 60;
    let hours = total_seconds / 3600;
    format!("{hours:02}:{minutes:02}:{seconds:02}.{ms:03}")
}

/// Parses a cue timing line, `start --> end` with optional cue settings after
/// the end time, and returns the times and the settings text.
///
/// Accepts both SubRip (`00:01:02,500`) and WebVTT (`00:01:02.500`, `01:02.500`)
/// timestamps, one to three fraction digits, and any spacing. Returns `None`
/// when a timestamp is invalid or the end is not after the start.
pub(super) fn parse_timing(line: &str) -> Option<(Duration, Duration, &str)> {
    let (start, rest) = line.split_once("-->")?;
    let start = parse_timestamp(start.trim())?;
    let rest = rest.trim_start();
    let (end, settings) = match rest.find(char::is_whitespace) {
        Some(split) => (&rest[..split], rest[split..].trim()),
        None => (rest, ""),
    };
    let end = parse_timestamp(end)?;
    (end > start).then_some((start, end, settings))
}

/// Parses `[H:]MM:SS[.,]f`, with one to three fraction digits.
fn parse_timestamp(text: &str) -> Option<Duration> {
    let (clock, fraction) = text.split_once([',', '.'])?;
    if fraction.is_empty() || fraction.len() > 3 || !is_digits(fraction) {
        return None;
    }
    let fraction_ms: u64 = fraction.parse().ok()?;
    let ms = fraction_ms * 10u64.pow(3 - fraction.len() as u32);

    let fields: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match fields.as_slice() {
        [hours, minutes, seconds] => (*hours, *minutes, *seconds),
        [minutes, seconds] => ("0", *minutes, *seconds),
        _ => return None,
    };
    // Nine hour digits keep the sum below u64::MAX milliseconds.
    if hours.len() > 9 || minutes.len() > 2 || seconds.len() > 2 {
        return None;
    }
    if !is_digits(hours) || !is_digits(minutes) || !is_digits(seconds) {
        return None;
    }
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: u64 = seconds.parse().ok()?;
    if minutes >= 60 || seconds >= 60 {
        return None;
    }
    let total_ms = ((hours * 60 + minutes) * 60 + seconds) * 1000 + ms;
    Some(Duration::from_millis(total_ms))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Keeps the WebVTT cue settings of `settings` whose names and values are
/// valid, dropping `region`, because region definitions are not copied.
pub(super) fn cue_settings(settings: &str) -> String {
    const NAMES: [&str; 5] = ["vertical", "line", "position", "size", "align"];
    let is_value_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '%' | '.' | ',' | '-' | '_');

    let valid: Vec<&str> = settings
        .split_whitespace()
        .filter(|setting| {
            setting.split_once(':').is_some_and(|(name, value)| {
                NAMES.contains(&name) && !value.is_empty() && value.chars().all(is_value_char)
            })
        })
        .collect();
    valid.join(" ")
}

/// Turns the raw text of one cue into safe WebVTT cue text.
///
/// ASS override blocks such as `{\an8}` are removed, lines are trimmed,
/// empty lines are dropped (a blank line would end the cue), and control
/// characters other than tabs are removed. Returns `None` when no text is
/// left.
pub(super) fn cue_text(raw: &str, markup: Markup) -> Option<String> {
    let without_overrides = strip_ass_overrides(raw);
    let mut writer = CueTextWriter::default();
    for line in without_overrides.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        writer.start_line();
        match markup {
            Markup::Tags => writer.push_marked_up(line),
            Markup::Plain => writer.push_plain(line),
        }
    }
    writer.finish()
}

/// Removes ASS/SSA override blocks: a `{` directly followed by `\`, up to the
/// next `}`. An override block without its `}` is removed up to the end.
pub(super) fn strip_ass_overrides(text: &str) -> String {
    let mut stripped = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{\\") {
        stripped.push_str(&rest[..open]);
        rest = match rest[open..].find('}') {
            Some(close) => &rest[open + close + 1..],
            None => "",
        };
    }
    stripped.push_str(rest);
    stripped
}

/// Builds cue text line by line, keeping `<i>`, `<b>` and `<u>` balanced.
#[derive(Default)]
struct CueTextWriter {
    text: String,
    /// Kept tags that are open, innermost last.
    open_tags: Vec<&'static str>,
    /// Whether any character other than a tag was written.
    has_content: bool,
}

impl CueTextWriter {
    fn start_line(&mut self) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
    }

    fn push_plain(&mut self, line: &str) {
        for c in line.chars() {
            self.push_char(c);
        }
    }

    fn push_marked_up(&mut self, line: &str) {
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            let consumed = match c {
                '<' => self.push_tag(rest),
                '&' => self.push_reference(rest),
                _ => {
                    self.push_char(c);
                    c.len_utf8()
                }
            };
            rest = &rest[consumed..];
        }
    }

    /// Handles a `<` at the start of `text` and returns how many bytes it used.
    fn push_tag(&mut self, text: &str) -> usize {
        let Some((closing, name, len)) = parse_tag(text) else {
            self.push_char('<');
            return 1;
        };
        if let Some(tag) = KEPT_TAGS.iter().find(|tag| **tag == name) {
            if closing {
                self.close_tag(tag);
            } else {
                self.open_tags.push(tag);
                let _ = write!(self.text, "<{tag}>");
            }
            return len;
        }
        if name.is_empty() || DROPPED_TAGS.contains(&name.as_str()) {
            return len;
        }
        self.push_char('<');
        1
    }

    /// Closes `name` and every tag opened inside it. A closing tag that
    /// matches no open tag is dropped.
    fn close_tag(&mut self, name: &str) {
        let Some(position) = self.open_tags.iter().rposition(|open| *open == name) else {
            return;
        };
        for open in self.open_tags.drain(position..).rev() {
            let _ = write!(self.text, "</{open}>");
        }
    }

    /// Keeps a character reference (`&amp;`, `&#233;`, `&#xE9;`) at the start
    /// of `text`, or escapes a bare `&`. Returns how many bytes it used.
    fn push_reference(&mut self, text: &str) -> usize {
        let body_len = text[1..]
            .find(';')
            .filter(|len| *len > 0 && *len <= MAX_REFERENCE_LEN);
        let is_reference = body_len.is_some_and(|len| is_reference_body(&text[1..1 + len]));
        match body_len {
            Some(len) if is_reference => {
                self.text.push_str(&text[..len + 2]);
                self.has_content = true;
                len + 2
            }
            _ => {
                self.push_char('&');
                1
            }
        }
    }

    fn push_char(&mut self, c: char) {
        match c {
            '&' => self.text.push_str("&amp;"),
            '<' => self.text.push_str("&lt;"),
            // Escaping `>` is what keeps `-->` out of every cue text line.
            '>' => self.text.push_str("&gt;"),
            '\t' => self.text.push('\t'),
            c if c.is_control() => return,
            // Byte order marks and zero-width no-break spaces inside text.
            '\u{FEFF}' => return,
            c => self.text.push(c),
        }
        if !c.is_whitespace() {
            self.has_content = true;
        }
    }

    fn finish(mut self) -> Option<String> {
        if !self.has_content {
            return None;
        }
        for open in self.open_tags.drain(..).rev() {
            let _ = write!(self.text, "</{open}>");
        }
        Some(self.text)
    }
}

/// Parses a tag at the start of `text` (which starts with `<`): returns
/// whether it is a closing tag, its lowercase name, and its length in bytes.
/// A WebVTT timestamp tag such as `<00:00:01.500>` gets an empty name.
/// Returns `None` when no `>` closes it or it is not a tag.
fn parse_tag(text: &str) -> Option<(bool, String, usize)> {
    let end = text.find('>')?;
    let inner = &text[1..end];
    if inner.contains('<') {
        return None;
    }
    if parse_timestamp(inner).is_some() {
        return Some((false, String::new(), end + 1));
    }
    let (closing, body) = match inner.strip_prefix('/') {
        Some(body) => (true, body),
        None => (false, inner),
    };
    if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_len = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    // A WebVTT class (`<c.yellow>`) or annotation may follow the name.
    let after_name = &body[name_len..];
    if !after_name.is_empty() && !after_name.starts_with([' ', '.', '\t']) {
        return None;
    }
    Some((closing, body[..name_len].to_ascii_lowercase(), end + 1))
}

/// Returns whether `body` (between `&` and `;`) is a named or numeric character reference.
fn is_reference_body(body: &str) -> bool {
    if let Some(number) = body.strip_prefix('#') {
        return match number.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            None => is_digits(number),
        };
    }
    body.chars().all(|c| c.is_ascii_alphanumeric())
        && body.starts_with(|c: char| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn timestamp_format_pads_fields() {
        assert_eq!(format_timestamp(ms(0)), "00:00:00.000");
        assert_eq!(format_timestamp(ms(3_723_004)), "01:02:03.004");
        assert_eq!(format_timestamp(ms(360_000_000)), "100:00:00.000");
    }

    #[test]
    fn timing_accepts_srt_and_vtt() {
        let srt = parse_timing("00:00:01,500 --> 00:00:02,000").unwrap();
        assert_eq!((srt.0, srt.1, srt.2), (ms(1500), ms(2000), ""));
        let vtt = parse_timing("01:02.5-->01:03.25 align:start").unwrap();
        assert_eq!(
            (vtt.0, vtt.1, vtt.2),
            (ms(62_500), ms(63_250), "align:start")
        );
        let spaced = parse_timing("  0:00:01,000   -->   0:00:02,000  ").unwrap();
        assert_eq!((spaced.0, spaced.1), (ms(1000), ms(2000)));
    }

    #[test]
    fn timing_rejects_invalid_lines() {
        for line in [
            "00:00:01,000 -> 00:00:02,000",
            "00:00:01 --> 00:00:02",
            "00:61:01,000 --> 00:62:02,000",
            "00:00:02,000 --> 00:00:01,000",
            "00:00:01,000 --> 00:00:01,000",
            "aa:00:01,000 --> 00:00:02,000",
            "00:00:01,0000 --> 00:00:02,000",
            "-->",
        ] {
            assert_eq!(parse_timing(line), None, "{line}");
        }
    }

    #[test]
    fn cue_text_keeps_basic_tags() {
        let text = cue_text("<i>Hello</i> <B>world</B>\n<u >x</u>", Markup::Tags);
        assert_eq!(text.as_deref(), Some("<i>Hello</i> <b>world</b>\n<u>x</u>"));
    }

    #[test]
    fn cue_text_escapes_unknown_tags() {
        let text = cue_text("<script>alert(1)</script> a --> b", Markup::Tags).unwrap();
        assert_eq!(text, "&lt;script&gt;alert(1)&lt;/script&gt; a --&gt; b");
    }

    #[test]
    fn cue_text_drops_styling_tags() {
        let text = cue_text(
            "<font color=\"#ff0000\">red</font> <span foreground=\"blue\">blue</span>",
            Markup::Tags,
        );
        assert_eq!(text.as_deref(), Some("red blue"));
    }

    #[test]
    fn cue_text_balances_tags() {
        assert_eq!(
            cue_text("<i>open", Markup::Tags).as_deref(),
            Some("<i>open</i>")
        );
        assert_eq!(
            cue_text("close</i>", Markup::Tags).as_deref(),
            Some("close")
        );
        assert_eq!(
            cue_text("<i><b>x</i>y", Markup::Tags).as_deref(),
            Some("<i><b>x</b></i>y")
        );
    }

    #[test]
    fn cue_text_keeps_references_and_escapes_bare_ampersands() {
        let text = cue_text("Tom &amp; Jerry & co &#233; &#xE9; &nbsp; &;", Markup::Tags);
        assert_eq!(
            text.as_deref(),
            Some("Tom &amp; Jerry &amp; co &#233; &#xE9; &nbsp; &amp;;")
        );
    }

    #[test]
    fn cue_text_plain_escapes_everything() {
        let text = cue_text("<i>x</i> &amp; -->", Markup::Plain);
        assert_eq!(
            text.as_deref(),
            Some("&lt;i&gt;x&lt;/i&gt; &amp;amp; --&gt;")
        );
    }

    #[test]
    fn cue_text_strips_ass_overrides() {
        let text = cue_text(
            "{\\an8}Top {\\i1}line{\\i0} {not an override}",
            Markup::Tags,
        );
        assert_eq!(text.as_deref(), Some("Top line {not an override}"));
        assert_eq!(strip_ass_overrides("a{\\b1 unterminated"), "a");
    }

    #[test]
    fn cue_text_drops_blank_lines_and_controls() {
        let text = cue_text("  one  \n\n \t \ntwo\u{0}\u{7}", Markup::Tags);
        assert_eq!(text.as_deref(), Some("one\ntwo"));
        assert_eq!(cue_text(" \n<i></i>\n", Markup::Tags), None);
    }

    #[test]
    fn cue_text_drops_vtt_timestamp_and_voice_tags() {
        let text = cue_text(
            "<v Bob>Hi <00:00:01.500>there</v> <c.loud>now</c>",
            Markup::Tags,
        );
        assert_eq!(text.as_deref(), Some("Hi there now"));
    }

    #[test]
    fn settings_keep_only_valid_ones() {
        assert_eq!(
            cue_settings("align:start region:r1 line:10% bogus position:50%,center size:<x>"),
            "align:start line:10% position:50%,center"
        );
    }

    #[test]
    fn document_layout() {
        let cues = [
            Cue {
                id: None,
                start: ms(500),
                end: ms(1500),
                settings: String::new(),
                text: "one".to_owned(),
            },
            Cue {
                id: Some("b".to_owned()),
                start: ms(2000),
                end: ms(3000),
                settings: "align:end".to_owned(),
                text: "two\nlines".to_owned(),
            },
        ];
        assert_eq!(
            write_document(&cues),
            "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\none\n\nb\n00:00:02.000 --> 00:00:03.000 align:end\ntwo\nlines\n"
        );
        assert_eq!(write_document(&[]), "WEBVTT\n\n");
    }
}
