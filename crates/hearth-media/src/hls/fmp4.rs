//! A small fragmented-MP4 (ISO BMFF, CMAF-style) writer for HLS.
//!
//! Hearth writes the boxes itself instead of using a GStreamer muxer, so that
//! each segment's base media decode time (`tfdt`) is exactly the time of its
//! first sample in the film. A transcoder that restarts at segment 40 after a
//! seek then produces segments that line up with those made from the start.
//!
//! The init segment holds `ftyp` and `moov` with one track per stream (H.264
//! video, AAC audio); each media segment holds one `moof` with a `traf` per
//! track and one `mdat`. Samples carry explicit durations, sizes and flags.
//! Transcoded video has no B-frames, so decode and presentation times are
//! equal; copied video may have them, and its samples then carry signed
//! composition offsets (a version 1 `trun`).

/// Time scale of the video track: 90 kHz, as MPEG streams use.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Track ID of the video track in every Hearth init segment.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track ID of the audio track in every Hearth init segment.
pub const AUDIO_TRACK_ID: u32 = 2;

/// `sample_flags` of a sync sample: depends on no other sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, not a sync sample.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// Codec set-up of one track, as the init segment needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackConfig {
    /// H.264 in AVC format: `avcc` is the `codec_data` of the encoder's caps
    /// (an AVCDecoderConfigurationRecord).
    Video { width: u32, height: u32, avcc: Vec<u8> },
    /// AAC-LC: `audio_specific_config` is the `codec_data` of the encoder's caps.
    Audio { sample_rate: u32, channels: u16, audio_specific_config: Vec<u8> },
}

impl TrackConfig {
    fn track_id(&self) -> u32 {
        match self {
            TrackConfig::Video { .. } => VIDEO_TRACK_ID,
            TrackConfig::Audio { .. } => AUDIO_TRACK_ID,
        }
    }

    /// Time scale of the track's `mdhd`, and of its sample durations.
    pub fn timescale(&self) -> u32 {
        match self {
            TrackConfig::Video { .. } => VIDEO_TIMESCALE,
            TrackConfig::Audio { sample_rate, .. } => *sample_rate,
        }
    }
}

/// One encoded frame: an H.264 access unit or an AAC frame.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Duration in the track's time scale.
    pub duration: u32,
    /// Whether the sample is a sync sample (an IDR frame; every AAC frame).
    pub sync: bool,
    /// Presentation time minus decode time, in the track's time scale.
    pub composition_offset: i32,
    /// The encoded bytes (length-prefixed NAL units for H.264).
    pub data: Vec<u8>,
}

/// The samples of one track inside one media segment.
#[derive(Debug, Clone)]
pub struct TrackRun {
    /// Track: [`VIDEO_TRACK_ID`] or [`AUDIO_TRACK_ID`].
    pub track_id: u32,
    /// Decode time of the first sample, in the track's time scale.
    pub base_decode_time: u64,
    /// The samples in decode order.
    pub samples: Vec<Sample>,
}

/// Writes the init segment (`ftyp` + `moov`) for `tracks`.
pub fn init_segment(tracks: &[TrackConfig]) -> Vec<u8> {
    let mut out = Vec::new();
    write_box(&mut out, b"ftyp", |b| {
        b.extend_from_slice(b"iso6");
        b.extend_from_slice(&0u32.to_be_bytes());
        for brand in [b"iso6", b"cmfc", b"mp41", b"dash"] {
            b.extend_from_slice(brand);
        }
    });
    write_box(&mut out, b"moov", |moov| {
        write_full_box(moov, b"mvhd", 0, 0, |b| {
            b.extend_from_slice(&[0; 8]); // creation and modification time
            b.extend_from_slice(&1000u32.to_be_bytes()); // time scale
            b.extend_from_slice(&0u32.to_be_bytes()); // duration: fragmented
            b.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
            b.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
            b.extend_from_slice(&[0; 10]);
            write_unity_matrix(b);
            b.extend_from_slice(&[0; 24]); // pre_defined
            b.extend_from_slice(&(AUDIO_TRACK_ID + 1).to_be_bytes()); // next_track_ID
        });
        for track in tracks {
            write_trak(moov, track);
        }
        write_box(moov, b"mvex", |mvex| {
            for track in tracks {
                write_full_box(mvex, b"trex", 0, 0, |b| {
                    b.extend_from_slice(&track.track_id().to_be_bytes());
                    b.extend_from_slice(&1u32.to_be_bytes()); // sample description index
                    b.extend_from_slice(&[0; 12]); // default duration, size, flags
                });
            }
        });
    });
    out
}

