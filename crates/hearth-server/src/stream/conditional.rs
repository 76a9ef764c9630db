//! Validators of a file and evaluation of the conditional request fields
//! (RFC 9110 section 13).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::{
    GetAll, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
};
use axum::http::{HeaderMap, HeaderValue, Method};

use super::trim_ows;

/// Validators of one version of a file: its strong entity tag and its modification date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// Strong entity tag with its quotes, as sent in ETag.
    etag: String,
    /// Modification time in whole seconds, as sent in Last-Modified.
    last_modified: SystemTime,
    /// Whether a date equal to `last_modified` identifies this version of the file.
    last_modified_is_strong: bool,
}

/// Result of the precondition steps of RFC 9110 section 13.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Every precondition is true or absent, so If-Range and Range come next.
    Passed,
    /// If-None-Match or If-Modified-Since matched on a GET or HEAD, so the response is 304.
    NotModified,
    /// If-Match or If-Unmodified-Since failed, so the response is 412.
    Failed,
}

/// Latest time that an HTTP-date can write, 9999-12-31T23:59:59Z.
const LATEST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

impl Validators {
    /// Derives the validators of a file of `size` bytes last modified at `modified`, as seen at `now`.
    ///
    /// The entity tag joins the size and the modification time in nanoseconds,
    /// both in hexadecimal. Last-Modified is `modified` truncated to whole
    /// seconds, and never later than `now` (RFC 9110 section 8.8.2.1).
    pub(crate) fn new(size: u64, modified: SystemTime, now: SystemTime) -> Self {
        // A time before the epoch gets a negative count, written in two's complement.
        let modified_ns: i128 = match modified.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_nanos() as i128,
            Err(before) => -(before.duration().as_nanos() as i128),
        };
        let etag = format!("\"{size:x}-{modified_ns:x}\"");

        let clamped = modified
            .min(now)
            .max(UNIX_EPOCH)
            .min(UNIX_EPOCH + LATEST_HTTP_DATE);
        let whole_seconds = clamped
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let last_modified = UNIX_EPOCH + Duration::from_secs(whole_seconds);

        // RFC 9110 section 8.8.2.2 lets a server treat the date as strong when
        // it can deduce that the file did not change twice within that second. A file
        // whose mtime is at least one second old is no longer being written in
        // the second that Last-Modified names.
        // NOTE: a client that fetched the file during a second with two writes
        // still holds a date that matches the later write. The ETag form of
        // If-Range has no such gap.
        let last_modified_is_strong = now
            .duration_since(modified)
            .is_ok_and(|age| age >= Duration::from_secs(1));

