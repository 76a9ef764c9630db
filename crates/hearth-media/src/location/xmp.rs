//! Location properties of an XMP packet (RDF/XML), blanked with spaces.
//!
//! A property is a location property when its local name, the part after
//! the namespace prefix, starts with "GPS" (EXIF's `exif:GPSLatitude`, DJI's
//! `drone-dji:GpsLatitude`), contains "Latitude" or "Longitude", or is one of
//! [`LOCATION_NAMES`] (photoshop:City, Iptc4xmpCore:Location,
//! Iptc4xmpExt:LocationCreated and the like). The prefix is ignored, because
//! a packet may bind any prefix to a namespace. A location property written
//! as an attribute gets its value blanked; written as an element, it gets its
//! attribute values and its whole content blanked, nested elements included.
//! Markup outside those values is left alone, so the packet stays
//! well-formed XML with the same length.
//!
//! The scanner is not a validating parser: it recognises start tags, end
//! tags, comments, CDATA sections, processing instructions and declarations,
//! which is all an XMP packet contains. An element whose end tag is missing
//! is blanked to the end of `xml`, which is also what a property that
//! continues in the next chunk of an extended XMP packet needs.

use super::{LocationPatch, spaces};

/// Lowercase local names of properties that name a place, from the IPTC
/// Photo Metadata Standard 2023.1 (core and extension schemas) and Adobe's
/// photoshop namespace.
const LOCATION_NAMES: &[&[u8]] = &[
    b"city",
    b"state",
    b"country",
    b"countrycode",
    b"countryname",
    b"location",
    b"locationcreated",
    b"locationshown",
    b"locationid",
    b"locationname",
    b"sublocation",
    b"provincestate",
    b"worldregion",
    b"altitude",
];

