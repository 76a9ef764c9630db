//! Time limits and concurrent use.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{AUDIO_SAMPLES, IMAGE_SAMPLES, VIDEO_SAMPLES, freedesktop_sounds, sample};
use hearth_media::{MediaError, probe, thumbnail};

/// Timeout given to each probe. The slowest sample (a 1080p MP4, on the first
/// use of the GStreamer registry) took 0.5 s on the 2-core development machine.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn all_samples() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = VIDEO_SAMPLES
        .iter()
        .chain(AUDIO_SAMPLES.iter())
        .chain(IMAGE_SAMPLES.iter())
        .map(|relative| sample(relative))
        .collect();
    paths.extend(freedesktop_sounds());
    paths
}

#[test]
fn every_sample_probes_within_timeout() {
    for path in all_samples() {
        let started = Instant::now();
        let result = probe(&path, PROBE_TIMEOUT);
        let elapsed = started.elapsed();
        assert!(result.is_ok(), "{}: {:?}", path.display(), result.err());
        assert!(
            elapsed < PROBE_TIMEOUT,
            "{}: took {elapsed:?}",
            path.display()
        );
    }
}

#[test]
fn tiny_timeout_is_timeout_not_a_hang() {
    // One nanosecond has passed before the helper thread even starts, so the
    // result is always a timeout, for GStreamer and image work alike.
    let tiny = Duration::from_nanos(1);
    for relative in [
        "movie1/VID_20191220_170832.mp4",
        "pic1/IMG_20200827_231612.jpg",
    ] {
        let path = sample(relative);
        let started = Instant::now();
        let error = probe(&path, tiny).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{relative}: {:?}",
            started.elapsed()
        );
        match &error {
            MediaError::Timeout { after, .. } => assert_eq!(*after, tiny),
            other => panic!("{relative}: expected Timeout, got {other:?}"),
        }
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );

        // A timed-out call leaves nothing behind that breaks the next one.
        let probed = probe(&path, PROBE_TIMEOUT).unwrap();
        let error = thumbnail(&path, &probed, 160, tiny).unwrap_err();
        assert!(
            matches!(error, MediaError::Timeout { .. }),
            "{relative}: {error:?}"
        );
        assert!(
            thumbnail(&path, &probed, 160, PROBE_TIMEOUT).is_ok(),
            "{relative}"
        );
    }
}

#[test]
fn concurrent_probes_match_sequential() {
    let paths = all_samples();
    let sequential: Vec<_> = paths
        .iter()
        .map(|path| probe(path, PROBE_TIMEOUT).unwrap())
        .collect();

    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let paths = paths.clone();
            thread::spawn(move || {
                // Each worker starts at a different file so that different
                // formats run at the same time.
                let offset = worker * paths.len() / 4;
                let mut results = vec![None; paths.len()];
                for step in 0..paths.len() {
                    let index = (offset + step) % paths.len();
                    let probed = probe(&paths[index], PROBE_TIMEOUT).unwrap();
                    let jpeg = thumbnail(&paths[index], &probed, 96, PROBE_TIMEOUT);
                    assert!(
                        jpeg.is_ok() || matches!(jpeg, Err(MediaError::NoThumbnail { .. })),
                        "{}: {jpeg:?}",
                        paths[index].display()
                    );
                    results[index] = Some(probed);
                }
                results
            })
        })
        .collect();

    for worker in workers {
        let results = worker.join().expect("worker panicked");
        for (index, result) in results.into_iter().enumerate() {
            assert_eq!(
                result.as_ref(),
                Some(&sequential[index]),
                "{}",
                paths[index].display()
            );
        }
    }
}