        Self {
            etag,
            last_modified,
            last_modified_is_strong,
        }
    }

    /// Turns these into the validators of a patched representation of the file.
    ///
    /// The entity tag gets a `-r` suffix inside the quotes, so a cache or an
    /// If-Range never mixes bytes of the patched and unpatched forms. The
    /// modification date is shared by both forms, so it no longer counts as
    /// strong, and If-Range with a date then sends the whole representation.
    pub(crate) fn patched(mut self) -> Self {
        let closing_quote = self.etag.len() - 1;
        self.etag.insert_str(closing_quote, "-r");
        self.last_modified_is_strong = false;
        self
    }

    /// Returns the strong entity tag with its quotes.
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    /// Formats the modification date as an IMF-fixdate for Last-Modified.
    pub(crate) fn last_modified_http_date(&self) -> String {
        httpdate::fmt_http_date(self.last_modified)
    }
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since
/// in the order of RFC 9110 section 13.2.2.
///
/// A malformed entity-tag list matches nothing, so a malformed If-Match fails
/// and a malformed If-None-Match lets the request through. A date field that is
/// not one valid HTTP-date is ignored (RFC 9110 sections 13.1.3 and 13.1.4).
pub(crate) fn evaluate_preconditions(
    method: &Method,
    headers: &HeaderMap,
    validators: &Validators,
) -> Precondition {
    if headers.contains_key(IF_MATCH) {
        if !parse_tag_list(headers.get_all(IF_MATCH)).matches(&validators.etag, Comparison::Strong)
        {
            return Precondition::Failed;
        }
    } else if let Some(date) = single_http_date(headers.get_all(IF_UNMODIFIED_SINCE))
        && validators.last_modified > date
    {
        return Precondition::Failed;
    }

    let is_read = method == Method::GET || method == Method::HEAD;
    if headers.contains_key(IF_NONE_MATCH) {
        if parse_tag_list(headers.get_all(IF_NONE_MATCH))
            .matches(&validators.etag, Comparison::Weak)
        {
            return if is_read {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if is_read
        && let Some(date) = single_http_date(headers.get_all(IF_MODIFIED_SINCE))
        && validators.last_modified <= date
    {
        return Precondition::NotModified;
    }

    Precondition::Passed
}

/// Checks If-Range (RFC 9110 section 13.1.5): returns whether the Range field
/// may be honoured.
///
/// An absent If-Range allows the range. An entity tag allows it only when it
/// is strong and equal to the current one. A date allows it only when it
/// equals Last-Modified and that date is strong. Anything else, including a
/// field sent twice, means the whole file is sent.
pub(crate) fn if_range_allows_range(headers: &HeaderMap, validators: &Validators) -> bool {
    let mut fields = headers.get_all(IF_RANGE).iter();
    let value = match (fields.next(), fields.next()) {
        (None, _) => return true,
        (Some(value), None) => trim_ows(value.as_bytes()),
        (Some(_), Some(_)) => return false,
    };

    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match parse_entity_tag(value) {
            // Only a whole field that is one entity-tag counts.
            Some((tag, [])) => !tag.weak && tag.opaque == validators.etag.as_bytes(),
            _ => false,
        };
    }

    let Some(date) = parse_http_date(value) else {
        return false;
    };
    validators.last_modified_is_strong && date == validators.last_modified
}

/// Entity-tag comparison function of RFC 9110 section 8.8.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and their opaque-tags equal (If-Match, If-Range).
    Strong,
    /// Opaque-tags equal, whatever their weakness (If-None-Match).
    Weak,
}

/// Field value of If-Match or If-None-Match.
#[derive(Debug, PartialEq, Eq)]
enum TagList<'a> {
    /// `*`: matches any current representation.
    Any,
    /// A list of entity tags, empty when the field was malformed.
    Tags(Vec<EntityTag<'a>>),
}

/// One entity-tag as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    /// Whether the tag had the `W/` prefix.
    weak: bool,
    /// The opaque-tag, quotes included.
    opaque: &'a [u8],
}

impl TagList<'_> {
    /// Checks whether the list contains the server's strong `etag`.
    fn matches(&self, etag: &str, comparison: Comparison) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|tag| {
                let weakness_allowed = comparison == Comparison::Weak || !tag.weak;
                weakness_allowed && tag.opaque == etag.as_bytes()
            }),
        }
    }
}

/// Parses every field line of If-Match or If-None-Match as one combined list.
///
/// `*` must be the whole field value. Any syntax error makes the result an
/// empty list, which matches nothing.
fn parse_tag_list<'a>(fields: GetAll<'a, HeaderValue>) -> TagList<'a> {
    let mut tags = Vec::new();

    for field in fields {
        let mut rest = trim_ows(field.as_bytes());
        if rest == b"*" {
            return TagList::Any;
        }

        loop {
            rest = skip_list_separators(rest);
            if rest.is_empty() {
                break;
            }
            let Some((tag, after)) = parse_entity_tag(rest) else {
                return TagList::Tags(Vec::new());
            };
            tags.push(tag);

            // After a tag, only optional whitespace and then a comma or the end may follow.
            rest = trim_leading_ows(after);
            if !rest.is_empty() && !rest.starts_with(b",") {
                return TagList::Tags(Vec::new());
            }
        }
    }

    TagList::Tags(tags)
}

