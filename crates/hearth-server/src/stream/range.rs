//! Parsing of the Range header field and resolution of its byte ranges against
//! the length of a file (RFC 9110 sections 14.1 and 14.2).

use axum::http::HeaderValue;
use axum::http::header::GetAll;

use super::trim_ows;

/// Maximum number of parts in a multipart/byteranges response, counted after
/// coalescing. A request that needs more parts gets the whole file with 200.
pub(crate) const MAX_PARTS: usize = 16;

/// Inclusive, non-empty byte span `first..=last` of a file, as Content-Range writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSpan {
    /// Offset of the first byte.
    pub(crate) first: u64,
    /// Offset of the last byte, never less than `first`.
    pub(crate) last: u64,
}

impl ByteSpan {
    /// Number of bytes in the span.
    pub(crate) fn len(self) -> u64 {
        self.last - self.first + 1
    }
}

/// Decision on a Range field of a GET request, for a file of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// The field is invalid or names a unit other than bytes, so it is ignored
    /// and the whole file is sent with 200.
    Invalid,
    /// The ranges ask for more bytes than the file contains, or more than
    /// [`MAX_PARTS`] ranges remain after coalescing, so the whole file is sent with 200.
    Excessive,
    /// No range selects a byte of the file, so the response is 416.
    Unsatisfiable,
    /// One span, sent as a plain 206.
    Single(ByteSpan),
    /// Two to [`MAX_PARTS`] disjoint, non-adjacent spans in the order the
    /// request named them, sent as multipart/byteranges.
    Multiple(Vec<ByteSpan>),
}

/// One range-spec of a bytes range-set, before the file length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last`, or `first-` when `last` is `None`.
    FromTo { first: u64, last: Option<u64> },
    /// `-length`: the final `length` bytes.
    Suffix { length: u64 },
}

/// Resolves the Range fields of a request against a file of `size` bytes.
///
/// A Range field sent more than once is invalid, because the ranges-specifier
/// grammar has no list form that two combined fields could produce.
pub(crate) fn resolve_range_fields(fields: GetAll<'_, HeaderValue>, size: u64) -> RangeOutcome {
    let mut values = fields.iter();
    match (values.next(), values.next()) {
        (Some(value), None) => resolve_range(value.as_bytes(), size),
        _ => RangeOutcome::Invalid,
    }
}

/// Resolves one Range field value against a file of `size` bytes.
pub(crate) fn resolve_range(value: &[u8], size: u64) -> RangeOutcome {
    let Some(specs) = parse_range_set(value) else {
        return RangeOutcome::Invalid;
    };

    // Unsatisfiable range-specs are dropped. The set is satisfiable when at
    // least one remains (RFC 9110 section 14.1.1).
    let spans: Vec<ByteSpan> = specs.iter().filter_map(|spec| spec.resolve(size)).collect();
    if spans.is_empty() {
        return RangeOutcome::Unsatisfiable;
    }

    // Every span is at most `size` bytes and the field contains fewer than 2^64
    // specs, so the sum fits in a u128.
    let requested: u128 = spans.iter().map(|span| u128::from(span.len())).sum();
    if requested > u128::from(size) {
        return RangeOutcome::Excessive;
    }

    let merged = coalesce(&spans);
    match merged.as_slice() {
        [single] => RangeOutcome::Single(*single),
        parts if parts.len() > MAX_PARTS => RangeOutcome::Excessive,
        _ => RangeOutcome::Multiple(merged),
    }
}

/// Parses `bytes=range-set` into its range-specs, or `None` when the value is
/// invalid or names another unit.
///
/// The range-set is a `1#range-spec` list: empty elements are skipped, and
/// optional whitespace may sit on either side of each comma but not before the
/// first element (RFC 9110 section 5.6.1).
fn parse_range_set(value: &[u8]) -> Option<Vec<RangeSpec>> {
    let value = trim_ows(value);
    let equals = value.iter().position(|&byte| byte == b'=')?;
    let (unit, set) = (&value[..equals], &value[equals + 1..]);

    // Range unit names are case-insensitive (RFC 9110 section 14.1).
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    if set.first().is_some_and(|&byte| is_ows(byte)) {
        return None;
    }

    let mut specs = Vec::new();
    for element in set.split(|&byte| byte == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        specs.push(parse_range_spec(element)?);
    }

    if specs.is_empty() { None } else { Some(specs) }
}

