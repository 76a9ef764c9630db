//! MPEG transport stream segments (ISO/IEC 13818-1) for native HLS players,
//! such as those of TVs, which may not read fMP4.
//!
//! Each segment is self-contained: it opens with the PAT and PMT, then carries
//! the segment's frames as PES packets in decode order, video and audio
//! interleaved. H.264 goes out in Annex B form with an access unit
//! delimiter, and with the SPS and PPS in front of every key frame; AAC goes
//! out with ADTS headers. Continuity counters start at 0 in every segment,
//! since a segment made after a seek cannot know the packets before it.
//!
//! Time stamps are the segment's times in the film at 90 kHz plus
//! [`TIME_OFFSET`], which leaves room for decode times before presentation
//! times (B-frames in a copied stream).

use super::fmp4::{AUDIO_TRACK_ID, TrackConfig, TrackRun, VIDEO_TIMESCALE, VIDEO_TRACK_ID};

const PACKET: usize = 188;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
/// Stream types in the PMT.
const STREAM_H264: u8 = 0x1b;
const STREAM_AAC_ADTS: u8 = 0x0f;
/// Added to every time stamp, in 90 kHz ticks: 1.4 s.
pub const TIME_OFFSET: u64 = 126_000;
/// Decode times run this far before presentation times, in 90 kHz ticks,
/// so a reordered frame's decode time never passes its presentation time.
const DECODE_LEAD: u64 = 18_000;

/// One PES packet waiting to be cut into transport packets.
struct Pes {
    pid: u16,
    dts: u64,
    pts: u64,
    key: bool,
    payload: Vec<u8>,
}

/// Writes one transport stream segment holding `runs`, whose codec set-up
/// is in `configs`. Returns `None` when a run's track has no set-up.
pub(crate) fn segment(runs: &[TrackRun], configs: &[TrackConfig]) -> Option<Vec<u8>> {
    let video = configs.iter().find(|config| matches!(config, TrackConfig::Video { .. }));
    let audio = configs.iter().find(|config| matches!(config, TrackConfig::Audio { .. }));
    let mut pes = Vec::new();
    for run in runs {
        match run.track_id {
            VIDEO_TRACK_ID => video_pes(run, video?, &mut pes)?,
            AUDIO_TRACK_ID => audio_pes(run, audio?, &mut pes)?,
            _ => return None,
        }
    }
    // Decode order across both streams; video first on a tie.
    pes.sort_by_key(|packet| (packet.dts, packet.pid));

    let pcr_pid = if video.is_some() { VIDEO_PID } else { AUDIO_PID };
    let mut counters = [0u8; 4];
    let mut out = Vec::with_capacity(pes.iter().map(|p| p.payload.len()).sum::<usize>() * 105 / 100 + 2 * PACKET);
    write_section(&mut out, PAT_PID, &pat(), &mut counters[0]);
    write_section(&mut out, PMT_PID, &pmt(video.is_some(), audio.is_some(), pcr_pid), &mut counters[3]);
    for packet in pes {
        let counter = if packet.pid == VIDEO_PID { &mut counters[1] } else { &mut counters[2] };
        // A clock reference at the start of every frame of the PCR stream:
        // ISO/IEC 13818-1 requires one at least every 100 ms, and frames come
        // more often than that.
        let pcr = (packet.pid == pcr_pid).then_some(packet.dts.saturating_sub(DECODE_LEAD / 2));
        write_pes(&mut out, &packet, pcr, counter);
    }
    Some(out)
}

fn video_pes(run: &TrackRun, config: &TrackConfig, out: &mut Vec<Pes>) -> Option<()> {
    let TrackConfig::Video { avcc, .. } = config else { return None };
    let (length_size, parameter_sets) = parse_avcc(avcc)?;
    let mut decode = run.base_decode_time;
    for sample in &run.samples {
        let presentation = decode.checked_add_signed(i64::from(sample.composition_offset)).unwrap_or(0);
        let mut payload = vec![0, 0, 0, 1, 0x09, 0xf0]; // access unit delimiter
        if sample.sync {
            for set in &parameter_sets {
                payload.extend_from_slice(&[0, 0, 0, 1]);
                payload.extend_from_slice(set);
            }
        }
        let mut rest = sample.data.as_slice();
        while rest.len() >= length_size {
            let length = rest[..length_size].iter().fold(0usize, |n, byte| (n << 8) | usize::from(*byte));
            let nal = rest.get(length_size..length_size + length)?;
            payload.extend_from_slice(&[0, 0, 0, 1]);
            payload.extend_from_slice(nal);
            rest = &rest[length_size + length..];
        }
        out.push(Pes {
            pid: VIDEO_PID,
            dts: decode + TIME_OFFSET - DECODE_LEAD,
            pts: presentation + TIME_OFFSET,
            key: sample.sync,
            payload,
        });
        decode += u64::from(sample.duration);
    }
    Some(())
}