/// Writes one media segment (`moof` + `mdat`) with sequence number
/// `sequence` (1-based, increasing) and the given runs. Empty runs are left out.
pub fn media_segment(sequence: u32, runs: &[TrackRun]) -> Vec<u8> {
    let runs: Vec<&TrackRun> = runs.iter().filter(|run| !run.samples.is_empty()).collect();
    // The moof's size does not depend on the data offsets, so write it once
    // with zero offsets, measure, and write it again with the real ones.
    let moof_len = moof(sequence, &runs, &vec![0; runs.len()]).len();
    let mut offsets = Vec::with_capacity(runs.len());
    let mut offset = moof_len + 8; // mdat header
    for run in &runs {
        offsets.push(u32::try_from(offset).unwrap_or(u32::MAX));
        offset += run.samples.iter().map(|sample| sample.data.len()).sum::<usize>();
    }
    let mut out = moof(sequence, &runs, &offsets);
    let mdat_len = offset - moof_len;
    out.reserve(mdat_len);
    out.extend_from_slice(&u32::try_from(mdat_len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for run in &runs {
        for sample in &run.samples {
            out.extend_from_slice(&sample.data);
        }
    }
    out
}

fn moof(sequence: u32, runs: &[&TrackRun], data_offsets: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    write_box(&mut out, b"moof", |moof| {
        write_full_box(moof, b"mfhd", 0, 0, |b| b.extend_from_slice(&sequence.to_be_bytes()));
        for (run, data_offset) in runs.iter().zip(data_offsets) {
            write_box(moof, b"traf", |traf| {
                // default-base-is-moof: data offsets count from the moof's start.
                write_full_box(traf, b"tfhd", 0, 0x02_0000, |b| b.extend_from_slice(&run.track_id.to_be_bytes()));
                write_full_box(traf, b"tfdt", 1, 0, |b| b.extend_from_slice(&run.base_decode_time.to_be_bytes()));
                // data-offset, sample-duration, sample-size and sample-flags
                // present; composition offsets only when a sample needs one.
                let offsets = run.samples.iter().any(|sample| sample.composition_offset != 0);
                let (version, flags) = if offsets { (1, 0x0F01) } else { (0, 0x0701) };
                write_full_box(traf, b"trun", version, flags, |b| {
                    b.extend_from_slice(&u32::try_from(run.samples.len()).unwrap_or(u32::MAX).to_be_bytes());
                    b.extend_from_slice(&data_offset.to_be_bytes());
                    for sample in &run.samples {
                        b.extend_from_slice(&sample.duration.to_be_bytes());
                        b.extend_from_slice(&u32::try_from(sample.data.len()).unwrap_or(u32::MAX).to_be_bytes());
                        let flags = if sample.sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE };
                        b.extend_from_slice(&flags.to_be_bytes());
                        if offsets {
                            b.extend_from_slice(&sample.composition_offset.to_be_bytes());
                        }
                    }
                });
            });
        }
    });
    out
}

fn write_trak(out: &mut Vec<u8>, track: &TrackConfig) {
    write_box(out, b"trak", |trak| {
        // Flags: track enabled and in the movie.
        write_full_box(trak, b"tkhd", 0, 0x3, |b| {
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(&track.track_id().to_be_bytes());
            b.extend_from_slice(&[0; 4]); // reserved
            b.extend_from_slice(&[0; 4]); // duration
            b.extend_from_slice(&[0; 8]); // reserved
            b.extend_from_slice(&[0; 4]); // layer, alternate group
            let volume: u16 = if matches!(track, TrackConfig::Audio { .. }) { 0x0100 } else { 0 };
            b.extend_from_slice(&volume.to_be_bytes());
            b.extend_from_slice(&[0; 2]);
            write_unity_matrix(b);
            let (width, height) = match track {
                TrackConfig::Video { width, height, .. } => (*width, *height),
                TrackConfig::Audio { .. } => (0, 0),
            };
            b.extend_from_slice(&(width << 16).to_be_bytes());
            b.extend_from_slice(&(height << 16).to_be_bytes());
        });
        write_box(trak, b"mdia", |mdia| {
            write_full_box(mdia, b"mdhd", 0, 0, |b| {
                b.extend_from_slice(&[0; 8]);
                b.extend_from_slice(&track.timescale().to_be_bytes());
                b.extend_from_slice(&[0; 4]); // duration
                b.extend_from_slice(&0x55c4u16.to_be_bytes()); // language "und"
                b.extend_from_slice(&[0; 2]);
            });
            let (handler, name): (&[u8; 4], &[u8]) = match track {
                TrackConfig::Video { .. } => (b"vide", b"Hearth video\0"),
                TrackConfig::Audio { .. } => (b"soun", b"Hearth audio\0"),
            };
            write_full_box(mdia, b"hdlr", 0, 0, |b| {
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(handler);
                b.extend_from_slice(&[0; 12]);
                b.extend_from_slice(name);
            });
            write_box(mdia, b"minf", |minf| {
                match track {
                    TrackConfig::Video { .. } => write_full_box(minf, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8])),
                    TrackConfig::Audio { .. } => write_full_box(minf, b"smhd", 0, 0, |b| b.extend_from_slice(&[0; 4])),
                }
                write_box(minf, b"dinf", |dinf| {
                    write_full_box(dinf, b"dref", 0, 0, |b| {
                        b.extend_from_slice(&1u32.to_be_bytes());
                        // Flag 1: the media data is in this file.
                        write_full_box(b, b"url ", 0, 1, |_| {});
                    });
                });
                write_box(minf, b"stbl", |stbl| {
                    write_full_box(stbl, b"stsd", 0, 0, |b| {
                        b.extend_from_slice(&1u32.to_be_bytes());
                        write_sample_entry(b, track);
                    });
                    for empty in [b"stts", b"stsc", b"stco"] {
                        write_full_box(stbl, empty, 0, 0, |b| b.extend_from_slice(&0u32.to_be_bytes()));
                    }
                    write_full_box(stbl, b"stsz", 0, 0, |b| b.extend_from_slice(&[0; 8]));
                });
            });
        });
    });
}

