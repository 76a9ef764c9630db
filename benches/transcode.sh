#!/usr/bin/env bash
# Benchmarks Hearth's HLS transcoder (hearth_media::hls, x264enc) against the
# ffmpeg command line with the same encoder settings, on the same file, in one
# run:
#   - time to first segment: a new playback session requests the init segment
#     and then segment 0, and the example repeats this BENCH_TTFS_RUNS times.
#   - whole-file speed: media duration / wall time, for Hearth fetching every
#     segment in order, and for one ffmpeg process writing fragmented MP4.
# Hearth and ffmpeg runs alternate (H F, F H, H F, ...), BENCH_ROUNDS rounds.
# Both processes are timed with bash's `time`, so both wall times include
# process start and opening the file. The example also reports its own
# wall time from the first request to the last segment.
#
# Without FILE the script makes a 60 s 1920x1080 30 fps H.264 + AAC MP4 from
# ffmpeg's testsrc2 pattern. Light temporal noise makes every frame change.
# The video runs at about 10 Mbit/s with a keyframe every 2 s, and the audio
# is a 48 kHz stereo tone.
#
# Usage: benches/transcode.sh [FILE]      (about 5 minutes on 2 cores)
# Environment:
#   HLS_BENCH_BIN    hls_bench example binary [default: built with
#                    `cargo build --release -p hearth-media --example hls_bench`
#                    into $CARGO_TARGET_DIR, default ~/.cache/hearth-target]
#   BENCH_RENDITION  1080p, 720p, 480p or 360p [default: 720p]
#   BENCH_ROUNDS     alternating Hearth/ffmpeg rounds [default: 3]
#   BENCH_TTFS_RUNS  time-to-first-segment runs [default: 5]
# Needs: ffmpeg and ffprobe (with libx264), jq, GStreamer with x264enc,
# gst-libav and the good plug-ins (scripts/install-deps).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/hearth-target}
rendition=${BENCH_RENDITION:-720p}
rounds=${BENCH_ROUNDS:-3}
ttfs_runs=${BENCH_TTFS_RUNS:-5}
input=${1:-}

if [[ ! $rounds =~ ^[1-9][0-9]*$ ]]; then
    echo "invalid BENCH_ROUNDS '$rounds': expected a whole number of 1 or more" >&2
    exit 2
fi
if [[ ! $ttfs_runs =~ ^[1-9][0-9]*$ ]]; then
    echo "invalid BENCH_TTFS_RUNS '$ttfs_runs': expected a whole number of 1 or more" >&2
    exit 2
fi
if [[ -n $input && ! -f $input ]]; then
    echo "FILE '$input' not found" >&2
    exit 2
fi
for tool in ffmpeg ffprobe jq; do
    if ! command -v "$tool" > /dev/null; then
        echo "missing tool: $tool; install it and run again" >&2
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-transcode-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Prints "a, b, c" (load averages over 1, 5 and 15 minutes).
load_now() {
    uptime | sed 's/.*load average: //'
}

# Prints the 1-minute load average.
load1() {
    cut -d ' ' -f 1 /proc/loadavg
}

# Prints the median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ value[NR] = $1 } END {
        if (NR == 0) { exit 1 }
        if (NR % 2) { printf "%.3f\n", value[(NR + 1) / 2] }
        else { printf "%.3f\n", (value[NR / 2] + value[NR / 2 + 1]) / 2 }
    }'
}

# Runs "$@" with stdout in $1.out and stderr in $1.err, and writes
# "wall user system" in seconds to $1.time. Exits with the command's
# stderr when it fails.
timed() {
    local name=$1
    shift
    local TIMEFORMAT='%3R %3U %3S'
    if ! { time "$@" > "$name.out" 2> "$name.err"; } 2> "$name.time"; then
        echo "failed: $*" >&2
        cat "$name.err" >&2
        exit 1
    fi
}

# Prints the x264 settings string that libx264 writes into its first SEI.
x264_options() {
    grep -a -m 1 -o 'x264 - core.*' "$1" | tr -c '[:print:]' '\n' | head -n 1 | sed 's/.* - options: //'
}

if [[ -n ${HLS_BENCH_BIN:-} ]]; then
    bench_source=$HLS_BENCH_BIN
else
    echo "building hls_bench (cargo build --release -p hearth-media --example hls_bench)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-media --example hls_bench)
    bench_source=$CARGO_TARGET_DIR/release/examples/hls_bench
fi
# A private copy, so a build in the shared target dir cannot swap the binary
# between two measurements.
bench_built=$(date -u -r "$bench_source" '+%Y-%m-%d %H:%M UTC')
cp "$bench_source" "$work/hls_bench"
bench=$work/hls_bench

