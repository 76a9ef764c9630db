//! Prints the probe of each file named on the command line as JSON, and
//! optionally writes thumbnails: `cargo run -p hearth-media --example probe -- [--thumbs DIR] FILE...`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
const THUMBNAIL_EDGE: u32 = 320;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1).peekable();
    let mut thumbnail_dir: Option<PathBuf> = None;
    if args.peek().is_some_and(|arg| arg == "--thumbs") {
        args.next();
        thumbnail_dir = args.next().map(PathBuf::from);
    }

    for arg in args {
        let path = PathBuf::from(arg);
        let started = Instant::now();
        let result = hearth_media::probe(&path, TIMEOUT);
        let elapsed = started.elapsed();
        match &result {
            Ok(probe) => println!(
                "{} ({elapsed:?})\n{}",
                path.display(),
                serde_json::to_string_pretty(probe)?
            ),
            Err(error) => println!("{} ({elapsed:?})\nerror: {error}", path.display()),
        }
        if let (Ok(probe), Some(dir)) = (&result, &thumbnail_dir) {
            write_thumbnail(&path, probe, dir);
        }
    }
    Ok(())
}

fn write_thumbnail(path: &Path, probe: &hearth_media::Probe, dir: &Path) {
    let started = Instant::now();
    match hearth_media::thumbnail(path, probe, THUMBNAIL_EDGE, TIMEOUT) {
        Ok(jpeg) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let target = dir.join(format!("{name}.jpg"));
            match std::fs::write(&target, jpeg) {
                Ok(()) => println!("thumbnail: {} ({:?})", target.display(), started.elapsed()),
                Err(error) => println!("thumbnail: failed to write {}: {error}", target.display()),
            }
        }
        Err(error) => println!("thumbnail error: {error}"),
    }
}