fn write_sample_entry(out: &mut Vec<u8>, track: &TrackConfig) {
    match track {
        TrackConfig::Video { width, height, avcc } => write_box(out, b"avc1", |b| {
            b.extend_from_slice(&[0; 6]);
            b.extend_from_slice(&1u16.to_be_bytes()); // data reference index
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&u16::try_from(*width).unwrap_or(u16::MAX).to_be_bytes());
            b.extend_from_slice(&u16::try_from(*height).unwrap_or(u16::MAX).to_be_bytes());
            b.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi
            b.extend_from_slice(&0x0048_0000u32.to_be_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&1u16.to_be_bytes()); // frame count
            b.extend_from_slice(&[0; 32]); // compressor name
            b.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
            b.extend_from_slice(&0xffffu16.to_be_bytes()); // pre_defined = -1
            write_box(b, b"avcC", |c| c.extend_from_slice(avcc));
        }),
        TrackConfig::Audio { sample_rate, channels, audio_specific_config } => write_box(out, b"mp4a", |b| {
            b.extend_from_slice(&[0; 6]);
            b.extend_from_slice(&1u16.to_be_bytes());
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(&channels.to_be_bytes());
            b.extend_from_slice(&16u16.to_be_bytes()); // sample size
            b.extend_from_slice(&[0; 4]);
            // The sample rate as 16.16 fixed point; rates above 65535 Hz do not fit.
            b.extend_from_slice(&(sample_rate.min(&0xffff) << 16).to_be_bytes());
            write_full_box(b, b"esds", 0, 0, |e| write_es_descriptor(e, audio_specific_config));
        }),
    }
}

/// Writes the MPEG-4 ES_Descriptor of an AAC track (ISO/IEC 14496-1).
fn write_es_descriptor(out: &mut Vec<u8>, audio_specific_config: &[u8]) {
    let mut decoder_specific = Vec::new();
    write_descriptor(&mut decoder_specific, 0x05, audio_specific_config);

    let mut decoder_config = vec![
        0x40, // object type: MPEG-4 audio
        0x15, // stream type audio (5 << 2) with the reserved bit set
        0,
        0,
        0, // buffer size
    ];
    decoder_config.extend_from_slice(&0u32.to_be_bytes()); // max bit rate
    decoder_config.extend_from_slice(&0u32.to_be_bytes()); // average bit rate
    decoder_config.extend_from_slice(&decoder_specific);

    let mut es = Vec::new();
    es.extend_from_slice(&(AUDIO_TRACK_ID as u16).to_be_bytes());
    es.push(0); // no stream dependence, URL or OCR stream
    write_descriptor(&mut es, 0x04, &decoder_config);
    write_descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    write_descriptor(out, 0x03, &es);
}

/// Writes an MPEG-4 descriptor with its size in the four-byte expandable form.
fn write_descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len() as u32;
    out.extend_from_slice(&[
        0x80 | ((len >> 21) & 0x7f) as u8,
        0x80 | ((len >> 14) & 0x7f) as u8,
        0x80 | ((len >> 7) & 0x7f) as u8,
        (len & 0x7f) as u8,
    ]);
    out.extend_from_slice(body);
}

