//! Element creation shared by the thumbnail, trickplay and subtitle pipelines.

use gstreamer as gst;

use crate::MediaError;

/// Makes an element of `factory`, or returns [`MediaError::MissingElement`]
/// naming the factory when its plug-in is not installed.
pub(crate) fn make_element(factory: &'static str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|source| MediaError::MissingElement { element: factory, source })
}
