//! Starts the desktop app under Xvfb with a new data folder and the Debian
//! sample library, and checks that its window shows the library. The app's
//! `--self-check` reports what the page rendered, and `xwd` photographs the
//! screen before the app exits.
//!
//! Needs `scripts/install-deps --desktop` (Xvfb, xwd), the sample media
//! (`forensics-samples-files`) and a built UI (`npm run build` in ui/).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian sample library the server tests use too.
const SAMPLES: &str = "/usr/share/forensics-samples/original-files";

/// An item of the sample library (movie2/movie-hello.*).
const EXPECTED_TITLE: &str = "movie-hello";

/// Seconds the app's self-check waits for the title.
const CHECK_TIMEOUT_SECS: u64 = 90;

#[test]
fn window_shows_the_sample_library() {
    assert!(Path::new(SAMPLES).is_dir(), "{SAMPLES} is missing: install forensics-samples-files (scripts/install-deps)");
    let ui_dir = ui_dir();
    assert!(ui_dir.join("index.html").is_file(), "no built UI in {}: run `npm ci && npm run build` in ui/", ui_dir.display());

    let temp = tempfile::tempdir().unwrap();
    let result = temp.path().join("self-check.json");
    let display = Xvfb::start();

    let mut app = Command::new(env!("CARGO_BIN_EXE_hearth-desktop"))
        .args(["--data-dir", path(&temp.path().join("data")), "--library", SAMPLES, "--listen", "127.0.0.1:0"])
        .args(["--self-check", path(&result), "--expect-title", EXPECTED_TITLE])
        .args(["--self-check-timeout", &CHECK_TIMEOUT_SECS.to_string()])
        .env("DISPLAY", display.name())
        .env("HEARTH_UI_DIR", &ui_dir)
        // Keep WebKit's caches, the tray's files and any user configuration
        // out of this account's folders.
        .env("HOME", temp.path())
        .env("XDG_CONFIG_HOME", temp.path().join("config"))
        .env("XDG_DATA_HOME", temp.path().join("share"))
        .env("XDG_CACHE_HOME", temp.path().join("cache"))
        .env_remove("HEARTH_CONFIG")
        // Xvfb has no GPU.
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("failed to start hearth-desktop");

    let written = wait_for(&result, Duration::from_secs(CHECK_TIMEOUT_SECS + 60));
    // The app keeps its window up for 4 s after writing the result.
    let screenshot = written.then(|| display.screenshot(&temp.path().join("screen.xwd")));
    let status = wait_or_kill(&mut app, Duration::from_secs(30));
    drop(display);

    let text = std::fs::read_to_string(&result).unwrap_or_else(|error| panic!("no self-check result in {}: {error}", result.display()));
    let outcome: serde_json::Value = serde_json::from_str(&text).unwrap();
    println!("self-check result:\n{text}");
    let screenshot = screenshot.expect("the result was written, so the screen was photographed");
    println!("screenshot: {} ({} colours)", screenshot.path.display(), screenshot.colours);

    let checks = &outcome["checks"];
    assert_eq!(checks["ui_loaded"], true, "the window did not load the UI from hearth://localhost/ui/");
    assert_eq!(checks["rendered"], true, "the page rendered no visible elements or text");
    assert_eq!(checks["api_lists_title"], true, "the API, called from the page in process, did not list {EXPECTED_TITLE:?}");
    assert_eq!(checks["command_returns_running"], true, "the server_status command, called from the page, did not return running");
    assert_eq!(checks["pairing_offer_created"], true, "the create_pairing_offer command, called from the page, returned no valid offer");
    assert!(screenshot.colours >= 16, "the screen is almost blank: {} colours ({})", screenshot.colours, screenshot.path.display());
    assert_eq!(checks["title_visible"], true, "the page does not show {EXPECTED_TITLE:?}; see the screenshot and the page's address in the result");
    assert_eq!(outcome["passed"], true, "the self-check did not pass: {text}");
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "the app did not exit with 0");
}

/// Returns the built UI folder: `HEARTH_UI_DIR`, else ui/dist of this source tree.
fn ui_dir() -> PathBuf {
    match std::env::var_os("HEARTH_UI_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist"),
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Waits until `file` exists, and returns false when `limit` passed first.
fn wait_for(file: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if file.exists() {
            // The app writes the file in one call; let it finish.
            std::thread::sleep(Duration::from_millis(300));
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Waits for `child` to exit, and kills it (by its own pid) after `limit`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// An Xvfb server on a free display, killed when dropped.
struct Xvfb {
    number: u32,
    child: Child,
}

impl Xvfb {
    fn start() -> Self {
        for number in (100 + std::process::id() % 300)..500 {
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([format!(":{number}").as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("failed to run Xvfb: run scripts/install-deps --desktop");
            let mut xvfb = Self { number, child };
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if socket.exists() {
                    return xvfb;
                }
                if xvfb.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = xvfb.child.kill();
        }
        panic!("no free X display between :100 and :499");
    }

    fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// Photographs the whole screen with xwd and saves it as PNG next to
    /// the test binaries.
    fn screenshot(&self, xwd: &Path) -> Screenshot {
        let mut command = Command::new("xwd");
        command.args(["-root", "-silent", "-display", &self.name(), "-out", path(xwd)]);
        let status = command.status().expect("failed to run xwd: install x11-apps");
        assert!(status.success(), "xwd failed: {status}");
        let image = read_xwd(&std::fs::read(xwd).unwrap());
        let colours = image.pixels().map(|p| p.0).collect::<std::collections::HashSet<_>>().len();
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("desktop-window.png");
        image.save(&path).unwrap();
        Screenshot { path, colours }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Screenshot {
    path: PathBuf,
    colours: usize,
}

/// Decodes an X window dump of a 24-bit TrueColor screen (32 bits per
/// pixel, as Xvfb's `-screen 0 WxHx24` gives) into an RGB image.
fn read_xwd(bytes: &[u8]) -> image::RgbImage {
    // The header is 25 big-endian 32-bit fields, then the window name.
    let field = |index: usize| u32::from_be_bytes(bytes[index * 4..index * 4 + 4].try_into().unwrap());
    let (header_size, width, height) = (field(0) as usize, field(4), field(5));
    let (byte_order, bits_per_pixel, bytes_per_line) = (field(7), field(11), field(12) as usize);
    let (red_mask, green_mask, blue_mask, colours) = (field(14), field(15), field(16), field(19) as usize);
    assert_eq!(bits_per_pixel, 32, "expected 32 bits per pixel");

    let data = &bytes[header_size + colours * 12..];
    let channel = |pixel: u32, mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
    image::RgbImage::from_fn(width, height, |x, y| {
        let at = y as usize * bytes_per_line + x as usize * 4;
        let raw: [u8; 4] = data[at..at + 4].try_into().unwrap();
        let pixel = if byte_order == 0 { u32::from_le_bytes(raw) } else { u32::from_be_bytes(raw) };
        image::Rgb([channel(pixel, red_mask), channel(pixel, green_mask), channel(pixel, blue_mask)])
    })
}