fn audio_pes(run: &TrackRun, config: &TrackConfig, out: &mut Vec<Pes>) -> Option<()> {
    let TrackConfig::Audio { sample_rate, audio_specific_config, .. } = config else { return None };
    let (object, frequency, channels) = parse_asc(audio_specific_config)?;
    let mut decode = run.base_decode_time;
    for sample in &run.samples {
        let time = decode * u64::from(VIDEO_TIMESCALE) / u64::from(*sample_rate) + TIME_OFFSET;
        let mut payload = adts_header(object, frequency, channels, sample.data.len())?.to_vec();
        payload.extend_from_slice(&sample.data);
        out.push(Pes { pid: AUDIO_PID, dts: time, pts: time, key: true, payload });
        decode += u64::from(sample.duration);
    }
    Some(())
}

/// Returns the NAL length size and the SPS and PPS of an
/// AVCDecoderConfigurationRecord.
fn parse_avcc(avcc: &[u8]) -> Option<(usize, Vec<Vec<u8>>)> {
    let length_size = usize::from(*avcc.get(4)? & 0x03) + 1;
    let mut sets = Vec::new();
    let mut at = 5;
    let sps_count = usize::from(*avcc.get(at)? & 0x1f);
    at += 1;
    for _ in 0..sps_count {
        let length = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
        sets.push(avcc.get(at + 2..at + 2 + length)?.to_vec());
        at += 2 + length;
    }
    let pps_count = usize::from(*avcc.get(at)?);
    at += 1;
    for _ in 0..pps_count {
        let length = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
        sets.push(avcc.get(at + 2..at + 2 + length)?.to_vec());
        at += 2 + length;
    }
    Some((length_size, sets))
}

/// Returns the object type, sampling frequency index and channel
/// configuration of an AudioSpecificConfig.
fn parse_asc(asc: &[u8]) -> Option<(u8, u8, u8)> {
    let (first, second) = (*asc.first()?, *asc.get(1)?);
    let object = first >> 3;
    let frequency = ((first & 0x07) << 1) | (second >> 7);
    let channels = (second >> 3) & 0x0f;
    (object > 0 && object <= 4 && frequency < 13 && channels > 0 && channels < 8).then_some((object, frequency, channels))
}

/// Returns the 7-byte ADTS header of one AAC frame of `length` bytes.
fn adts_header(object: u8, frequency: u8, channels: u8, length: usize) -> Option<[u8; 7]> {
    let total = length + 7;
    if total >= 1 << 13 {
        return None;
    }
    Some([
        0xff,
        0xf1, // MPEG-4, layer 0, no CRC
        ((object - 1) << 6) | (frequency << 2) | (channels >> 2),
        ((channels & 0x03) << 6) | (total >> 11) as u8,
        (total >> 3) as u8,
        (((total & 0x07) as u8) << 5) | 0x1f,
        0xfc, // buffer fullness 0x7ff, one raw data block
    ])
}

fn pat() -> Vec<u8> {
    let mut body = vec![0x00, 0x01]; // program 1
    body.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
    section(0x00, 1, &body)
}

fn pmt(video: bool, audio: bool, pcr_pid: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xf000u16.to_be_bytes()); // no program descriptors
    for (present, stream_type, pid) in [(video, STREAM_H264, VIDEO_PID), (audio, STREAM_AAC_ADTS, AUDIO_PID)] {
        if present {
            body.push(stream_type);
            body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
            body.extend_from_slice(&0xf000u16.to_be_bytes());
        }
    }
    section(0x02, 1, &body)
}