/// Parses one `[W/]"opaque"` at the start of `input` and returns it with the unparsed rest.
fn parse_entity_tag(input: &[u8]) -> Option<(EntityTag<'_>, &[u8])> {
    let (weak, quoted) = match input.strip_prefix(b"W/") {
        Some(after_prefix) => (true, after_prefix),
        None => (false, input),
    };
    if !quoted.starts_with(b"\"") {
        return None;
    }

    // etagc is %x21 / %x23-7E / obs-text: any visible byte except the quote.
    let closing = 1 + quoted[1..].iter().position(|&byte| byte == b'"')?;
    let opaque = &quoted[..=closing];
    let is_etagc = |byte: &u8| *byte == 0x21 || (0x23..=0x7e).contains(byte) || *byte >= 0x80;
    if !opaque[1..closing].iter().all(is_etagc) {
        return None;
    }

    Some((EntityTag { weak, opaque }, &quoted[closing + 1..]))
}

/// Returns the date of a field that is present once and contains one valid HTTP-date.
fn single_http_date(fields: GetAll<'_, HeaderValue>) -> Option<SystemTime> {
    let mut values = fields.iter();
    match (values.next(), values.next()) {
        (Some(value), None) => parse_http_date(trim_ows(value.as_bytes())),
        _ => None,
    }
}

/// Parses an IMF-fixdate or one of the two obsolete HTTP-date forms.
fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text).ok()
}

fn skip_list_separators(mut input: &[u8]) -> &[u8] {
    loop {
        input = trim_leading_ows(input);
        match input.strip_prefix(b",") {
            Some(rest) => input = rest,
            None => return input,
        }
    }
}

