//! A member token never receives where a photo or video was made: the
//! stream of a running server is checked with kamadak-exif (through
//! `hearth_media::probe`) and ffprobe, while the admin token gets the
//! original bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{SAMPLES, Server, require_samples};
use hearth_media::{LocationPatch, location_patches};
use hearth_pqc::KeyExchangePolicy;
use reqwest::blocking::{Client, Response};
use reqwest::header::{ETAG, IF_RANGE, RANGE};

/// Phone photo with GPS 15°50'8" S 48°0'56.8" W in its EXIF.
const GPS_PHOTO: &str = "pic1/IMG_20200827_231612.jpg";

/// Phone video with "-15.8355-048.0153/" in its `©xyz` box.
const GPS_VIDEO: &str = "movie1/VID_20191220_170832.mp4";

/// Limit of one probe of a downloaded file; a run takes well under a second.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// A server whose library contains the GPS photo and the phone video.
struct Library {
    server: Server,
    client: Client,
    photo_id: String,
    video_id: String,
    /// Folder for downloaded files, kept alive with the library.
    downloads: tempfile::TempDir,
    _library: tempfile::TempDir,
}

impl Library {
    fn start() -> Self {
        require_samples();
        let library = tempfile::tempdir().unwrap();
        std::fs::copy(Path::new(SAMPLES).join(GPS_PHOTO), library.path().join("walk.jpg")).unwrap();
        std::fs::copy(Path::new(SAMPLES).join(GPS_VIDEO), library.path().join("clip.mp4")).unwrap();
        let server = Server::start(&[library.path()]);
        server.wait_for_scan();

        let items = server.items();
        let id_of = |kind: &str| {
            let item = items.iter().find(|item| item["kind"] == kind).unwrap_or_else(|| panic!("no {kind} item in {items:?}"));
            item["id"].as_str().unwrap().to_owned()
        };
        let photo_id = id_of("image");
        let video_id = id_of("video");
        let client = server.client(KeyExchangePolicy::HybridPreferred);
        Self { server, client, photo_id, video_id, downloads: tempfile::tempdir().unwrap(), _library: library }
    }