if [[ -z $input ]]; then
    input=$work/input.mp4
    echo "making a 60 s 1920x1080 30 fps H.264 + AAC test file" >&2
    ffmpeg -nostdin -hide_banner -loglevel error \
        -f lavfi -i 'testsrc2=size=1920x1080:rate=30:duration=60' \
        -f lavfi -i 'sine=frequency=440:beep_factor=4:sample_rate=48000:duration=60' \
        -vf 'noise=alls=4:allf=t' -c:v libx264 -preset veryfast -b:v 10M -maxrate 15M -bufsize 20M -g 60 \
        -pix_fmt yuv420p \
        -c:a aac -b:a 192k -ac 2 -movflags +faststart "$input"
fi

probe=$(ffprobe -v error -show_entries format=duration:stream=codec_type,width,height -of json "$input")
duration_ms=$(jq -r '.format.duration | tonumber * 1000 | floor' <<< "$probe")
width=$(jq -r '[.streams[] | select(.codec_type == "video")][0].width // empty' <<< "$probe")
height=$(jq -r '[.streams[] | select(.codec_type == "video")][0].height // empty' <<< "$probe")
has_audio=$(jq -r '[.streams[] | select(.codec_type == "audio")] | length > 0' <<< "$probe")
if [[ -z $width || -z $height ]]; then
    echo "$input has no video stream that ffprobe can read" >&2
    exit 1
fi
audio_flags=()
[[ $has_audio == true ]] || audio_flags=(--no-audio)
duration_s=$(awk -v ms="$duration_ms" 'BEGIN { printf "%.3f", ms / 1000 }')

echo "machine: $(nproc) cores, $(grep -m 1 '^model name' /proc/cpuinfo | sed 's/.*: //'), load $(load_now)"
echo "input: $input, ${width}x$height, $duration_s s, audio: $has_audio"
echo "hls_bench: $bench_source (built $bench_built)"
echo "ffmpeg: $(ffmpeg -version | head -n 1)"

# Time to first segment, and the rendition's output size and bit rate,
# which the ffmpeg baseline then uses.
echo "time to first segment, $ttfs_runs cold runs (load $(load_now))"
timed "$work/ttfs" "$bench" "$input" "$duration_ms" "$width" "$height" "$rendition" \
    --ttfs-runs "$ttfs_runs" --whole-runs 0 "${audio_flags[@]}"
ttfs_json=$(cat "$work/ttfs.out")
echo "  $ttfs_json"
out_width=$(jq -r '.output.width' <<< "$ttfs_json")
out_height=$(jq -r '.output.height' <<< "$ttfs_json")
video_kbps=$(jq -r '.video_kbps' <<< "$ttfs_json")
audio_kbps=$(jq -r '.audio_bps / 1000' <<< "$ttfs_json")
# Hearth keeps two x264enc defaults: pass=cbr, which sets the VBV maximum
# rate to the bit rate, and vbv-buf-capacity=600 ms, the VBV buffer size.
vbv_kbit=$((video_kbps * 600 / 1000))

# The ffmpeg command with x264enc's settings in Hearth's pipeline
# (crates/hearth-media/src/hls/pipeline.rs). videoscale's default method is
# bilinear. The script compares the x264 settings strings of both outputs
# after the first round.
ffmpeg_args=(-nostdin -hide_banner -loglevel error -y -i "$input" -map 0:v:0
    -vf "scale=$out_width:$out_height:flags=bilinear" -pix_fmt yuv420p
    -c:v libx264 -preset veryfast -profile:v main -b:v "${video_kbps}k" -maxrate "${video_kbps}k"
    -bufsize "${vbv_kbit}k" -bf 0 -g 600 -force_key_frames 'expr:gte(t,n_forced*4)')
if [[ $has_audio == true ]]; then
    ffmpeg_args+=(-map 0:a:0 -c:a aac -b:a "${audio_kbps}k" -ar 48000 -ac 2)
fi
ffmpeg_args+=(-f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof "$work/ffmpeg.mp4")
echo "ffmpeg ${ffmpeg_args[*]}"

# One line per run: round, tool, wall, user, system, wall from the first
# request (Hearth only), load before, load after, output bytes.
results=$work/results.tsv
: > "$results"

