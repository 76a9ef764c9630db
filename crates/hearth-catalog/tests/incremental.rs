//! Incremental scanning on real sample media: unchanged files are not read
//! again, removed files go missing, moved files keep their id and play state,
//! and the watcher picks up changes while it runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_catalog::{Catalog, ItemQuery, ScanConfig, ScanSummary};
use hearth_store::Store;

const SAMPLES: &str = "/usr/share/forensics-samples/original-files";

struct Fixture {
    _dir: tempfile::TempDir,
    library: PathBuf,
    catalog: Arc<Catalog>,
}

/// A library with three real files, scanned once.
fn fixture() -> Fixture {
    assert!(Path::new(SAMPLES).is_dir(), "{SAMPLES} is missing: apt-get install forensics-samples-files");
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("films")).unwrap();
    std::fs::copy(format!("{SAMPLES}/movie2/movie-hello.mp4"), library.join("films/hello.mp4")).unwrap();
    std::fs::copy(format!("{SAMPLES}/audio1/debian.ogg"), library.join("debian.ogg")).unwrap();
    std::fs::copy(format!("{SAMPLES}/pic1/debian.png"), library.join("logo.png")).unwrap();

    let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
    let catalog = Arc::new(Catalog::open(store, ScanConfig::default()).unwrap());
    catalog.add_library(&library).unwrap();
    Fixture { _dir: dir, library, catalog }
}

fn scan(catalog: &Catalog) -> ScanSummary {
    catalog.scan_all(&|_| {}).unwrap()
}

fn id_of(catalog: &Catalog, title: &str) -> String {
    let page = catalog.items(&ItemQuery { search: Some(title.into()), limit: 10, include_missing: true, ..Default::default() }).unwrap();
    assert_eq!(page.items.len(), 1, "expected one item titled {title}");
    page.items[0].id.clone()
}

#[test]
fn first_scan_indexes_every_kind() {
    let f = fixture();

    let summary = scan(&f.catalog);

    assert_eq!(summary.added, 3);
    assert_eq!(summary.problems, 0);
    let video = f.catalog.item(&id_of(&f.catalog, "hello")).unwrap().unwrap();
    assert_eq!(video.summary.kind, hearth_media::MediaKind::Video);
    assert_eq!(video.summary.mime, "video/mp4");
    assert_eq!(video.sha256.len(), 64);
}

#[test]
fn unchanged_rescan_reads_nothing() {
    let f = fixture();
    scan(&f.catalog);

    let again = scan(&f.catalog);

    assert_eq!(again.unchanged, 3);
    assert_eq!(again.added + again.updated + again.moved, 0);
}

#[test]
fn removed_file_is_marked_missing() {
    let f = fixture();
    scan(&f.catalog);
    let id = id_of(&f.catalog, "logo");

    std::fs::remove_file(f.library.join("logo.png")).unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.missing, 1);
    let item = f.catalog.item(&id).unwrap().unwrap();
    assert!(item.summary.missing);
    assert!(f.catalog.media_file(&id).unwrap().is_none(), "a missing item must not be streamable");
    assert_eq!(f.catalog.item_count().unwrap(), 2);
}

#[test]
fn moved_file_keeps_id_and_play_state() {
    let f = fixture();
    scan(&f.catalog);
    let id = id_of(&f.catalog, "hello");
    assert!(f.catalog.set_play_state(&id, "alice", 4_200, false).unwrap());

    std::fs::create_dir_all(f.library.join("archive/2019")).unwrap();
    std::fs::rename(f.library.join("films/hello.mp4"), f.library.join("archive/2019/hello-renamed.mp4")).unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.moved, 1);
    assert_eq!(summary.added, 0);
    assert_eq!(summary.missing, 0);
    let item = f.catalog.item(&id).unwrap().unwrap();
    assert_eq!(item.path, "archive/2019/hello-renamed.mp4");
    assert!(!item.summary.missing);
    assert_eq!(f.catalog.play_state(&id, "alice").unwrap().unwrap().position_ms, 4_200);
    assert!(f.catalog.play_state(&id, "bob").unwrap().is_none(), "one user's position leaked to another");
}

#[test]
fn moved_while_stopped_across_two_scans() {
    let f = fixture();
    scan(&f.catalog);
    let id = id_of(&f.catalog, "debian");

    // First the file disappears (say, the disk was reorganised), then it
    // shows up elsewhere in a later scan.
    let outside = f.library.parent().unwrap().join("debian.ogg");
    std::fs::rename(f.library.join("debian.ogg"), &outside).unwrap();
    scan(&f.catalog);
    assert!(f.catalog.item(&id).unwrap().unwrap().summary.missing);
    std::fs::rename(&outside, f.library.join("films/debian-again.ogg")).unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.moved, 1);
    assert!(!f.catalog.item(&id).unwrap().unwrap().summary.missing);
}

