//! A member never receives where a photo or video was made. A member is a
//! device signed in for any role but admin, and the rule covers the signed
//! item routes and the media grants issued in its session. The stream of a
//! running server is checked with kamadak-exif (through
//! `hearth_media::probe`) and ffprobe, while an admin device gets the
//! original bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::device::TestDevice;
use common::{SAMPLES, Server, require_samples};
use hearth_media::{LocationPatch, location_patches};
use hearth_pqc::KeyExchangePolicy;
use reqwest::Method;
use reqwest::blocking::{Client, Response};
use reqwest::header::{ETAG, IF_RANGE, RANGE};

/// Phone photo with GPS 15°50'8" S 48°0'56.8" W in its EXIF.
const GPS_PHOTO: &str = "pic1/IMG_20200827_231612.jpg";

/// Phone video with "-15.8355-048.0153/" in its `©xyz` box.
const GPS_VIDEO: &str = "movie1/VID_20191220_170832.mp4";

/// Limit of one probe of a downloaded file; a run takes well under a second.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// A server whose library contains the GPS photo and the phone video, with
/// a signed-in admin device and a signed-in adult device.
struct Library {
    server: Server,
    admin: TestDevice,
    adult: TestDevice,
    /// A client without a session, for grant URLs as a media element uses them.
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
        let admin = server.admin_device();
        let adult = server.adult_device();
        admin.wait_for_scan(&server);

        let items = admin.items();
        let id_of = |kind: &str| {
            let item = items.iter().find(|item| item["kind"] == kind).unwrap_or_else(|| panic!("no {kind} item in {items:?}"));
            item["id"].as_str().unwrap().to_owned()
        };
        let photo_id = id_of("image");
        let video_id = id_of("video");
        let client = server.client(KeyExchangePolicy::HybridPreferred);
        Self { server, admin, adult, client, photo_id, video_id, downloads: tempfile::tempdir().unwrap(), _library: library }
    }

    /// Sends GET `/api/v1/items/{id}/{what}`, signed by `device`, with extra headers.
    fn get(&self, device: &TestDevice, id: &str, what: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> Response {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), *value)).collect();
        device.request_with_headers(Method::GET, &format!("/api/v1/items/{id}/{what}"), None, &headers)
    }

    /// Requests a grant on `id` in `device`'s session, then sends GET to its
    /// `url_field` (`stream_url` or `thumbnail_url`) without a session, as
    /// a media element does.
    fn get_granted(&self, device: &TestDevice, id: &str, url_field: &str) -> Response {
        let grant = device.grant(id);
        let path = grant[url_field].as_str().unwrap_or_else(|| panic!("grant without {url_field}: {grant}"));
        self.client.get(self.server.url(path)).send().expect("request")
    }

    /// Downloads the whole stream of `id`, signed by `device`, into a file named `name`.
    fn download(&self, device: &TestDevice, id: &str, name: &str) -> (Vec<u8>, PathBuf) {
        let response = self.get(device, id, "stream", &[]);
        self.save(response, name)
    }

    /// Downloads the whole stream of `id` through a grant issued in
    /// `device`'s session into a file named `name`.
    fn download_granted(&self, device: &TestDevice, id: &str, name: &str) -> (Vec<u8>, PathBuf) {
        let response = self.get_granted(device, id, "stream_url");
        self.save(response, name)
    }

    fn save(&self, response: Response, name: &str) -> (Vec<u8>, PathBuf) {
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

    let (bytes, path) = library.download(&library.adult, &library.photo_id, "member.jpg");

    assert_photo_without_gps(&bytes, &path);
}

#[test]
fn member_video_has_no_location_tag() {
    let library = Library::start();

    let (bytes, path) = library.download(&library.adult, &library.video_id, "member.mp4");

    assert_video_without_location(&bytes, &path);
}

#[test]
fn member_grant_streams_have_no_location() {
    let library = Library::start();

    let (photo, photo_path) = library.download_granted(&library.adult, &library.photo_id, "member-grant.jpg");
    let (video, video_path) = library.download_granted(&library.adult, &library.video_id, "member-grant.mp4");

    assert_photo_without_gps(&photo, &photo_path);
    assert_video_without_location(&video, &video_path);
}

