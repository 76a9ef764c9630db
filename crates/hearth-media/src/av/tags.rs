//! Tags (title, artist, date, cover art) from every container and stream.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer::prelude::*;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;

use crate::types::Tags;

/// Collects the tag lists of every container and stream, outermost first.
pub(super) fn tag_lists(info: &pbutils::DiscovererInfo) -> Vec<gst::TagList> {
    let mut containers = Vec::new();
    if let Some(top) = info.stream_info() {
        collect_containers(&top, &mut containers);
    }
    let container_tags = containers
        .into_iter()
        .filter_map(|container| container.tags());
    let stream_tags = info
        .stream_list()
        .into_iter()
        .filter_map(|stream| stream.tags());
    container_tags.chain(stream_tags).collect()
}

/// Walks the stream topology for containers.
///
/// `DiscovererInfo::container_streams` is no use here: in GStreamer 1.22 it
/// filters the stream list, which contains no containers, so it always
/// returns nothing.
fn collect_containers(
    stream: &pbutils::DiscovererStreamInfo,
    found: &mut Vec<pbutils::DiscovererContainerInfo>,
) {
    if let Some(container) = stream.downcast_ref::<pbutils::DiscovererContainerInfo>() {
        found.push(container.clone());
        for child in container.streams() {
            collect_containers(&child, found);
        }
    }
    if let Some(next) = stream.next() {
        collect_containers(&next, found);
    }
}

pub(super) fn read_tags(lists: &[gst::TagList]) -> Tags {
    let mut tags = Tags::default();
    for list in lists {
        if tags.title.is_none() {
            tags.title = list
                .get::<gst::tags::Title>()
                .map(|value| value.get().to_owned());
        }
        if tags.artist.is_none() {
            tags.artist = list
                .get::<gst::tags::Artist>()
                .map(|value| value.get().to_owned());
        }
        if tags.album.is_none() {
            tags.album = list
                .get::<gst::tags::Album>()
                .map(|value| value.get().to_owned());
        }
        if tags.track.is_none() {
            tags.track = list
                .get::<gst::tags::TrackNumber>()
                .map(|value| value.get());
        }
        if tags.genre.is_none() {
            tags.genre = list
                .get::<gst::tags::Genre>()
                .map(|value| value.get().to_owned());
        }
        if tags.date.is_none() {
            tags.date = tag_date(list);
        }
    }
    tags
}

/// Formats the `datetime` tag, or else the older `date` tag, as ISO 8601 with
/// only the fields the file sets.
fn tag_date(list: &gst::TagList) -> Option<String> {
    if let Some(value) = list.get::<gst::tags::DateTime>()
        && let Ok(text) = value.get().to_iso8601_string()
    {
        return Some(text.to_string());
    }
    let date = list.get::<gst::tags::Date>()?.get();
    date_to_iso(&date)
}

fn date_to_iso(date: &glib::Date) -> Option<String> {
    if !date.valid() {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month().into_glib(),
        date.day()
    ))
}