/// Returns patches that blank the location properties of the packet `xml`,
/// whose first byte is at file offset `base`.
pub(super) fn location_patches(xml: &[u8], base: u64) -> Vec<LocationPatch> {
    let mut patches = Vec::new();
    let mut position = 0;

    while let Some(start) = find_byte(xml, position, b'<') {
        let rest = &xml[start..];
        position = if rest.starts_with(b"<?") {
            skip_past(xml, start, b"?>")
        } else if rest.starts_with(b"<!--") {
            skip_past(xml, start, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(xml, start, b"]]>")
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            skip_past(xml, start, b">")
        } else {
            let Some(tag) = StartTag::parse(xml, start) else {
                break;
            };
            blank_tag(xml, &tag, base, &mut patches)
        };
    }
    patches
}

/// One start tag or empty-element tag, as byte ranges of the packet.
struct StartTag {
    /// Qualified name, such as `exif:GPSLatitude`.
    name: (usize, usize),
    /// Qualified name and value (without quotes) of each attribute.
    attributes: Vec<((usize, usize), (usize, usize))>,
    /// Offset just past the closing `>`.
    end: usize,
    /// Whether the tag ends with `/>`.
    is_empty_element: bool,
}

impl StartTag {
    /// Parses the tag whose `<` is at `start`; `None` when it is cut off or malformed.
    fn parse(xml: &[u8], start: usize) -> Option<Self> {
        let name_start = start + 1;
        let name_end = scan_name(xml, name_start);
        if name_end == name_start {
            return None;
        }

        let mut attributes = Vec::new();
        let mut position = name_end;
        loop {
            position = skip_whitespace(xml, position);
            match xml.get(position)? {
                b'>' => {
                    return Some(Self {
                        name: (name_start, name_end),
                        attributes,
                        end: position + 1,
                        is_empty_element: false,
                    });
                }
                b'/' if xml.get(position + 1) == Some(&b'>') => {
                    return Some(Self {
                        name: (name_start, name_end),
                        attributes,
                        end: position + 2,
                        is_empty_element: true,
                    });
                }
                _ => {}
            }

            let attribute_start = position;
            let attribute_end = scan_name(xml, attribute_start);
            if attribute_end == attribute_start {
                return None;
            }
            position = skip_whitespace(xml, attribute_end);
            if xml.get(position) != Some(&b'=') {
                return None;
            }
            position = skip_whitespace(xml, position + 1);
            let quote = *xml.get(position)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = position + 1;
            let value_end = find_byte(xml, value_start, quote)?;
            attributes.push(((attribute_start, attribute_end), (value_start, value_end)));
            position = value_end + 1;
        }
    }
}

/// Blanks the location values of one start tag and, for a location element,
/// its content. Returns the offset where scanning continues.
fn blank_tag(xml: &[u8], tag: &StartTag, base: u64, patches: &mut Vec<LocationPatch>) -> usize {
    let element_is_location = is_location_name(local_name(&xml[tag.name.0..tag.name.1]));

    for &((name_start, name_end), (value_start, value_end)) in &tag.attributes {
        let name = &xml[name_start..name_end];
        let blank = if element_is_location {
            // Namespace declarations and rdf:parseType keep the markup valid RDF.
            !name.starts_with(b"xmlns") && local_name(name) != b"parseType"
        } else {
            is_location_name(local_name(name))
        };
        if blank && value_end > value_start {
            patches.push(spaces(base + value_start as u64, value_end - value_start));
        }
    }

    if !element_is_location || tag.is_empty_element {
        return tag.end;
    }
    let content_end = matching_end_tag(xml, tag).unwrap_or(xml.len());
    if content_end > tag.end {
        patches.push(spaces(base + tag.end as u64, content_end - tag.end));
    }
    content_end
}

/// Finds the `</name` that closes `tag`, counting nested elements of the same name.
fn matching_end_tag(xml: &[u8], tag: &StartTag) -> Option<usize> {
    let name = &xml[tag.name.0..tag.name.1];
    let mut depth = 1usize;
    let mut position = tag.end;

    while let Some(start) = find_byte(xml, position, b'<') {
        let rest = &xml[start..];
        if rest.starts_with(b"<!--") {
            position = skip_past(xml, start, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            position = skip_past(xml, start, b"]]>");
        } else if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            position = skip_past(xml, start, b">");
        } else if let Some(after_slash) = rest.strip_prefix(b"</") {
            if after_slash.starts_with(name) && !is_name_byte(after_slash.get(name.len())) {
                depth -= 1;
                if depth == 0 {
                    return Some(start);
                }
            }
            position = skip_past(xml, start, b">");
        } else {
            let inner = StartTag::parse(xml, start)?;
            if &xml[inner.name.0..inner.name.1] == name && !inner.is_empty_element {
                depth += 1;
            }
            position = inner.end;
        }
    }
    None
}

/// Checks whether a local name is a location property (see the module documentation).
fn is_location_name(local: &[u8]) -> bool {
    let lower = local.to_ascii_lowercase();
    lower.starts_with(b"gps")
        || contains(&lower, b"latitude")
        || contains(&lower, b"longitude")
        || LOCATION_NAMES.contains(&lower.as_slice())
}

/// Returns the part of a qualified name after its prefix.
fn local_name(qualified: &[u8]) -> &[u8] {
    match qualified.iter().rposition(|&byte| byte == b':') {
        Some(colon) => &qualified[colon + 1..],
        None => qualified,
    }
}

/// Returns the end of the name that starts at `start`.
fn scan_name(xml: &[u8], start: usize) -> usize {
    let mut end = start;
    while is_name_byte(xml.get(end)) {
        end += 1;
    }
    end
}

/// Checks whether a byte may be part of an XML name; non-ASCII bytes may.
fn is_name_byte(byte: Option<&u8>) -> bool {
    byte.is_some_and(|&byte| {
        byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'_' | b'-' | b'.') || byte >= 0x80
    })
}

fn skip_whitespace(xml: &[u8], mut position: usize) -> usize {
    while xml.get(position).is_some_and(u8::is_ascii_whitespace) {
        position += 1;
    }
    position
}

