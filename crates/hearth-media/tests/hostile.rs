//! Files that are empty, cut short, mislabelled, unreadable or not files at all.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TIMEOUT, ffmpeg, sample};
use hearth_media::{MediaError, MediaKind, probe, thumbnail};

/// Asserts that the message users see names the file.
fn assert_names_path(error: &MediaError, path: &Path) {
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
}

fn copy_prefix(source: &Path, target: &Path, len: usize) {
    let bytes = fs::read(source).unwrap();
    fs::write(target, &bytes[..len]).unwrap();
}

#[test]
fn zero_byte_mp4_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp4");
    fs::write(&path, b"").unwrap();

    let error = probe(&path, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Empty { .. }), "{error:?}");
    assert_names_path(&error, &path);
}

#[test]
fn truncated_mkv_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.mkv");
    let source = sample("movie2/movie-hello.mp4");
    ffmpeg(&[
        OsStr::new("-i"),
        source.as_os_str(),
        OsStr::new("-c"),
        OsStr::new("copy"),
        full.as_os_str(),
    ]);

    // The complete remux probes fine, so the failures below come from the cut.
    let complete = probe(&full, TIMEOUT).unwrap();
    assert_eq!(complete.kind, MediaKind::Video);
    assert_eq!(complete.container.as_deref(), Some("Matroska"));

    // 4 KiB keeps the header (and its duration) but none of the frames;
    // 100 KB keeps a few frames.
    for len in [4096, 100_000] {
        let cut = dir.path().join(format!("cut-{len}.mkv"));
        copy_prefix(&full, &cut, len);
        let error = probe(&cut, TIMEOUT).unwrap_err();
        match &error {
            MediaError::Corrupt { reason, .. } => assert!(reason.contains("cut off"), "{reason}"),
            other => panic!("{len} bytes: expected Corrupt, got {other:?}"),
        }
        assert_names_path(&error, &cut);
    }
}

#[test]
fn truncated_mp4_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.mp4");
    copy_prefix(&sample("movie2/movie-hello.mp4"), &cut, 4096);

    let error = probe(&cut, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
}

#[test]
fn truncated_wav_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.wav");
    copy_prefix(&sample("audio1/debian.wav"), &cut, 20_000);

    let error = probe(&cut, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
}

#[test]
fn mp4_magic_followed_by_noise_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.mp4");
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    // A fixed linear congruential sequence, so every run writes the same bytes.
    let mut state: u32 = 12345;
    for _ in 0..20_000 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((state >> 16) as u8);
    }
    fs::write(&path, bytes).unwrap();

    let error = probe(&path, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
}

#[test]
fn truncated_jpeg_header_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.jpg");
    copy_prefix(&sample("pic1/debian_logo.jpg"), &cut, 300);

    let error = probe(&cut, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
    assert_names_path(&error, &cut);
}

#[test]
fn text_renamed_mp4_is_not_media() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.mp4");
    fs::write(&path, "shopping list: milk, eggs, bread\n").unwrap();

    let error = probe(&path, TIMEOUT).unwrap_err();
    match &error {
        MediaError::NotMedia { detected, .. } => assert_eq!(detected, &None),
        other => panic!("expected NotMedia, got {other:?}"),
    }
    assert_names_path(&error, &path);
}