/// Builds a PSI section with table id `table`, id `id` and `body`, CRC included.
fn section(table: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut out = vec![table, 0xb0 | ((length >> 8) as u8 & 0x0f), length as u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0xc1, 0x00, 0x00]); // version 0, current; section 0 of 0
    out.extend_from_slice(body);
    let crc = crc32_mpeg2(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn write_section(out: &mut Vec<u8>, pid: u16, section: &[u8], counter: &mut u8) {
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | (*counter & 0x0f)]);
    *counter = counter.wrapping_add(1);
    out.push(0); // pointer field
    out.extend_from_slice(section);
    out.resize(start + PACKET, 0xff);
}

/// Cuts one PES packet into transport packets.
fn write_pes(out: &mut Vec<u8>, packet: &Pes, pcr: Option<u64>, counter: &mut u8) {
    let mut header = vec![0, 0, 1, if packet.pid == VIDEO_PID { 0xe0 } else { 0xc0 }];
    let with_dts = packet.dts != packet.pts;
    let header_data = if with_dts { 10 } else { 5 };
    let pes_length = 3 + header_data + packet.payload.len();
    // Video PES packets may leave the length open (0); audio ones fit.
    let length_field = if packet.pid == VIDEO_PID || pes_length > 0xffff { 0 } else { pes_length as u16 };
    header.extend_from_slice(&length_field.to_be_bytes());
    header.push(0x80); // marker bits
    header.push(if with_dts { 0xc0 } else { 0x80 });
    header.push(header_data as u8);
    write_timestamp(&mut header, if with_dts { 0x3 } else { 0x2 }, packet.pts);
    if with_dts {
        write_timestamp(&mut header, 0x1, packet.dts);
    }
    let mut data = header;
    data.extend_from_slice(&packet.payload);

    let mut rest = data.as_slice();
    let mut first = true;
    while !rest.is_empty() {
        // The adaptation field after its length byte: flags and PCR on the first packet.
        let mut adaptation: Option<Vec<u8>> = None;
        if first && ((packet.key && packet.pid == VIDEO_PID) || pcr.is_some()) {
            let mut flags = 0u8;
            if packet.key && packet.pid == VIDEO_PID {
                flags |= 0x40; // random access indicator
            }
            let mut field = vec![flags];
            if let Some(pcr) = pcr {
                field[0] |= 0x10;
                let base = pcr & ((1 << 33) - 1);
                field.extend_from_slice(&[(base >> 25) as u8, (base >> 17) as u8, (base >> 9) as u8, (base >> 1) as u8]);
                field.extend_from_slice(&[(((base & 1) as u8) << 7) | 0x7e, 0x00]);
            }
            adaptation = Some(field);
        }
        let room = PACKET - 4 - adaptation.as_ref().map_or(0, |field| field.len() + 1);
        let take = rest.len().min(room);
        let short = room - take;
        if short > 0 {
            // Stuffing goes into the adaptation field, made for it if need be.
            match &mut adaptation {
                Some(field) => field.resize(field.len() + short, 0xff),
                None if short == 1 => adaptation = Some(Vec::new()),
                None => {
                    let mut field = vec![0x00];
                    field.resize(short - 1, 0xff);
                    adaptation = Some(field);
                }
            }
        }
        write_packet(out, packet.pid, first, counter, adaptation.as_deref(), &rest[..take]);
        rest = &rest[take..];
        first = false;
    }
}

/// Writes one transport packet: header, adaptation field (its bytes after
/// the length byte) when there is one, and `payload`.
fn write_packet(out: &mut Vec<u8>, pid: u16, start: bool, counter: &mut u8, adaptation: Option<&[u8]>, payload: &[u8]) {
    let begin = out.len();
    let control = if adaptation.is_some() { 0x30 } else { 0x10 };
    let start_flag = if start { 0x40 } else { 0 };
    out.extend_from_slice(&[0x47, start_flag | ((pid >> 8) as u8 & 0x1f), pid as u8, control | (*counter & 0x0f)]);
    *counter = counter.wrapping_add(1);
    if let Some(field) = adaptation {
        out.push(field.len() as u8);
        out.extend_from_slice(field);
    }
    out.extend_from_slice(payload);
    debug_assert_eq!(out.len() - begin, PACKET, "a transport packet is 188 bytes");
}