/// Returns the offset just past the first `terminator` after `start`, or the end of `xml`.
fn skip_past(xml: &[u8], start: usize, terminator: &[u8]) -> usize {
    xml[start..]
        .windows(terminator.len())
        .position(|window| window == terminator)
        .map_or(xml.len(), |found| start + found + terminator.len())
}

fn find_byte(xml: &[u8], from: usize, wanted: u8) -> Option<usize> {
    xml.get(from..)?
        .iter()
        .position(|&byte| byte == wanted)
        .map(|found| from + found)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// XMP fixtures shared by the tests of the containers that carry XMP.
#[cfg(test)]
pub(super) mod fixtures {
    /// An XMP packet with GPS attributes, a city element, a location
    /// structure and properties that must stay.
    pub(crate) const PACKET: &str = r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    exif:GPSLatitude="15,50.1353S" exif:GPSLongitude='48,0.9473W'
    tiff:Orientation="6">
   <photoshop:City>Brasília</photoshop:City>
   <Iptc4xmpExt:LocationCreated rdf:parseType="Resource">
    <Iptc4xmpExt:Sublocation>Lago Sul</Iptc4xmpExt:Sublocation>
    <!-- a comment with <markup> -->
   </Iptc4xmpExt:LocationCreated>
   <exif:GPSAltitude/>
   <tiff:Make>Phone</tiff:Make>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#;

    /// Text of [`PACKET`] that reveals the place.
    pub(crate) const SECRETS: [&str; 4] = ["15,50", "48,0", "Bras", "Lago Sul"];
}

#[cfg(test)]
mod tests {
    use super::fixtures::{PACKET, SECRETS};
    use super::*;
    use crate::location::patched_copy;

    fn blank(xml: &str) -> String {
        let patches = location_patches(xml.as_bytes(), 0);
        String::from_utf8(patched_copy(xml.as_bytes(), &patches)).unwrap()
    }

    #[test]
    fn packet_keeps_markup_and_loses_place() {
        let blanked = blank(PACKET);

        assert_eq!(blanked.len(), PACKET.len());
        for secret in SECRETS {
            assert!(
                !blanked.contains(secret),
                "{secret} is still in:\n{blanked}"
            );
        }
        for kept in [
            r#"tiff:Orientation="6""#,
            "<tiff:Make>Phone</tiff:Make>",
            r#"<Iptc4xmpExt:LocationCreated rdf:parseType="Resource">"#,
            "</Iptc4xmpExt:LocationCreated>",
            r#"exif:GPSLatitude="           ""#,
            "<photoshop:City>         </photoshop:City>",
            "<exif:GPSAltitude/>",
            r#"<?xpacket end="w"?>"#,
        ] {
            assert!(blanked.contains(kept), "{kept} is missing from:\n{blanked}");
        }
    }

    #[test]
    fn nested_element_of_same_name_is_blanked_whole() {
        let blanked = blank("<a:City><a:City>x</a:City>y</a:City><b>z</b>");

        assert_eq!(blanked, "<a:City>                   </a:City><b>z</b>");
    }

    #[test]
    fn element_cut_off_is_blanked_to_the_end() {
        let blanked = blank("<r><exif:GPSLatitude>15,50.13");

        assert_eq!(blanked, "<r><exif:GPSLatitude>        ");
    }

    #[test]
    fn value_with_markup_characters_is_blanked() {
        let blanked = blank(r#"<d exif:GPSAreaInformation="a>b'c" other="x>y"/>"#);

        assert_eq!(
            blanked,
            r#"<d exif:GPSAreaInformation="     " other="x>y"/>"#
        );
    }

    #[test]
    fn malformed_tag_stops_the_scan_without_panic() {
        for xml in ["<", "<a b", "<a b=", "<a b=\"x", "<a =\"x\">", "</", "<!--"] {
            let _ = location_patches(xml.as_bytes(), 0);
        }
    }

    #[test]
    fn unrelated_names_are_kept() {
        let xml =
            r#"<d xmpMM:InstanceID="x" dc:format="image/jpeg"><dc:creator>Ann</dc:creator></d>"#;

        assert_eq!(blank(xml), xml);
    }
}