fn trim_leading_ows(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|&byte| byte != b' ' && byte != b'\t')
        .unwrap_or(input.len());
    &input[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20.123456789Z, whole seconds 1_700_000_000.
    fn modified() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)
    }

    fn validators() -> Validators {
        Validators::new(1000, modified(), modified() + Duration::from_secs(60))
    }

    fn headers(fields: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn evaluate(fields: &[(&'static str, &str)]) -> Precondition {
        evaluate_preconditions(&Method::GET, &headers(fields), &validators())
    }

    const CURRENT: &str = "\"3e8-17979cfe3d85cd15\"";
    const LAST_MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const EARLIER: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const LATER: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    #[test]
    fn validators_encode_size_and_nanoseconds() {
        let validators = validators();
        assert_eq!(validators.etag(), CURRENT);
        assert_eq!(validators.last_modified_http_date(), LAST_MODIFIED);
        assert!(validators.last_modified_is_strong);
    }

    #[test]
    fn etag_changes_with_one_nanosecond() {
        let now = modified() + Duration::from_secs(60);
        let later = Validators::new(1000, modified() + Duration::from_nanos(1), now);
        assert_ne!(later.etag(), validators().etag());
        assert_eq!(
            later.last_modified_http_date(),
            validators().last_modified_http_date()
        );
    }

    #[test]
    fn future_mtime_is_clamped_to_now() {
        let now = modified() - Duration::from_secs(3600);
        let validators = Validators::new(1, modified(), now);
        assert_eq!(
            validators.last_modified,
            UNIX_EPOCH + Duration::from_secs(1_699_996_400)
        );
        assert!(!validators.last_modified_is_strong);
    }

    #[test]
    fn mtime_before_epoch_is_formatted() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        let validators = Validators::new(1, before, SystemTime::now());
        assert_eq!(
            validators.last_modified_http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_ne!(
            validators.etag(),
            Validators::new(1, UNIX_EPOCH, SystemTime::now()).etag()
        );
    }

    #[test]
    fn date_is_weak_within_a_second_of_mtime() {
        let fresh = Validators::new(1000, modified(), modified() + Duration::from_millis(999));
        assert!(!fresh.last_modified_is_strong);
        let range_headers = headers(&[("if-range", LAST_MODIFIED)]);
        assert!(!if_range_allows_range(&range_headers, &fresh));
        assert!(if_range_allows_range(&range_headers, &validators()));
    }

    #[test]
    fn patched_validators_differ_and_refuse_date_if_range() {
        let patched = validators().patched();

        assert_eq!(patched.etag(), "\"3e8-17979cfe3d85cd15-r\"");
        assert_eq!(
            patched.last_modified_http_date(),
            validators().last_modified_http_date()
        );
        let by_date = headers(&[("if-range", LAST_MODIFIED)]);
        assert!(!if_range_allows_range(&by_date, &patched));
        let by_plain_tag = headers(&[("if-range", CURRENT)]);
        assert!(!if_range_allows_range(&by_plain_tag, &patched));
        let by_patched_tag = headers(&[("if-range", "\"3e8-17979cfe3d85cd15-r\"")]);
        assert!(if_range_allows_range(&by_patched_tag, &patched));
    }

    #[test]
    fn precondition_table() {
        use Precondition::{Failed, NotModified, Passed};

        let weak_current = format!("W/{CURRENT}");
        let list_with_current = format!("\"a\", {CURRENT}");
        let cases: Vec<(Vec<(&'static str, &str)>, Precondition)> = vec![
            (vec![], Passed),
            // If-Match uses the strong comparison.
            (vec![("if-match", CURRENT)], Passed),
            (vec![("if-match", "*")], Passed),
            (vec![("if-match", &list_with_current)], Passed),
            (vec![("if-match", "\"a\""), ("if-match", CURRENT)], Passed),
            (vec![("if-match", "\"old\"")], Failed),
            (vec![("if-match", &weak_current)], Failed),
            (vec![("if-match", "not-a-tag")], Failed),
            (vec![("if-match", "\"a\" \"b\"")], Failed),
            // If-Unmodified-Since.
            (vec![("if-unmodified-since", LAST_MODIFIED)], Passed),
            (vec![("if-unmodified-since", LATER)], Passed),
            (vec![("if-unmodified-since", EARLIER)], Failed),
            (vec![("if-unmodified-since", "yesterday")], Passed),
            (
                vec![
                    ("if-unmodified-since", EARLIER),
                    ("if-unmodified-since", LATER),
                ],
                Passed,
            ),
            // If-Match takes precedence over If-Unmodified-Since.
            (
                vec![("if-match", CURRENT), ("if-unmodified-since", EARLIER)],
                Passed,
            ),
            // If-None-Match uses the weak comparison.
            (vec![("if-none-match", CURRENT)], NotModified),
            (vec![("if-none-match", &weak_current)], NotModified),
            (vec![("if-none-match", "*")], NotModified),
            (vec![("if-none-match", &list_with_current)], NotModified),
            (vec![("if-none-match", "\"old\"")], Passed),
            (vec![("if-none-match", "garbage")], Passed),
            // If-Modified-Since.
            (vec![("if-modified-since", LAST_MODIFIED)], NotModified),
            (vec![("if-modified-since", LATER)], NotModified),
            (vec![("if-modified-since", EARLIER)], Passed),
            (
                vec![("if-modified-since", "Tuesday, 14-Nov-23 22:13:20 GMT")],
                NotModified,
            ),
            (
                vec![("if-modified-since", "Tue Nov 14 22:13:20 2023")],
                NotModified,
            ),
            (vec![("if-modified-since", "2023-11-14T22:13:20Z")], Passed),
            // If-None-Match present: If-Modified-Since is not evaluated.
            (
                vec![("if-none-match", "\"old\""), ("if-modified-since", LATER)],
                Passed,
            ),
            // If-Match failure comes before a matching If-None-Match.
            (
                vec![("if-match", "\"old\""), ("if-none-match", CURRENT)],
                Failed,
            ),
            (
                vec![("if-unmodified-since", EARLIER), ("if-none-match", CURRENT)],
                Failed,
            ),
        ];

        for (fields, expected) in cases {
            assert_eq!(evaluate(&fields), expected, "{fields:?}");
        }
    }

    #[test]
    fn modified_since_is_ignored_for_other_methods() {
        let fields = headers(&[("if-modified-since", LATER)]);
        assert_eq!(
            evaluate_preconditions(&Method::POST, &fields, &validators()),
            Precondition::Passed
        );
    }

    #[test]
    fn none_match_fails_other_methods() {
        let fields = headers(&[("if-none-match", CURRENT)]);
        assert_eq!(
            evaluate_preconditions(&Method::POST, &fields, &validators()),
            Precondition::Failed
        );
        assert_eq!(
            evaluate_preconditions(&Method::HEAD, &fields, &validators()),
            Precondition::NotModified
        );
    }

    #[test]
    fn if_range_table() {
        let weak_current = format!("W/{CURRENT}");
        let padded_current = format!(" {CURRENT} ");
        let current_and_old = format!("{CURRENT}, \"old\"");
        let cases: Vec<(Vec<(&'static str, &str)>, bool)> = vec![
            (vec![], true),
            (vec![("if-range", CURRENT)], true),
            (vec![("if-range", &padded_current)], true),
            (vec![("if-range", "\"old\"")], false),
            (vec![("if-range", &weak_current)], false),
            (vec![("if-range", &current_and_old)], false),
            (vec![("if-range", CURRENT), ("if-range", CURRENT)], false),
            (vec![("if-range", LAST_MODIFIED)], true),
            (vec![("if-range", EARLIER)], false),
            (vec![("if-range", LATER)], false),
            (vec![("if-range", "*")], false),
            (vec![("if-range", "garbage")], false),
        ];

        for (fields, expected) in cases {
            assert_eq!(
                if_range_allows_range(&headers(&fields), &validators()),
                expected,
                "{fields:?}"
            );
        }
    }

    #[test]
    fn tag_list_parsing() {
        let parse = |values: &[&str]| -> Vec<(bool, String)> {
            let map = headers(
                &values
                    .iter()
                    .map(|value| ("if-none-match", *value))
                    .collect::<Vec<_>>(),
            );
            match parse_tag_list(map.get_all("if-none-match")) {
                TagList::Any => vec![(false, "*".to_owned())],
                TagList::Tags(tags) => tags
                    .iter()
                    .map(|tag| (tag.weak, String::from_utf8(tag.opaque.to_vec()).unwrap()))
                    .collect(),
            }
        };
        let tag = |weak: bool, opaque: &str| (weak, opaque.to_owned());

        assert_eq!(parse(&["\"a\""]), vec![tag(false, "\"a\"")]);
        assert_eq!(
            parse(&["W/\"a\", \"b\""]),
            vec![tag(true, "\"a\""), tag(false, "\"b\"")]
        );
        assert_eq!(
            parse(&[", \"a\" ,, \"b\" ,"]),
            vec![tag(false, "\"a\""), tag(false, "\"b\"")]
        );
        // A comma is an etagc, so it may sit inside the quotes.
        assert_eq!(parse(&["\"a,b\""]), vec![tag(false, "\"a,b\"")]);
        assert_eq!(parse(&["\"\""]), vec![tag(false, "\"\"")]);
        assert_eq!(
            parse(&["\"a\"", "\"b\""]),
            vec![tag(false, "\"a\""), tag(false, "\"b\"")]
        );
        assert_eq!(parse(&["*"]), vec![tag(false, "*")]);
        assert_eq!(parse(&["\"a\", *"]), Vec::<(bool, String)>::new());
        assert_eq!(parse(&["\"a"]), Vec::<(bool, String)>::new());
        assert_eq!(parse(&["w/\"a\""]), Vec::<(bool, String)>::new());
        assert_eq!(parse(&["\"a b\""]), Vec::<(bool, String)>::new());
        assert_eq!(parse(&["\"a\"\"b\""]), Vec::<(bool, String)>::new());
    }
}