fn write_timestamp(out: &mut Vec<u8>, prefix: u8, time: u64) {
    let t = time & ((1 << 33) - 1);
    out.push((prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1);
    out.extend_from_slice(&((((t >> 15) & 0x7fff) << 1 | 1) as u16).to_be_bytes());
    out.extend_from_slice(&((((t & 0x7fff) << 1) | 1) as u16).to_be_bytes());
}

/// CRC-32/MPEG-2 of PSI sections.
fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::fmp4::Sample;

    fn avcc() -> Vec<u8> {
        // Version 1, High profile, level 3.1, 4-byte lengths, one SPS, one PPS.
        let mut record = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f];
        record.extend_from_slice(&[0x01, 0x00, 0x02, 0x68, 0xee]);
        record
    }

    #[test]
    fn crc_matches_check_value() {
        // CRC-32/MPEG-2 check value of "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn packets_have_sync_and_flags() {
        let video = TrackConfig::Video { width: 320, height: 240, avcc: avcc() };
        let audio = TrackConfig::Audio { sample_rate: 48_000, channels: 2, audio_specific_config: vec![0x11, 0x90] };
        let nal = |size: usize| {
            let mut data = (size as u32).to_be_bytes().to_vec();
            data.extend(std::iter::repeat_n(0x65, size));
            data
        };
        let runs = [
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: 180_000,
                samples: (0..5)
                    .map(|i| Sample { duration: 3600, sync: i == 0, composition_offset: if i == 1 { 7200 } else { 0 }, data: nal(150 + i * 400) })
                    .collect(),
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: 96_000,
                samples: (0..3).map(|i| Sample { duration: 1024, sync: true, composition_offset: 0, data: vec![0x21; 180 + i] }).collect(),
            },
        ];
        let bytes = segment(&runs, &[video, audio]).expect("segment");
        assert_eq!(bytes.len() % PACKET, 0);
        assert!(bytes.chunks(PACKET).all(|packet| packet[0] == 0x47));
        let pid = |packet: &[u8]| (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let starts: Vec<u16> = bytes.chunks(PACKET).filter(|packet| packet[1] & 0x40 != 0).map(pid).collect();
        assert_eq!(starts[..2], [PAT_PID, PMT_PID]);
        assert_eq!(starts.iter().filter(|p| **p == VIDEO_PID).count(), 5, "one PES a frame");
        assert_eq!(starts.iter().filter(|p| **p == AUDIO_PID).count(), 3);
        // Every frame of the PCR stream (video) starts with a clock reference.
        let video_starts: Vec<&[u8]> = bytes.chunks(PACKET).filter(|packet| packet[1] & 0x40 != 0 && pid(packet) == VIDEO_PID).collect();
        assert!(video_starts.iter().all(|packet| packet[3] & 0x20 != 0 && packet[5] & 0x10 != 0), "a frame without a PCR");
        // The first video packet carries a random access flag and a PCR.
        let first_video = bytes.chunks(PACKET).find(|packet| pid(packet) == VIDEO_PID).unwrap();
        assert_eq!(first_video[3] & 0x30, 0x30, "adaptation field present");
        assert_eq!(first_video[5] & 0x50, 0x50, "random access and PCR flags");
        // Continuity counters count up per PID.
        let counters: Vec<u8> = bytes.chunks(PACKET).filter(|packet| pid(packet) == VIDEO_PID).map(|packet| packet[3] & 0x0f).collect();
        assert!(counters.iter().enumerate().all(|(i, c)| usize::from(*c) == i % 16), "{counters:?}");
    }

    #[test]
    fn adts_headers_carry_the_frame_length() {
        let header = adts_header(2, 3, 2, 100).unwrap();
        assert_eq!(header[..2], [0xff, 0xf1]);
        let length = (usize::from(header[3] & 0x03) << 11) | (usize::from(header[4]) << 3) | usize::from(header[5] >> 5);
        assert_eq!(length, 107);
        assert_eq!(parse_asc(&[0x11, 0x90]), Some((2, 3, 2)), "AAC-LC, 48 kHz, stereo");
    }
}