fn write_unity_matrix(out: &mut Vec<u8>) {
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn write_full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    write_box(out, kind, |b| {
        b.push(version);
        b.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(b);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a buffer into its top-level boxes: (type, whole box bytes).
    fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut found = Vec::new();
        let mut rest = data;
        while rest.len() >= 8 {
            let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!(size >= 8, "box size {size}");
            assert!(size <= rest.len(), "box size {size} with {} bytes left", rest.len());
            found.push((rest[4..8].try_into().unwrap(), &rest[..size]));
            rest = &rest[size..];
        }
        assert!(rest.is_empty(), "{} trailing bytes", rest.len());
        found
    }

    fn video() -> TrackConfig {
        TrackConfig::Video { width: 1280, height: 720, avcc: vec![1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0] }
    }

    #[test]
    fn init_segment_nests_sizes_exactly() {
        let audio = TrackConfig::Audio { sample_rate: 48_000, channels: 2, audio_specific_config: vec![0x11, 0x90] };
        let init = init_segment(&[video(), audio]);
        let top = boxes(&init);
        assert_eq!(top.iter().map(|(kind, _)| kind).collect::<Vec<_>>(), [b"ftyp", b"moov"]);
        let moov = boxes(&top[1].1[8..]);
        let kinds: Vec<_> = moov.iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, [b"mvhd", b"trak", b"trak", b"mvex"]);
    }

    #[test]
    fn data_offsets_point_at_each_tracks_samples() {
        let runs = [
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: 360_000,
                samples: vec![
                    Sample { duration: 3000, sync: true, composition_offset: 0, data: vec![0xaa; 10] },
                    Sample { duration: 3000, sync: false, composition_offset: 0, data: vec![0xbb; 5] },
                ],
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: 192_000,
                samples: vec![Sample { duration: 1024, sync: true, composition_offset: 0, data: vec![0xcc; 7] }],
            },
        ];
        let segment = media_segment(3, &runs);
        let top = boxes(&segment);
        assert_eq!(top[0].0, *b"moof");
        assert_eq!(top[1].0, *b"mdat");
        let moof_len = top[0].1.len();
        // Find each trun's data offset by scanning for the box type.
        let offsets: Vec<usize> = segment[..moof_len]
            .windows(4)
            .enumerate()
            .filter(|(_, window)| *window == b"trun")
            .map(|(at, _)| u32::from_be_bytes(segment[at + 12..at + 16].try_into().unwrap()) as usize)
            .collect();
        assert_eq!(offsets.len(), 2);
        assert_eq!(&segment[offsets[0]..offsets[0] + 10], &[0xaa; 10]);
        assert_eq!(&segment[offsets[0] + 10..offsets[0] + 15], &[0xbb; 5]);
        assert_eq!(&segment[offsets[1]..offsets[1] + 7], &[0xcc; 7]);
        assert_eq!(segment.len(), offsets[1] + 7);
    }

    #[test]
    fn composition_offsets_use_a_version_1_trun() {
        let sample = |offset: i32, sync| Sample { duration: 3000, sync, composition_offset: offset, data: vec![1; 4] };
        let plain = media_segment(1, &[TrackRun { track_id: VIDEO_TRACK_ID, base_decode_time: 0, samples: vec![sample(0, true)] }]);
        let at = plain.windows(4).position(|window| window == b"trun").unwrap();
        assert_eq!(&plain[at + 4..at + 8], &[0, 0, 0x07, 0x01], "no offsets: version 0, no offset field");
        let samples = vec![sample(0, true), sample(6000, false), sample(-3000, false)];
        let reordered = media_segment(1, &[TrackRun { track_id: VIDEO_TRACK_ID, base_decode_time: 0, samples }]);
        let at = reordered.windows(4).position(|window| window == b"trun").unwrap();
        assert_eq!(&reordered[at + 4..at + 8], &[1, 0, 0x0f, 0x01]);
        let size = u32::from_be_bytes(reordered[at - 4..at].try_into().unwrap()) as usize;
        // Header 8 + version/flags 4 + count 4 + offset 4, then 16 bytes a sample.
        assert_eq!(size, 20 + 3 * 16);
        let last_offset = i32::from_be_bytes(reordered[at - 4 + size - 4..at - 4 + size].try_into().unwrap());
        assert_eq!(last_offset, -3000);
    }

    #[test]
    fn empty_runs_are_left_out() {
        let runs = [TrackRun { track_id: AUDIO_TRACK_ID, base_decode_time: 0, samples: vec![] }];
        let segment = media_segment(1, &runs);
        assert!(!segment.windows(4).any(|window| window == b"traf"));
    }
}