    /// Sends GET `/api/v1/items/{id}/{what}` with `token` and extra headers.
    fn get(&self, id: &str, what: &str, token: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> Response {
        let mut request = self.client.get(self.server.url(&format!("/api/v1/items/{id}/{what}"))).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        request.send().expect("request")
    }

    /// Downloads the whole stream of `id` with `token` into a file named `name`.
    fn download(&self, id: &str, token: &str, name: &str) -> (Vec<u8>, PathBuf) {
        let response = self.get(id, "stream", token, &[]);
        assert_eq!(response.status(), 200, "stream of {name}");
        let bytes = response.bytes().unwrap().to_vec();
        let path = self.downloads.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        (bytes, path)
    }
}

fn original(relative: &str) -> Vec<u8> {
    std::fs::read(Path::new(SAMPLES).join(relative)).unwrap()
}

fn original_patches(relative: &str) -> Vec<LocationPatch> {
    location_patches(&Path::new(SAMPLES).join(relative)).unwrap()
}

/// Reads the EXIF of a downloaded picture with `hearth_media::probe`, which uses kamadak-exif.
fn exif_of(path: &Path) -> Option<hearth_media::Exif> {
    let probed = hearth_media::probe(path, PROBE_LIMIT).unwrap_or_else(|error| panic!("{error}"));
    probed.image.expect("the download is an image").exif
}

/// Runs `ffprobe -show_format -show_streams` on a file and returns its JSON.
fn ffprobe(path: &Path) -> serde_json::Value {
    let mut command = Command::new("ffprobe");
    command.args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"]).arg(path);
    let output = common::output_within(&mut command, PROBE_LIMIT, "ffprobe (apt-get install ffmpeg)");
    assert!(output.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("ffprobe JSON output")
}

/// Names of the format and stream tags that mention a location.
fn location_tags(probe: &serde_json::Value) -> Vec<String> {
    let streams = probe["streams"].as_array().into_iter().flatten().map(|stream| &stream["tags"]);
    std::iter::once(&probe["format"]["tags"])
        .chain(streams)
        .filter_map(serde_json::Value::as_object)
        .flat_map(|tags| tags.keys())
        .filter(|name| name.to_ascii_lowercase().contains("location"))
        .cloned()
        .collect()
}

#[test]
fn member_photo_has_no_gps() {
    let library = Library::start();
    let original_bytes = original(GPS_PHOTO);
    let original_exif = exif_of(&Path::new(SAMPLES).join(GPS_PHOTO)).expect("the sample has EXIF");
    assert!(original_exif.gps.is_some(), "the sample has a GPS position");

    let (bytes, path) = library.download(&library.photo_id, &library.server.member_token, "member.jpg");

    assert_eq!(bytes.len(), original_bytes.len());
    assert_ne!(bytes, original_bytes);
    let exif = exif_of(&path).expect("the rest of the EXIF stays");
    assert_eq!(exif.gps, None);
    assert_eq!(exif.orientation, original_exif.orientation);
    assert_eq!(exif.camera_model, original_exif.camera_model);
    let original_pixels = image::load_from_memory(&original_bytes).unwrap().to_rgb8();
    let member_pixels = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert!(member_pixels == original_pixels, "the member's picture differs");
}

#[test]
fn member_video_has_no_location_tag() {
    let library = Library::start();
    let original_probe = ffprobe(&Path::new(SAMPLES).join(GPS_VIDEO));
    assert!(!location_tags(&original_probe).is_empty(), "the sample has a location tag");

    let (bytes, path) = library.download(&library.video_id, &library.server.member_token, "member.mp4");

    assert_eq!(bytes.len(), original(GPS_VIDEO).len());
    let probe = ffprobe(&path);
    assert_eq!(location_tags(&probe), Vec::<String>::new());
    assert_eq!(probe["format"]["duration"], original_probe["format"]["duration"]);
    assert_eq!(probe["streams"].as_array().map(Vec::len), original_probe["streams"].as_array().map(Vec::len));
}

#[test]
fn admin_stream_is_the_original() {
    let library = Library::start();

    let (photo, _) = library.download(&library.photo_id, &library.server.admin_token, "admin.jpg");
    let (video, _) = library.download(&library.video_id, &library.server.admin_token, "admin.mp4");

    assert!(photo == original(GPS_PHOTO), "the admin's photo differs from the file");
    assert!(video == original(GPS_VIDEO), "the admin's video differs from the file");
}

#[test]
fn member_range_inside_gps_region_is_patched() {
    let library = Library::start();
    let original_bytes = original(GPS_PHOTO);
    let patches = original_patches(GPS_PHOTO);
    // The patch of the GPS IFD: the one that is not all zeros in the original.
    let gps = patches
        .iter()
        .find(|patch| {
            let start = patch.offset as usize;
            original_bytes[start..start + patch.bytes.len()] != patch.bytes[..]
        })
        .expect("a patch changes the photo");
    let first = gps.offset as usize;
    let last = first + gps.bytes.len() - 1;
    // A range that starts inside the patch and ends after it.
    let range = format!("bytes={}-{}", first + 1, last + 16);

    let member = library.get(&library.photo_id, "stream", &library.server.member_token, &[(RANGE, &range)]);
    let member_etag = member.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(member.status(), 206);
    let member_body = member.bytes().unwrap();
    let admin = library.get(&library.photo_id, "stream", &library.server.admin_token, &[(RANGE, &range)]);
    let admin_etag = admin.headers()[ETAG].to_str().unwrap().to_owned();
    let admin_body = admin.bytes().unwrap();

    let mut expected = original_bytes.clone();
    for patch in &patches {
        let start = patch.offset as usize;
        expected[start..start + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
    assert!(member_body[..] == expected[first + 1..=last + 16], "member range differs from the patched copy");
    assert!(admin_body[..] == original_bytes[first + 1..=last + 16], "admin range differs from the file");
    assert_ne!(member_etag, admin_etag);
    assert!(member_etag.ends_with("-r\""), "member ETag {member_etag}");

    // A member who presents the admin's validator gets the whole patched file.
    let mixed = library.get(&library.photo_id, "stream", &library.server.member_token, &[(RANGE, &range), (IF_RANGE, &admin_etag)]);
    assert_eq!(mixed.status(), 200);
    assert!(mixed.bytes().unwrap()[..] == expected[..], "If-Range fallback is not the patched file");
}

#[test]
fn member_thumbnail_has_no_exif() {
    let library = Library::start();

    let response = library.get(&library.photo_id, "thumbnail", &library.server.member_token, &[]);

    assert_eq!(response.status(), 200);
    let thumbnail = response.bytes().unwrap();
    let segments = app_segments(&thumbnail);
    assert!(!segments.is_empty() || thumbnail.starts_with(&[0xFF, 0xD8]), "the thumbnail is a JPEG");
    for (marker, payload) in segments {
        assert!(!payload.starts_with(b"Exif\0\0"), "APP{} holds EXIF", marker - 0xE0);
        assert!(!payload.starts_with(b"http://ns.adobe.com/xap/1.0/"), "APP{} holds XMP", marker - 0xE0);
    }
    let path = library.downloads.path().join("thumbnail.jpg");
    std::fs::write(&path, &thumbnail).unwrap();
    assert_eq!(exif_of(&path), None);
}

/// Returns the marker and payload of every APPn segment before the image data of a JPEG.
fn app_segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let mut segments = Vec::new();
    let mut offset = 2;
    while offset + 4 <= jpeg.len() && jpeg[offset] == 0xFF {
        let marker = jpeg[offset + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[offset + 2], jpeg[offset + 3]]));
        let payload = &jpeg[offset + 4..(offset + 2 + length).min(jpeg.len())];
        if (0xE0..=0xEF).contains(&marker) {
            segments.push((marker, payload));
        }
        offset += 2 + length;
    }
    segments
}