/// Parses one `first-[last]` or `-length` element.
fn parse_range_spec(element: &[u8]) -> Option<RangeSpec> {
    if let Some(digits) = element.strip_prefix(b"-") {
        let length = parse_decimal(digits)?;
        return Some(RangeSpec::Suffix { length });
    }

    let dash = element.iter().position(|&byte| byte == b'-')?;
    let first = parse_decimal(&element[..dash])?;
    let after_dash = &element[dash + 1..];
    let last = if after_dash.is_empty() {
        None
    } else {
        Some(parse_decimal(after_dash)?)
    };

    // A last-pos below first-pos makes the int-range invalid (RFC 9110 section 14.1.1).
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(RangeSpec::FromTo { first, last })
}

/// Parses `1*DIGIT`, saturating at `u64::MAX`.
///
/// Saturation keeps the meaning of an oversized number: a first-pos beyond
/// any file is unsatisfiable, and a last-pos or suffix-length beyond the file
/// is clamped to it.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0u64, |value, &digit| {
        value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    });
    Some(value)
}

impl RangeSpec {
    /// Returns the span this spec selects in a file of `size` bytes, or `None`
    /// when it selects no byte.
    ///
    /// A zero-length file has no satisfiable spec here, even a non-zero suffix
    /// that RFC 9110 section 14.1.2 calls satisfiable, because Content-Range
    /// cannot describe an empty span.
    fn resolve(self, size: u64) -> Option<ByteSpan> {
        if size == 0 {
            return None;
        }
        match self {
            RangeSpec::FromTo { first, last } => {
                if first >= size {
                    return None;
                }
                let last = last.map_or(size - 1, |last| last.min(size - 1));
                Some(ByteSpan { first, last })
            }
            RangeSpec::Suffix { length } => {
                if length == 0 {
                    return None;
                }
                Some(ByteSpan {
                    first: size - length.min(size),
                    last: size - 1,
                })
            }
        }
    }
}

/// Merges overlapping and adjacent spans, keeping the request order.
///
/// Each merged span takes the position of the earliest span that fed it, as
/// RFC 9110 section 15.3.7.2 says parts SHOULD follow the order of the range-specs.
fn coalesce(spans: &[ByteSpan]) -> Vec<ByteSpan> {
    let mut by_offset: Vec<(usize, ByteSpan)> = spans.iter().copied().enumerate().collect();
    by_offset.sort_by_key(|&(_, span)| (span.first, span.last));

    // Each entry is (earliest request position, merged span). `last` is below
    // the file size, so `last + 1` cannot overflow.
    let mut merged: Vec<(usize, ByteSpan)> = Vec::with_capacity(by_offset.len());
    for (position, span) in by_offset {
        match merged.last_mut() {
            Some((earliest, current)) if span.first <= current.last + 1 => {
                current.last = current.last.max(span.last);
                *earliest = (*earliest).min(position);
            }
            _ => merged.push((position, span)),
        }
    }

    merged.sort_by_key(|&(earliest, _)| earliest);
    merged.into_iter().map(|(_, span)| span).collect()
}

fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    use RangeOutcome::{Excessive, Invalid, Multiple, Single, Unsatisfiable};

    fn span(first: u64, last: u64) -> ByteSpan {
        ByteSpan { first, last }
    }

    #[test]
    fn range_header_table() {
        let size = 1000;
        let cases: Vec<(&str, RangeOutcome)> = vec![
            // Probes and plain ranges.
            ("bytes=0-1", Single(span(0, 1))),
            ("bytes=0-0", Single(span(0, 0))),
            ("bytes=0-999", Single(span(0, 999))),
            ("bytes=999-999", Single(span(999, 999))),
            ("bytes=100-", Single(span(100, 999))),
            ("bytes=0-", Single(span(0, 999))),
            // Suffix ranges.
            ("bytes=-500", Single(span(500, 999))),
            ("bytes=-1", Single(span(999, 999))),
            ("bytes=-1000", Single(span(0, 999))),
            ("bytes=-5000", Single(span(0, 999))),
            ("bytes=-99999999999999999999999", Single(span(0, 999))),
            // End past EOF is clamped.
            ("bytes=900-5000", Single(span(900, 999))),
            ("bytes=0-99999999999999999999999", Single(span(0, 999))),
            // Unit name is case-insensitive.
            ("BYTES=0-1", Single(span(0, 1))),
            ("Bytes=0-1", Single(span(0, 1))),
            // Unsatisfiable.
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-1000", Unsatisfiable),
            ("bytes=5000-6000", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=-0,1000-", Unsatisfiable),
            // Unsatisfiable specs beside a satisfiable one are dropped.
            ("bytes=2000-,0-1", Single(span(0, 1))),
            ("bytes=-0,5-9", Single(span(5, 9))),
            // Whitespace around commas and empty list elements.
            ("bytes=0-1, 5-6", Multiple(vec![span(0, 1), span(5, 6)])),
            ("bytes=0-1 ,5-6", Multiple(vec![span(0, 1), span(5, 6)])),
            (
                "bytes=0-1 \t, \t5-6",
                Multiple(vec![span(0, 1), span(5, 6)]),
            ),
            ("bytes=0-1,,5-6,", Multiple(vec![span(0, 1), span(5, 6)])),
            ("bytes=,0-1", Single(span(0, 1))),
            // Surrounding whitespace of the whole field value is not part of it.
            ("  bytes=0-1  ", Single(span(0, 1))),
            // Multiple ranges keep the request order.
            (
                "bytes=500-599,0-99",
                Multiple(vec![span(500, 599), span(0, 99)]),
            ),
            (
                "bytes=-100,0-99",
                Multiple(vec![span(900, 999), span(0, 99)]),
            ),
            // Overlapping and adjacent ranges are coalesced.
            ("bytes=0-99,50-149", Single(span(0, 149))),
            ("bytes=0-99,100-199", Single(span(0, 199))),
            (
                "bytes=0-99,101-199",
                Multiple(vec![span(0, 99), span(101, 199)]),
            ),
            (
                "bytes=300-399,0-99,50-149",
                Multiple(vec![span(300, 399), span(0, 149)]),
            ),
            ("bytes=0-0,0-0,0-0", Single(span(0, 0))),
            // More bytes requested than the file contains.
            ("bytes=0-,0-", Excessive),
            ("bytes=0-599,400-", Excessive),
            ("bytes=-600,0-599", Excessive),
            // Invalid syntax or unknown unit.
            ("bytes=5-2", Invalid),
            ("bytes=abc", Invalid),
            ("bytes=0-1,abc", Invalid),
            ("bytes=0-1,5-2", Invalid),
            ("items=0-1", Invalid),
            ("byte=0-1", Invalid),
            ("", Invalid),
            ("bytes", Invalid),
            ("bytes=", Invalid),
            ("bytes=,", Invalid),
            ("bytes=-", Invalid),
            ("bytes=--1", Invalid),
            ("bytes=1-2-3", Invalid),
            ("bytes=+1-2", Invalid),
            ("bytes=0x10-", Invalid),
            ("bytes=1 -2", Invalid),
            ("bytes=1- 2", Invalid),
            ("bytes = 0-1", Invalid),
            ("bytes =0-1", Invalid),
            ("bytes= 0-1", Invalid),
            ("bytes=0-1;5-6", Invalid),
            ("bytes=1.5-2", Invalid),
            ("bytes=0-1 bytes=2-3", Invalid),
        ];

        for (value, expected) in cases {
            assert_eq!(
                resolve_range(value.as_bytes(), size),
                expected,
                "Range: {value:?}"
            );
        }
    }

    #[test]
    fn zero_length_file_is_unsatisfiable() {
        for value in [
            "bytes=0-",
            "bytes=0-0",
            "bytes=-1",
            "bytes=-100",
            "bytes=0-1,-5",
        ] {
            assert_eq!(
                resolve_range(value.as_bytes(), 0),
                Unsatisfiable,
                "Range: {value:?}"
            );
        }
        assert_eq!(resolve_range(b"bytes=5-2", 0), Invalid);
    }

    #[test]
    fn one_byte_file() {
        assert_eq!(resolve_range(b"bytes=0-1", 1), Single(span(0, 0)));
        assert_eq!(resolve_range(b"bytes=-1", 1), Single(span(0, 0)));
        assert_eq!(resolve_range(b"bytes=-2", 1), Single(span(0, 0)));
        assert_eq!(resolve_range(b"bytes=1-", 1), Unsatisfiable);
    }

    #[test]
    fn part_limit_applies_after_coalescing() {
        let disjoint = |count: u64| {
            let specs: Vec<String> = (0..count)
                .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
                .collect();
            format!("bytes={}", specs.join(","))
        };

        let sixteen = resolve_range(disjoint(16).as_bytes(), 1000);
        assert!(
            matches!(&sixteen, Multiple(spans) if spans.len() == 16),
            "{sixteen:?}"
        );
        assert_eq!(resolve_range(disjoint(17).as_bytes(), 1000), Excessive);

        // Forty adjacent one-byte ranges coalesce into one span.
        let adjacent: Vec<String> = (0..40).map(|i| format!("{i}-{i}")).collect();
        let adjacent = format!("bytes={}", adjacent.join(","));
        assert_eq!(
            resolve_range(adjacent.as_bytes(), 1000),
            Single(span(0, 39))
        );
    }

    #[test]
    fn range_fields_sent_twice_are_invalid() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("range", HeaderValue::from_static("bytes=0-1"));
        assert_eq!(
            resolve_range_fields(headers.get_all("range"), 10),
            Single(span(0, 1))
        );

        headers.append("range", HeaderValue::from_static("bytes=2-3"));
        assert_eq!(resolve_range_fields(headers.get_all("range"), 10), Invalid);
    }

    /// Deterministic xorshift64 generator, so a failing case can be replayed.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    /// Writes a random range-spec for a file of `size` bytes, reaching a little past its end.
    fn random_spec(random: &mut Xorshift, size: u64) -> String {
        let reach = size + 3;
        match random.below(3) {
            0 => {
                let first = random.below(reach);
                let last = first + random.below(reach);
                format!("{first}-{last}")
            }
            1 => format!("{}-", random.below(reach)),
            _ => format!("-{}", random.below(reach)),
        }
    }

    /// Marks the bytes each spec selects, straight from the RFC definitions.
    fn selected_bytes(specs: &[String], size: u64) -> Vec<bool> {
        let mut selected = vec![false; size as usize];
        for spec in specs {
            let (first, last) = match spec.split_once('-') {
                Some(("", length)) => {
                    let length: u64 = length.parse().unwrap();
                    (
                        size.saturating_sub(length),
                        if length == 0 { None } else { Some(size) },
                    )
                }
                Some((first, "")) => (first.parse().unwrap(), Some(size)),
                Some((first, last)) => (
                    first.parse().unwrap(),
                    Some(last.parse::<u64>().unwrap() + 1),
                ),
                None => unreachable!("random_spec always writes a dash"),
            };
            let Some(end) = last else { continue };
            for offset in first..end.min(size) {
                selected[offset as usize] = true;
            }
        }
        selected
    }

    #[test]
    fn random_ranges_stay_within_file() {
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);

        for _ in 0..20_000 {
            let size = random.below(64);
            let count = 1 + random.below(5) as usize;
            let specs: Vec<String> = (0..count).map(|_| random_spec(&mut random, size)).collect();
            let header = format!("bytes={}", specs.join(", "));

            let outcome = resolve_range(header.as_bytes(), size);
            let selected = selected_bytes(&specs, size);
            let requested = specs
                .iter()
                .filter_map(|spec| parse_range_spec(spec.as_bytes()).unwrap().resolve(size))
                .map(ByteSpan::len)
                .sum::<u64>();

            let spans = match outcome {
                Single(span) => vec![span],
                Multiple(spans) => spans,
                Unsatisfiable => {
                    assert!(
                        selected.iter().all(|&byte| !byte),
                        "{header} on {size} bytes selects a byte"
                    );
                    continue;
                }
                Excessive => {
                    assert!(
                        requested > size,
                        "{header} on {size} bytes requests {requested} bytes"
                    );
                    continue;
                }
                Invalid => panic!("{header} is valid"),
            };

            assert!(
                requested <= size,
                "{header} on {size} bytes requests {requested} bytes"
            );
            assert!(spans.len() <= MAX_PARTS, "{header}: {spans:?}");
            let mut covered = vec![false; size as usize];
            for span in &spans {
                assert!(span.first <= span.last, "{header}: {span:?}");
                assert!(span.last < size, "{header} on {size} bytes: {span:?}");
                for offset in span.first..=span.last {
                    assert!(
                        !covered[offset as usize],
                        "{header}: spans overlap in {spans:?}"
                    );
                    covered[offset as usize] = true;
                }
            }
            assert_eq!(covered, selected, "{header} on {size} bytes: {spans:?}");

            // Coalesced spans are neither overlapping nor adjacent.
            let mut sorted = spans.clone();
            sorted.sort_by_key(|span| span.first);
            for pair in sorted.windows(2) {
                assert!(
                    pair[0].last + 1 < pair[1].first,
                    "{header}: {spans:?} touch"
                );
            }
        }
    }

    #[test]
    fn random_large_sizes_clamp_to_file() {
        let mut random = Xorshift(0x2545_f491_4f6c_dd1d);

        for _ in 0..20_000 {
            let size = random.next() >> random.below(64);
            let first = random.next() >> random.below(64);
            let last = first.saturating_add(random.next() >> random.below(64));
            let header = format!("bytes={first}-{last}");

            match resolve_range(header.as_bytes(), size) {
                Single(span) => {
                    assert_eq!(span.first, first, "{header} on {size} bytes");
                    assert_eq!(span.last, last.min(size - 1), "{header} on {size} bytes");
                }
                Unsatisfiable => assert!(first >= size, "{header} on {size} bytes"),
                other => panic!("{header} on {size} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn coalesced_parts_follow_earliest_request_position() {
        let spans = [
            span(50, 59),
            span(0, 9),
            span(55, 70),
            span(10, 19),
            span(30, 39),
        ];
        assert_eq!(
            coalesce(&spans),
            vec![span(50, 70), span(0, 19), span(30, 39)]
        );
    }
}