#[test]
fn copied_file_becomes_second_item() {
    let f = fixture();
    scan(&f.catalog);

    std::fs::copy(f.library.join("logo.png"), f.library.join("logo-copy.png")).unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.added, 1);
    assert_eq!(summary.moved, 0);
    assert_eq!(f.catalog.item_count().unwrap(), 4);
}

#[test]
fn changed_file_is_probed_again_in_place() {
    let f = fixture();
    scan(&f.catalog);
    let id = id_of(&f.catalog, "logo");

    std::fs::copy(format!("{SAMPLES}/pic1/debian_logo.png"), f.library.join("logo.png")).unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.updated, 1);
    let item = f.catalog.item(&id).unwrap().unwrap();
    let image = item.probe.image.unwrap();
    let (w, h) = image::image_dimensions(f.library.join("logo.png")).unwrap();
    assert_eq!((image.width, image.height), (w, h));
}

#[test]
fn file_broken_after_indexing_leaves_item_missing() {
    let f = fixture();
    scan(&f.catalog);
    let id = id_of(&f.catalog, "hello");

    std::fs::write(f.library.join("films/hello.mp4"), b"").unwrap();
    let summary = scan(&f.catalog);

    assert_eq!(summary.problems, 1);
    assert!(f.catalog.item(&id).unwrap().unwrap().summary.missing);
    let problems = f.catalog.problems().unwrap();
    assert_eq!(problems[0].category, "empty");
    assert_eq!(problems[0].path, "films/hello.mp4");
}

#[test]
fn watcher_indexes_new_file_while_running() {
    let f = fixture();
    scan(&f.catalog);
    let _watcher = hearth_catalog::watch::LibraryWatcher::start(Arc::clone(&f.catalog), Arc::new(|_| {}), Arc::new(|_, _| {})).unwrap();

    std::fs::copy(format!("{SAMPLES}/audio1/debian.mp3"), f.library.join("films/new-song.mp3")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while f.catalog.item_count().unwrap() < 4 {
        assert!(Instant::now() < deadline, "watcher did not index the new file within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    id_of(&f.catalog, "new-song");
}

#[test]
fn search_sort_and_kind_filter() {
    let f = fixture();
    scan(&f.catalog);

    let audio = f.catalog.items(&ItemQuery { kind: Some(hearth_media::MediaKind::Audio), limit: 50, ..Default::default() }).unwrap();
    let by_size = f.catalog.items(&ItemQuery { sort: hearth_catalog::SortKey::Size, descending: true, limit: 50, ..Default::default() }).unwrap();
    let wildcard = f.catalog.items(&ItemQuery { search: Some("%".into()), limit: 50, ..Default::default() }).unwrap();
    let paged = f.catalog.items(&ItemQuery { limit: 2, offset: 2, ..Default::default() }).unwrap();

    assert_eq!(audio.items.len(), 1);
    assert_eq!(audio.items[0].title, "debian");
    assert!(by_size.items.windows(2).all(|w| w[0].size >= w[1].size));
    assert_eq!(wildcard.total, 0, "a % in the search text must match literally");
    assert_eq!(paged.total, 3);
    assert_eq!(paged.items.len(), 1);
}

#[test]
fn probe_timeout_is_reported_and_scan_completes() {
    let f = fixture();
    let store = Store::open(&f._dir.path().join("impatient.sqlite3")).unwrap();
    let config = ScanConfig { probe_timeout: Duration::from_nanos(1), workers: 2 };
    let impatient = Catalog::open(store, config).unwrap();
    impatient.add_library(&f.library).unwrap();

    let summary = scan(&impatient);

    assert_eq!(summary.added, 0);
    assert_eq!(summary.problems, 3);
    assert!(impatient.problems().unwrap().iter().all(|p| p.category == "timeout"), "{:#?}", impatient.problems().unwrap());
}

#[test]
fn identical_copies_moved_together_keep_their_ids() {
    let f = fixture();
    let names = ["one.png", "two.png", "three.png"];
    for name in names {
        std::fs::copy(f.library.join("logo.png"), f.library.join(name)).unwrap();
    }
    scan(&f.catalog);
    let ids: Vec<String> = names.iter().map(|n| id_of(&f.catalog, n.trim_end_matches(".png"))).collect();
    assert!(f.catalog.set_play_state(&ids[1], "alice", 777, false).unwrap());

    std::fs::create_dir_all(f.library.join("sub")).unwrap();
    for name in names {
        std::fs::rename(f.library.join(name), f.library.join("sub").join(name)).unwrap();
    }
    let summary = scan(&f.catalog);

    assert_eq!(summary.moved, 3);
    for (name, id) in names.iter().zip(&ids) {
        let item = f.catalog.item(id).unwrap().unwrap();
        assert_eq!(item.path, format!("sub/{name}"), "id of {name} moved to another copy");
    }
    assert_eq!(f.catalog.play_state(&ids[1], "alice").unwrap().unwrap().position_ms, 777);
}
