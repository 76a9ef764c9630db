//! Reading cues from SubRip (`.srt`) and WebVTT (`.vtt`) text.
//!
//! Both formats are blocks separated by blank lines: an optional identifier
//! line (a counter in SubRip), a timing line with `-->`, and the cue text.
//! Real files break that layout, so the reader is lenient. A timing line
//! starts a new cue even without a blank line before it. A block whose timing
//! line cannot be parsed is skipped, and lines that belong to no cue are
//! ignored.

use super::webvtt::{Cue, Markup, cue_settings, cue_text, parse_timing};

/// Subtitle format of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// SubRip: counters are dropped and cue settings are ignored.
    SubRip,
    /// WebVTT without its header block: identifiers and valid cue settings
    /// are kept.
    WebVtt,
}

/// Position of the reader within the current block.
enum State {
    /// Between blocks, or before the timing line of a block. Contains the
    /// first line of the block, which may be a cue identifier.
    Idle { first_line: Option<String> },
    /// Collecting the text lines of a cue.
    InCue { cue: Cue, lines: Vec<String> },
    /// Ignoring the rest of a block that is no cue: a broken timing line, a
    /// WebVTT `NOTE`, `STYLE` or `REGION` block, or stray text.
    Skipping,
}

/// Reads every cue of `text`, in file order. `text` must use `\n` line endings.
pub(super) fn parse_cues(text: &str, syntax: Syntax) -> Vec<Cue> {
    let mut cues = Vec::new();
    let mut state = State::Idle { first_line: None };

    for raw_line in text.split('\n') {
        let line = raw_line.trim();
        if line.is_empty() {
            finish_cue(state, &mut cues);
            state = State::Idle { first_line: None };
            continue;
        }

        if let Some((start, end, settings)) = parse_timing(line) {
            let id = match state {
                State::Idle { first_line } => first_line,
                State::InCue { cue, mut lines } => {
                    // Without a blank line, the counter of this cue was taken
                    // as the last text line of the previous one.
                    if syntax == Syntax::SubRip && lines.last().is_some_and(|last| is_counter(last))
                    {
                        lines.pop();
                    }
                    finish_cue(State::InCue { cue, lines }, &mut cues);
                    None
                }
                State::Skipping => None,
            };
            let cue = new_cue(id, start, end, settings, syntax);
            state = State::InCue {
                cue,
                lines: Vec::new(),
            };
            continue;
        }

        state = match state {
            State::Idle { first_line: None } if !line.contains("-->") => State::Idle {
                first_line: Some(line.to_owned()),
            },
            // A second line before any timing line, or a timing line that
            // does not parse: this block is no cue.
            State::Idle { .. } | State::Skipping => State::Skipping,
            State::InCue { cue, mut lines } => {
                lines.push(line.to_owned());
                State::InCue { cue, lines }
            }
        };
    }
    finish_cue(state, &mut cues);
    cues
}

fn new_cue(
    id: Option<String>,
    start: std::time::Duration,
    end: std::time::Duration,
    settings: &str,
    syntax: Syntax,
) -> Cue {
    match syntax {
        Syntax::SubRip => Cue {
            id: None,
            start,
            end,
            settings: String::new(),
            text: String::new(),
        },
        Syntax::WebVtt => Cue {
            // The id line never contains `-->`: such a line is a timing line
            // or makes the block skipped.
            id,
            start,
            end,
            settings: cue_settings(settings),
            text: String::new(),
        },
    }
}

/// Adds the cue in `state`, if any, to `cues`, unless its text is empty.
fn finish_cue(state: State, cues: &mut Vec<Cue>) {
    let State::InCue { mut cue, lines } = state else {
        return;
    };
    if let Some(text) = cue_text(&lines.join("\n"), Markup::Tags) {
        cue.text = text;
        cues.push(cue);
    }
}

fn is_counter(line: &str) -> bool {
    !line.is_empty() && line.bytes().all(|byte| byte.is_ascii_digit())
}

/// Normalises CRLF and lone CR line endings to LF and removes a leading byte
/// order mark.
pub(super) fn normalize_line_endings(text: &str) -> String {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn texts(cues: &[Cue]) -> Vec<&str> {
        cues.iter().map(|cue| cue.text.as_str()).collect()
    }

    #[test]
    fn srt_basic_cues() {
        let srt = "1\n00:00:01,000 --> 00:00:02,500\nHello\nworld\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>Bye</i>\n";
        let cues = parse_cues(srt, Syntax::SubRip);
        assert_eq!(texts(&cues), ["Hello\nworld", "<i>Bye</i>"]);
        assert_eq!((cues[0].start, cues[0].end), (ms(1000), ms(2500)));
        assert_eq!((cues[1].start, cues[1].end), (ms(3000), ms(4000)));
        assert_eq!(cues[0].id, None);
    }

    #[test]
    fn srt_missing_blank_lines() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\nOne\n2\n00:00:03,000 --> 00:00:04,000\nTwo\n00:00:05,000 --> 00:00:06,000\nThree";
        let cues = parse_cues(srt, Syntax::SubRip);
        assert_eq!(texts(&cues), ["One", "Two", "Three"]);
    }

    #[test]
    fn srt_broken_timing_skips_block() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\nOne\n\n2\n00:00:0x,000 --> 00:00:04,000\nLost\nalso lost\n\n3\n00:00:05,000 --> 00:00:06,000\nThree\n";
        let cues = parse_cues(srt, Syntax::SubRip);
        assert_eq!(texts(&cues), ["One", "Three"]);
    }

    #[test]
    fn srt_text_with_arrow_is_escaped() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\nfake --> timing\n";
        let cues = parse_cues(srt, Syntax::SubRip);
        assert_eq!(texts(&cues), ["fake --&gt; timing"]);
    }

    #[test]
    fn srt_empty_cue_is_dropped() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nTwo\n";
        let cues = parse_cues(srt, Syntax::SubRip);
        assert_eq!(texts(&cues), ["Two"]);
    }

    #[test]
    fn vtt_keeps_ids_and_settings_and_skips_notes() {
        let vtt = "NOTE a comment\nthat spans lines\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.000 align:start region:x\nHi\n\n00:00:03.000 --> 00:00:04.000\nThere\n";
        let cues = parse_cues(vtt, Syntax::WebVtt);
        assert_eq!(texts(&cues), ["Hi", "There"]);
        assert_eq!(cues[0].id.as_deref(), Some("intro"));
        assert_eq!(cues[0].settings, "align:start");
        assert_eq!(cues[1].id, None);
    }

    #[test]
    fn line_endings_are_normalised() {
        assert_eq!(normalize_line_endings("\u{FEFF}a\r\nb\rc\n"), "a\nb\nc\n");
    }
}
