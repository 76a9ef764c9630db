//! The audio tracks of a file, for a player's track menu. The index of a
//! track is the `audio_track` a playback request names: audio streams
//! counted from 0 in the order GStreamer's discoverer lists them, which is
//! the order the transcoder's decodebin exposes them.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;
use serde::Serialize;

use crate::deadline::run_with_deadline;
use crate::discover::discover;
use crate::{MediaError, init};

/// One audio stream of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AudioTrack {
    /// Position among the file's audio streams, from 0.
    pub index: usize,
    /// Codec as GStreamer describes it, such as `MPEG-4 AAC`.
    pub codec: Option<String>,
    /// Number of channels.
    pub channels: u32,
    /// Language tag such as `en`; `None` when unknown or `und`.
    pub language: Option<String>,
    /// The stream's title tag, such as `Director's commentary`.
    pub title: Option<String>,
}

/// Lists the audio streams of `media`, giving up after `timeout`.
pub fn audio_tracks(media: &Path, timeout: Duration) -> Result<Vec<AudioTrack>, MediaError> {
    init()?;
    run_with_deadline(media, timeout, |media, deadline| {
        let discovered = discover(&media, &deadline)?;
        let info = &discovered.info;
        match info.result() {
            pbutils::DiscovererResult::Ok | pbutils::DiscovererResult::MissingPlugins => {}
            pbutils::DiscovererResult::Timeout => return Err(deadline.timeout_error(&media)),
            _ => {
                let reason = match &discovered.error {
                    Some(error) => format!("gstreamer could not read its streams: {error}"),
                    None => "gstreamer could not read its streams".to_owned(),
                };
                return Err(MediaError::Corrupt { path: media.clone(), reason });
            }
        }
        Ok(info.audio_streams().iter().enumerate().map(|(index, stream)| describe(index, stream)).collect())
    })
}

fn describe(index: usize, stream: &pbutils::DiscovererAudioInfo) -> AudioTrack {
    let tags = stream.tags();
    let tag = |value: Option<String>| value.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty());
    let codec = tag(tags.as_ref().and_then(|tags| tags.get::<gst::tags::AudioCodec>()).map(|value| value.get().to_owned()));
    let language = stream
        .language()
        .map(|language| language.to_string())
        .or_else(|| tags.as_ref().and_then(|tags| tags.get::<gst::tags::LanguageCode>()).map(|value| value.get().to_owned()))
        .map(|language| language.to_ascii_lowercase())
        .filter(|language| !language.is_empty() && language != "und");
    let title = tag(tags.as_ref().and_then(|tags| tags.get::<gst::tags::Title>()).map(|value| value.get().to_owned()));
    AudioTrack { index, codec, channels: stream.channels(), language, title }
}