#[test]
fn admin_stream_is_the_original() {
    let library = Library::start();

    let (photo, _) = library.download(&library.admin, &library.photo_id, "admin.jpg");
    let (video, _) = library.download(&library.admin, &library.video_id, "admin.mp4");
    let (granted_photo, _) = library.download_granted(&library.admin, &library.photo_id, "admin-grant.jpg");
    let (granted_video, _) = library.download_granted(&library.admin, &library.video_id, "admin-grant.mp4");

    assert!(photo == original(GPS_PHOTO), "the admin's photo differs from the file");
    assert!(video == original(GPS_VIDEO), "the admin's video differs from the file");
    assert!(granted_photo == original(GPS_PHOTO), "the photo of the admin's grant differs from the file");
    assert!(granted_video == original(GPS_VIDEO), "the video of the admin's grant differs from the file");
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

    let member = library.get(&library.adult, &library.photo_id, "stream", &[(RANGE, &range)]);
    let member_etag = member.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(member.status(), 206);
    let member_body = member.bytes().unwrap();
    let admin = library.get(&library.admin, &library.photo_id, "stream", &[(RANGE, &range)]);
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
    let mixed = library.get(&library.adult, &library.photo_id, "stream", &[(RANGE, &range), (IF_RANGE, &admin_etag)]);
    assert_eq!(mixed.status(), 200);
    assert!(mixed.bytes().unwrap()[..] == expected[..], "If-Range fallback is not the patched file");
}

#[test]
fn member_thumbnail_has_no_exif() {
    let library = Library::start();

    let signed = library.get(&library.adult, &library.photo_id, "thumbnail", &[]);
    let granted = library.get_granted(&library.adult, &library.photo_id, "thumbnail_url");

    for (name, response) in [("thumbnail.jpg", signed), ("granted-thumbnail.jpg", granted)] {
        assert_eq!(response.status(), 200, "{name}");
        let thumbnail = response.bytes().unwrap();
        let segments = app_segments(&thumbnail);
        assert!(!segments.is_empty() || thumbnail.starts_with(&[0xFF, 0xD8]), "{name} is a JPEG");
        for (marker, payload) in segments {
            assert!(!payload.starts_with(b"Exif\0\0"), "{name}: APP{} holds EXIF", marker - 0xE0);
            assert!(!payload.starts_with(b"http://ns.adobe.com/xap/1.0/"), "{name}: APP{} holds XMP", marker - 0xE0);
        }
        let path = library.downloads.path().join(name);
        std::fs::write(&path, &thumbnail).unwrap();
        assert_eq!(exif_of(&path), None, "{name}");
    }
}

/// Asserts that a member's download of [`GPS_PHOTO`] is the photo with its
/// GPS position blanked: same size, same pixels, the rest of the EXIF kept.
fn assert_photo_without_gps(bytes: &[u8], path: &Path) {
    let original_bytes = original(GPS_PHOTO);
    let original_exif = exif_of(&Path::new(SAMPLES).join(GPS_PHOTO)).expect("the sample has EXIF");
    assert!(original_exif.gps.is_some(), "the sample has a GPS position");

    assert_eq!(bytes.len(), original_bytes.len());
    assert_ne!(bytes, original_bytes);
    let exif = exif_of(path).expect("the rest of the EXIF stays");
    assert_eq!(exif.gps, None);
    assert_eq!(exif.orientation, original_exif.orientation);
    assert_eq!(exif.camera_model, original_exif.camera_model);
    let original_pixels = image::load_from_memory(&original_bytes).unwrap().to_rgb8();
    let member_pixels = image::load_from_memory(bytes).unwrap().to_rgb8();
    assert!(member_pixels == original_pixels, "the member's picture differs");
}

/// Asserts that a member's download of [`GPS_VIDEO`] has no location tag
/// left and otherwise probes like the original.
fn assert_video_without_location(bytes: &[u8], path: &Path) {
    let original_probe = ffprobe(&Path::new(SAMPLES).join(GPS_VIDEO));
    assert!(!location_tags(&original_probe).is_empty(), "the sample has a location tag");

    assert_eq!(bytes.len(), original(GPS_VIDEO).len());
    let probe = ffprobe(path);
    assert_eq!(location_tags(&probe), Vec::<String>::new());
    assert_eq!(probe["format"]["duration"], original_probe["format"]["duration"]);
    assert_eq!(probe["streams"].as_array().map(Vec::len), original_probe["streams"].as_array().map(Vec::len));
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
