//! Running GStreamer's discoverer on one file within a deadline.
//!
//! The discoverer's blocking call polls its bus in half-second steps and its
//! own timeout cannot go below one second (the range of its `timeout`
//! property in GStreamer 1.22). To honour any deadline, this module runs the
//! discoverer in its asynchronous mode on a private GLib main context that
//! the calling thread iterates until a result arrives or the deadline passes,
//! and then stops it. Every call owns its discoverer and context, so calls
//! from several threads do not share state.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_pbutils as pbutils;

use crate::MediaError;
use crate::deadline::Deadline;

/// Shortest and longest timeout the discoverer's `timeout` property accepts.
const DISCOVERER_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));

/// Result of discovering one file.
pub(crate) struct Discovered {
    /// Streams, tags and the overall result.
    pub(crate) info: pbutils::DiscovererInfo,
    /// Error that stopped discovery, if any.
    pub(crate) error: Option<glib::Error>,
}

/// Returns the `file://` URI of `path`, made absolute first.
///
/// `g_filename_to_uri` escapes raw bytes, so names that are not valid UTF-8
/// still work.
pub(crate) fn file_uri(path: &Path) -> Result<String, MediaError> {
    let absolute = std::path::absolute(path).map_err(|source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let uri = glib::filename_to_uri(&absolute, None).map_err(|source| MediaError::Uri {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(uri.to_string())
}

/// Discovers `path`, giving up with [`MediaError::Timeout`] at `deadline`.
pub(crate) fn discover(path: &Path, deadline: &Deadline) -> Result<Discovered, MediaError> {
    let uri = file_uri(path)?;
    let context = glib::MainContext::new();

    let outcome = context.with_thread_default(|| run_discoverer(path, &uri, &context, deadline));
    match outcome {
        Ok(result) => result,
        Err(source) => Err(MediaError::Pipeline {
            path: path.to_path_buf(),
            action: "acquire its glib main context",
            source,
        }),
    }
}

fn run_discoverer(
    path: &Path,
    uri: &str,
    context: &glib::MainContext,
    deadline: &Deadline,
) -> Result<Discovered, MediaError> {
    let remaining = deadline.remaining_or_timeout(path)?;
    let (shortest, longest) = DISCOVERER_TIMEOUT_RANGE;
    let own_timeout = remaining.clamp(shortest, longest);
    let own_timeout = gst::ClockTime::from_nseconds(own_timeout.as_nanos() as u64);

    let discoverer =
        pbutils::Discoverer::new(own_timeout).map_err(|source| MediaError::Discoverer {
            path: path.to_path_buf(),
            source,
        })?;

    let slot: Arc<Mutex<Option<Discovered>>> = Arc::new(Mutex::new(None));
    let writer = Arc::clone(&slot);
    discoverer.connect_discovered(move |_, info, error| {
        let found = Discovered {
            info: info.clone(),
            error: error.cloned(),
        };
        *writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(found);
    });

    // `start` attaches the discoverer's bus watch to the thread-default
    // context, which `discover` has set to `context`.
    discoverer.start();

    // Wakes the loop below at the deadline. It repeats in case GLib's
    // millisecond rounding fires it a moment early.
    let wake = glib::timeout_source_new(remaining, None, glib::Priority::DEFAULT, || {
        glib::ControlFlow::Continue
    });
    wake.attach(Some(context));

    let result = match discoverer.discover_uri_async(uri) {
        Ok(()) => wait_for_result(path, context, deadline, &slot),
        Err(source) => Err(MediaError::Pipeline {
            path: path.to_path_buf(),
            action: "queue the file for discovery",
            source,
        }),
    };

    wake.destroy();
    discoverer.stop();
    result
}

fn wait_for_result(
    path: &Path,
    context: &glib::MainContext,
    deadline: &Deadline,
    slot: &Mutex<Option<Discovered>>,
) -> Result<Discovered, MediaError> {
    loop {
        if let Some(found) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Ok(found);
        }
        if deadline.remaining().is_none() {
            return Err(deadline.timeout_error(path));
        }
        context.iteration(true);
    }
}
