//! Data returned by [`crate::probe`], serialisable so the catalog can store it.

use serde::{Deserialize, Serialize};

/// Kind of media in a file, decided from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MediaKind {
    /// Moving pictures, with or without sound.
    Video,
    /// Sound only; embedded cover art does not make a file a video.
    Audio,
    /// A still picture.
    Image,
}

impl MediaKind {
    /// Returns the lowercase name used in storage and URLs: "video", "audio" or "image".
    pub fn as_str(&self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Image => "image",
        }
    }

    /// Parses the name written by [`MediaKind::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "video" => Some(MediaKind::Video),
            "audio" => Some(MediaKind::Audio),
            "image" => Some(MediaKind::Image),
            _ => None,
        }
    }
}

/// Everything known about one media file after probing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Probe {
    /// Kind of media, decided from the content, never from the file name.
    pub kind: MediaKind,
    /// Content-Type to serve the file with, such as "video/mp4" or "image/jpeg".
    pub mime: String,
    /// GStreamer's description of the container ("Quicktime", "Ogg"); `None`
    /// for bare streams such as MP3 and for images.
    pub container: Option<String>,
    /// Duration in milliseconds; `None` for images.
    pub duration_ms: Option<u64>,
    /// Average bit rate of the whole file in bits per second (file size × 8 /
    /// duration); `None` for images.
    pub bit_rate: Option<u64>,
    /// First video stream, ignoring still images such as cover art.
    pub video: Option<VideoStream>,
    /// First audio stream.
    pub audio: Option<AudioStream>,
    /// Title, artist and other tags found in the container or streams.
    pub tags: Tags,
    /// Image details; `Some` only for [`MediaKind::Image`].
    pub image: Option<ImageInfo>,
    /// Whether an audio or video file embeds a picture (GStreamer `image` or
    /// `preview-image` tag) that [`crate::thumbnail`] can use.
    pub has_cover_art: bool,
}

/// One video stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VideoStream {
    /// GStreamer's codec description, such as "H.264 (High Profile)" or "Theora".
    pub codec: String,
    /// Frame width in pixels.
    pub width: Option<u32>,
    /// Frame height in pixels.
    pub height: Option<u32>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// Bit rate of this stream in bits per second, when the container or codec states it.
    pub bit_rate: Option<u64>,
}

/// One audio stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AudioStream {
    /// GStreamer's codec description, such as "MPEG-4 AAC" or "Vorbis".
    pub codec: String,
    /// Number of channels.
    pub channels: Option<u32>,
    /// Samples per second.
    pub sample_rate: Option<u32>,
    /// Bit rate of this stream in bits per second, when the container or codec states it.
    pub bit_rate: Option<u64>,
}

/// Descriptive tags; the first value found wins when a file repeats a tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tags {
    /// Title of the track or film.
    pub title: Option<String>,
    /// Performer or author.
    pub artist: Option<String>,
    /// Album or collection.
    pub album: Option<String>,
    /// Track number within the album.
    pub track: Option<u32>,
    /// Genre as written in the file.
    pub genre: Option<String>,
    /// Recording or release date in ISO 8601 form, as precise as the file
    /// states it ("2020", "2020-08-27" or a full date and time).
    pub date: Option<String>,
}

/// Details of a still image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    /// Width in pixels as stored, before the EXIF orientation is applied.
    pub width: u32,
    /// Height in pixels as stored, before the EXIF orientation is applied.
    pub height: u32,
    /// Lowercase format name: "jpeg", "png", "gif", "webp", "tiff", "bmp",
    /// "pnm", "heif" or "avif".
    pub format: String,
    /// Camera metadata, when the file carries EXIF.
    pub exif: Option<Exif>,
}

/// Camera metadata read from EXIF.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exif {
    /// Camera maker (EXIF `Make`), trimmed.
    pub camera_make: Option<String>,
    /// Camera model (EXIF `Model`), trimmed.
    pub camera_model: Option<String>,
    /// Time the picture was taken (EXIF `DateTimeOriginal`) as
    /// "YYYY-MM-DDTHH:MM:SS" in the camera's local time.
    pub taken_at: Option<String>,
    /// EXIF orientation, 1 to 8. Values 5 to 8 turn the stored image a quarter
    /// turn (5 and 7 also mirror it), so its displayed width and height are swapped.
    pub orientation: Option<u16>,
    /// Location where the picture was taken.
    pub gps: Option<Gps>,
}

/// A position from EXIF GPS tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gps {
    /// Latitude in signed decimal degrees; south is negative.
    pub latitude: f64,
    /// Longitude in signed decimal degrees; west is negative.
    pub longitude: f64,
    /// Altitude in metres; below sea level is negative.
    pub altitude_m: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_name_round_trips() {
        for kind in [MediaKind::Video, MediaKind::Audio, MediaKind::Image] {
            assert_eq!(MediaKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MediaKind::parse("Video"), None);
    }

    #[test]
    fn kind_serialises_lowercase() {
        let json = serde_json::to_string(&MediaKind::Audio).unwrap();
        assert_eq!(json, "\"audio\"");
    }
}