run_hearth() {
    local round=$1 before after wall user system inner bytes
    before=$(load1)
    timed "$work/hearth-$round" "$bench" "$input" "$duration_ms" "$width" "$height" "$rendition" \
        --ttfs-runs 0 --whole-runs 1 --output "$work/hearth.mp4" "${audio_flags[@]}"
    after=$(load1)
    read -r wall user system < "$work/hearth-$round.time"
    inner=$(jq -r '.whole_wall_ms[0] / 1000' "$work/hearth-$round.out")
    bytes=$(jq -r '.whole_bytes' "$work/hearth-$round.out")
    printf '%s\thearth\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wall" "$user" "$system" "$inner" "$before" "$after" "$bytes" >> "$results"
    echo "  round $round hearth: ${wall} s wall (${inner} s from the first request), ${user} s user, ${system} s system, load $before -> $after"
}

run_ffmpeg() {
    local round=$1 before after wall user system bytes
    before=$(load1)
    timed "$work/ffmpeg-$round" ffmpeg "${ffmpeg_args[@]}"
    after=$(load1)
    read -r wall user system < "$work/ffmpeg-$round.time"
    bytes=$(stat -c %s "$work/ffmpeg.mp4")
    printf '%s\tffmpeg\t%s\t%s\t%s\t-\t%s\t%s\t%s\n' "$round" "$wall" "$user" "$system" "$before" "$after" "$bytes" >> "$results"
    echo "  round $round ffmpeg: ${wall} s wall, ${user} s user, ${system} s system, load $before -> $after"
}

echo "whole-file transcodes, $rounds rounds (load $(load_now))"
for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then
        run_hearth "$round"
        run_ffmpeg "$round"
    else
        run_ffmpeg "$round"
        run_hearth "$round"
    fi
    if ((round == 1)); then
        hearth_x264=$(x264_options "$work/hearth.mp4")
        ffmpeg_x264=$(x264_options "$work/ffmpeg.mp4")
        if [[ $hearth_x264 == "$ffmpeg_x264" ]]; then
            echo "  x264 settings match: $hearth_x264"
        else
            echo "  WARNING: the x264 settings differ" >&2
            echo "    hearth: $hearth_x264" >&2
            echo "    ffmpeg: $ffmpeg_x264" >&2
        fi
    fi
done

# Prints the median of column $2 for tool $1.
column_median() {
    awk -F '\t' -v tool="$1" -v column="$2" '$2 == tool { print $column }' "$results" | median
}

hearth_wall=$(column_median hearth 3)
hearth_inner=$(column_median hearth 6)
ffmpeg_wall=$(column_median ffmpeg 3)
hearth_cpu=$(awk -F '\t' '$2 == "hearth" { print $4 + $5 }' "$results" | median)
ffmpeg_cpu=$(awk -F '\t' '$2 == "ffmpeg" { print $4 + $5 }' "$results" | median)
speed() {
    awk -v d="$duration_s" -v t="$1" 'BEGIN { printf "%.3f", d / t }'
}
hearth_speed=$(speed "$hearth_wall")
hearth_inner_speed=$(speed "$hearth_inner")
ffmpeg_speed=$(speed "$ffmpeg_wall")
ratio=$(awk -v a="$hearth_speed" -v b="$ffmpeg_speed" 'BEGIN { printf "%.3f", a / b }')
inner_ratio=$(awk -v a="$hearth_inner_speed" -v b="$ffmpeg_speed" 'BEGIN { printf "%.3f", a / b }')
# On a busy machine a process's share of the cores depends on how many
# threads it keeps runnable, so CPU time is the second view of the cost.
cpu_ratio=$(awk -v a="$hearth_cpu" -v b="$ffmpeg_cpu" 'BEGIN { printf "%.3f", a / b }')

echo
echo "per run (round, tool, wall s, user s, system s, wall from first request s, load before, load after, output bytes):"
cat "$results"
echo
echo "summary ($rendition, ${out_width}x$out_height at $video_kbps kbit/s, $duration_s s of media, medians of $rounds runs):"
echo "  time to first segment: median $(jq -r '.ttfs_median_ms | floor' <<< "$ttfs_json") ms," \
    "min $(jq -r '.ttfs_min_ms | floor' <<< "$ttfs_json") ms, max $(jq -r '.ttfs_max_ms | floor' <<< "$ttfs_json") ms"
echo "  hearth: $hearth_wall s wall, speed ${hearth_speed}x ($hearth_inner s and ${hearth_inner_speed}x from the first request), $hearth_cpu s CPU"
echo "  ffmpeg: $ffmpeg_wall s wall, speed ${ffmpeg_speed}x, $ffmpeg_cpu s CPU"
echo "  speed ratio hearth/ffmpeg: $ratio (from the first request: $inner_ratio)"
echo "  CPU time ratio hearth/ffmpeg (user + system): $cpu_ratio"
echo "  load at end: $(load_now)"
