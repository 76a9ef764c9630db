//! A scan killed with SIGKILL mid-write loses nothing: the database stays
//! intact and the next scan finishes the job.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{SAMPLES, SOUNDS, require_samples};

/// Copies the sample and sound libraries `copies` times into `root`.
fn big_library(root: &Path, copies: usize) -> usize {
    let mut files = 0;
    for copy in 0..copies {
        for source in [SAMPLES, SOUNDS] {
            for entry in walk(Path::new(source)) {
                let relative = entry.strip_prefix(source).unwrap();
                let target = root.join(format!("copy{copy}")).join(Path::new(source).file_name().unwrap()).join(relative);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(&entry, &target).unwrap();
                files += 1;
            }
        }
    }
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

fn committed_items(data: &Path) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(conn) = rusqlite::Connection::open_with_flags(data.join("hearth.sqlite3"), flags) else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap_or(0)
}

fn scan(library: &Path, data: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["scan", "--json", "--library"])
        .arg(library)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth scan")
}

#[test]
fn killed_scan_resumes_with_intact_database() {
    require_samples();
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    let data = dir.path().join("data");
    big_library(&library, 4);

    // Kill the first scan as soon as its first batch is committed.
    let mut first = scan(&library, &data);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while committed_items(&data) == 0 {
        assert!(std::time::Instant::now() < deadline, "first scan committed nothing in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let second = scan(&library, &data).wait_with_output().unwrap();
    assert!(second.status.success());
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();

    let conn = rusqlite::Connection::open(data.join("hearth.sqlite3")).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let items: i64 = conn.query_row("SELECT COUNT(*) FROM items WHERE missing = 0", [], |r| r.get(0)).unwrap();
    let third = scan(&library, &data).wait_with_output().unwrap();
    let final_report: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    // The same library scanned without interruption is the reference.
    let clean = scan(&library, &dir.path().join("clean")).wait_with_output().unwrap();
    let clean_report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(items, clean_report["summary"]["added"].as_i64().unwrap(), "resumed run report: {report}");
    assert!(items > 200, "library copy looks incomplete: {items} items");
    assert_eq!(final_report["summary"]["added"], 0);
    assert_eq!(final_report["summary"]["updated"], 0);
}