#[test]
fn subtitle_files_are_not_media() {
    // Subtitles sit next to films in most libraries. GStreamer's typefinders
    // recognise WebVTT, which must still not count as a damaged video.
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("film.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n"),
        ("film.srt", "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n"),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        let error = probe(&path, TIMEOUT).unwrap_err();
        assert!(
            matches!(error, MediaError::NotMedia { .. }),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn pdf_is_not_media() {
    for relative in ["text1/a-text.pdf", "text2/d-text.pdf"] {
        let path = sample(relative);
        let error = probe(&path, TIMEOUT).unwrap_err();
        match &error {
            MediaError::NotMedia { detected, .. } => {
                assert_eq!(detected.as_deref(), Some("application/pdf"), "{relative}")
            }
            other => panic!("{relative}: expected NotMedia, got {other:?}"),
        }
    }
}

#[test]
fn office_document_is_not_media() {
    let error = probe(&sample("text1/a-text.odt"), TIMEOUT).unwrap_err();
    assert!(
        matches!(
            error,
            MediaError::NotMedia {
                detected: Some(_),
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn directory_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("looks-like.mp4");
    fs::create_dir(&path).unwrap();

    let error = probe(&path, TIMEOUT).unwrap_err();
    match &error {
        MediaError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::IsADirectory),
        other => panic!("expected Io, got {other:?}"),
    }
    assert_names_path(&error, &path);
}

#[test]
fn vanished_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.mp4");
    fs::copy(sample("movie2/movie-hello.mp4"), &path).unwrap();
    fs::remove_file(&path).unwrap();

    let error = probe(&path, TIMEOUT).unwrap_err();
    match &error {
        MediaError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::NotFound),
        other => panic!("expected Io, got {other:?}"),
    }
    assert_names_path(&error, &path);
}

#[test]
fn thumbnail_of_vanished_video_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.mp4");
    fs::copy(sample("movie2/movie-hello.mp4"), &path).unwrap();
    let probed = probe(&path, TIMEOUT).unwrap();
    fs::remove_file(&path).unwrap();

    let error = thumbnail(&path, &probed, 160, TIMEOUT).unwrap_err();
    match &error {
        MediaError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::NotFound),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn unreadable_file_is_io_error_unless_root() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.mp3");
    fs::copy(sample("audio1/debian.mp3"), &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();

    let result = probe(&path, TIMEOUT);
    // Root ignores file modes, so there the probe must simply succeed;
    // `vanished_file_is_io_error` covers an unreadable path for root too.
    if fs::File::open(&path).is_ok() {
        assert_eq!(result.unwrap().kind, MediaKind::Audio);
    } else {
        match result {
            Err(MediaError::Io { source, .. }) => {
                assert_eq!(source.kind(), ErrorKind::PermissionDenied)
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }
}

#[test]
fn fifo_is_rejected_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.mp4");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());

    let started = Instant::now();
    let error = probe(&path, TIMEOUT).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &error {
        MediaError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::InvalidInput),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn non_utf8_name_probes_and_thumbnails() {
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    // 0x85 alone is not valid UTF-8 (it is "…" in Windows-1252).
    let path = dir.path().join(OsStr::from_bytes(b"movie-\x85.ogg"));
    fs::copy(sample("movie2/movie-hello.ogg"), &path).unwrap();

    let probed = probe(&path, TIMEOUT).unwrap();
    assert_eq!(probed.kind, MediaKind::Video);
    let jpeg = thumbnail(&path, &probed, 160, TIMEOUT).unwrap();
    assert!(image::load_from_memory(&jpeg).is_ok());
}

#[test]
fn relative_path_probes() {
    // GStreamer needs an absolute URI; relative paths are resolved first.
    let dir = tempfile::tempdir().unwrap();
    fs::copy(sample("audio1/debian.ogg"), dir.path().join("tone.ogg")).unwrap();
    let relative = pathdiff_from_cwd(&dir.path().join("tone.ogg"));

    let probed = probe(&relative, TIMEOUT).unwrap();
    assert_eq!(probed.kind, MediaKind::Audio);
}

/// Builds a path to `target` relative to the current directory through "..".
fn pathdiff_from_cwd(target: &Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let mut relative = std::path::PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.join(target.strip_prefix("/").unwrap())
}

#[test]
fn huge_declared_image_gets_no_thumbnail() {
    // A 60000x60000 PNG without pixel data: the probe reports the
    // declared size, and decoding stops at the 512 MiB allocation limit
    // instead of reserving 10.8 GB.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    fs::write(&path, png_header_only(60_000, 60_000)).unwrap();

    let probed = probe(&path, TIMEOUT).unwrap();
    let info = probed.image.as_ref().unwrap();
    assert_eq!((info.width, info.height), (60_000, 60_000));

    let error = thumbnail(&path, &probed, 160, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::NoThumbnail { .. }), "{error:?}");
    assert_names_path(&error, &path);
}

/// Builds a PNG (8-bit RGB) whose chunks declare `width`x`height` but hold no pixels.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());

    // A short IDAT holding only a zlib header, so readers find where the
    // pixel data would start, then IEND.
    for chunk in [&b"IDAT\x78\x9c"[..], &b"IEND"[..]] {
        png.extend_from_slice(&((chunk.len() - 4) as u32).to_be_bytes());
        png.extend_from_slice(chunk);
        png.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    png
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}
