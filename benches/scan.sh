#!/usr/bin/env bash
# Benchmarks the library scanner on a 10,000-file household library.
#
# Builds a tree of real copies (one inode each, no hard links or reflinks) of
# the sample media in /usr/share/forensics-samples/original-files and
# /usr/share/sounds/freedesktop/stereo, then measures, in the same run:
#   - the first `hearth scan --json` on a fresh data dir (files/s and MB/s),
#   - an unchanged rescan on the same data dir,
#   - the hashing cost alone: `find | xargs -0 sha256sum` with one process and
#     with one process per core (the scanner runs one worker per core), and
#     `openssl dgst -sha256` with one process (SHA-NI where the CPU has it,
#     as in Hearth's sha2 crate),
#   - the cost of one `gst-discoverer-1.0` process per distinct audio or video
#     sample (process start included, so an upper bound on probe cost),
#   - first scans of the photo, music and video folders alone,
#   - last, first scans after a short unique trailer is appended to every
#     copy, so that no two files share a SHA-256 (copies of one sample share
#     content, which the scanner's move detection pays for).
# When the page cache can be dropped (root, writable /proc/sys/vm/drop_caches)
# every measurement runs twice, cold and warm; otherwise only warm.
#
# Usage: benches/scan.sh            (about 6 minutes on 2 cores)
# Environment:
#   HEARTH_BIN     hearth binary [default: $CARGO_TARGET_DIR/release/hearth,
#                  built with `cargo build --release -p hearth-server` if missing]
#   BENCH_TMPDIR   where the tree and data dirs go [default: ${TMPDIR:-/tmp}];
#                  needs about 3.6 GB free
#   BENCH_COLD     1 to try cold-cache runs, 0 to skip them [default: 1]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
samples=/usr/share/forensics-samples/original-files
sounds=/usr/share/sounds/freedesktop/stereo
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/hearth-target}
hearth=${HEARTH_BIN:-$CARGO_TARGET_DIR/release/hearth}
cold=${BENCH_COLD:-1}

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/hearth-scan-bench.XXXXXX")
cleanup() {
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tree=$work/library
mkdir -p "$tree"

# Prints the current time in nanoseconds.
now_ns() {
    date +%s%N
}

# Prints the milliseconds elapsed since START_NS.
elapsed_ms() {
    local start_ns=$1
    echo $((($(now_ns) - start_ns) / 1000000))
}

# Prints "load average: a, b, c" from uptime.
load_now() {
    uptime | sed 's/.*load average/load average/'
}

# Drops the page cache, dentries and inodes. Returns non-zero when the kernel
# does not allow it (not root, or /proc/sys read-only in a container).
drop_caches() {
    sync
    { echo 3 > /proc/sys/vm/drop_caches; } 2> /dev/null
}

if [[ ! -x $hearth ]]; then
    echo "building $hearth (cargo build --release -p hearth-server)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-server)
fi
# A private copy, so a build in the shared target dir cannot swap the binary
# between two measurements.
hearth_built=$(date -u -r "$hearth" '+%Y-%m-%d %H:%M UTC')
cp "$hearth" "$work/hearth"
hearth_source=$hearth
hearth=$work/hearth
# Debian 12's sha256sum (coreutils 9.1, not linked to libcrypto) hashes in
# portable C. OpenSSL and Hearth's sha2 0.10 switch to SHA-NI at run time on
# CPUs that have it, so openssl shows the hashing cost Hearth pays there.
openssl=$(command -v openssl || true)
for tool in sha256sum xargs find jq; do
    if ! command -v "$tool" > /dev/null; then
        echo "missing tool: $tool; install it and run again" >&2
        exit 1
    fi
done

# The library: COUNT copies of each source file, spread over folders of at
# most 100 files, in the shape a household library takes (photos by year and
# month, music by artist and album, videos by year). Counts aim at about 60 %
# photos, 38 % music and 2 % videos, with under 4 GB on disk.
source_count=0
photo_count=0
music_count=0
video_count=0

# Copies SOURCE COUNT times into the photo folders.
add_photos() {
    local source=$1 count=$2 ext=${1##*.} i dir
    source_count=$((source_count + 1))
    for ((i = 0; i < count; i++)); do
        dir=$tree/Photos/$((2015 + photo_count / 600))/$(printf '%02d' $((photo_count / 50 % 12 + 1)))
        [[ -d $dir ]] || mkdir -p "$dir"
        cp --reflink=never "$source" "$dir/IMG_$(printf '%05d' "$photo_count").$ext"
        photo_count=$((photo_count + 1))
    done
}

# Copies SOURCE COUNT times into the music folders.
add_music() {
    local source=$1 count=$2 ext=${1##*.} i dir
    source_count=$((source_count + 1))
    for ((i = 0; i < count; i++)); do
        dir="$tree/Music/Artist $((music_count / 120))/Album $((music_count / 12 % 10))"
        [[ -d $dir ]] || mkdir -p "$dir"
        cp --reflink=never "$source" "$dir/$(printf '%02d' $((music_count % 12 + 1))) Track $music_count.$ext"
        music_count=$((music_count + 1))
    done
}

# Copies SOURCE COUNT times into the video folders.
add_videos() {
    local source=$1 count=$2 ext=${1##*.} i dir
    source_count=$((source_count + 1))
    for ((i = 0; i < count; i++)); do
        dir=$tree/Videos/$((2015 + video_count / 25))
        [[ -d $dir ]] || mkdir -p "$dir"
        cp --reflink=never "$source" "$dir/VID_$(printf '%04d' "$video_count").$ext"
        video_count=$((video_count + 1))
    done
}

echo "building the library in $tree"
build_start=$(now_ns)

add_photos "$samples/pic2/IMG_20191224_234846.jpg" 80
add_photos "$samples/pic2/IMG_20200608_111614.jpg" 80
add_photos "$samples/pic1/IMG_20200827_231612.jpg" 80
add_photos "$samples/pic2/IMG_20200124_231153.jpg" 80
add_photos "$samples/pic1/IMG_1054.JPG" 1000
add_photos "$samples/pic1/IMG-20191006-WA0002.jpg" 2480
add_photos "$samples/pic2/d-debian.jpg" 1000
add_photos "$samples/pic2/d-debian.png" 300
add_photos "$samples/pic1/debian.png" 400
add_photos "$samples/pic1/debian_logo.jpg" 300
add_photos "$samples/pic1/debian_logo.png" 200

# The regular .oga files (27 on Debian 12, without the symlinks) get 15
# copies each. debian.mp3 comes last and fills the music share to 3,800 files.
while IFS= read -r -d '' sound; do
    add_music "$sound" 15
done < <(find "$sounds" -maxdepth 1 -type f -name '*.oga' -print0 | sort -z)
add_music "$samples/audio2/deleted.mp3" 1000
add_music "$samples/audio1/debian.ogg" 600
add_music "$samples/audio2/deleted.ogg" 300
add_music "$samples/audio1/debian.wav" 30
add_music "$samples/audio2/deleted.wav" 20
add_music "$samples/audio1/debian.mp3" $((3800 - music_count))

add_videos "$samples/movie1/VID_20191220_170832.mp4" 80
add_videos "$samples/movie2/movie-hello.mp4" 60
add_videos "$samples/movie2/movie-hello.avi" 20
add_videos "$samples/movie2/movie-hello.mpeg" 20
add_videos "$samples/movie2/movie-hello.ogg" 20
sync

build_ms=$(elapsed_ms "$build_start")
file_count=$(find "$tree" -type f | wc -l)
tree_bytes=$(find "$tree" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
tree_mb=$(awk -v b="$tree_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
inodes=$(find "$tree" -type f -printf '%i\n' | sort -u | wc -l)
echo "library: $file_count files ($photo_count photos, $music_count music, $video_count videos) copied from $source_count sample files, $tree_mb MB, $inodes distinct inodes, built in $build_ms ms"
for kind in Photos Music Videos; do
    echo "  $kind: $(du -sh --apparent-size "$tree/$kind" | cut -f1)"
done

# Rows of the results table: label, wall ms, files, bytes, load.
results=()

# Records one result row.
record() {
    local label=$1 ms=$2 files=$3 bytes=$4
    results+=("$label|$ms|$files|$bytes|$(load_now)")
    echo "  $label: $ms ms ($(load_now))"
}

# Hashes every file with the command that follows (sha256sum or openssl dgst
# -sha256), JOBS processes at once, and records LABEL.
hash_tree() {
    local label=$1 jobs=$2 start
    shift 2
    start=$(now_ns)
    find "$tree" -type f -print0 | xargs -0 -P "$jobs" -n 500 "$@" > /dev/null
    record "$label" "$(elapsed_ms "$start")" "$file_count" "$tree_bytes"
}

# Runs `hearth scan --json` on LIBRARY with DATA_DIR and records LABEL with
# the scanner's own elapsed_ms. EXPECT is "first" (every file added) or
# "rescan" (every file unchanged). Stops the benchmark when the counts differ.
scan_tree() {
    local label=$1 library=$2 data_dir=$3 expect=$4
    local files bytes start output wall_ms scan_ms discovered unchanged added
    files=$(find "$library" -type f | wc -l)
    bytes=$(find "$library" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')

    start=$(now_ns)
    output=$("$hearth" scan --library "$library" --data-dir "$data_dir" --json 2> "$work/scan-stderr.log")
    wall_ms=$(elapsed_ms "$start")
    scan_ms=$(jq -r '.summary.elapsed_ms' <<< "$output")
    discovered=$(jq -r '.summary.discovered' <<< "$output")
    unchanged=$(jq -r '.summary.unchanged' <<< "$output")
    added=$(jq -r '.summary.added' <<< "$output")
    echo "  summary: $(jq -c '.summary' <<< "$output") (process wall time $wall_ms ms)"

    if [[ $discovered != "$files" ]]; then
        echo "scan of $library discovered $discovered files, expected $files" >&2
        exit 1
    fi
    if [[ $expect == first && $added != "$files" ]]; then
        echo "first scan of $library added $added items, expected $files; problems:" >&2
        "$hearth" scan --library "$library" --data-dir "$data_dir" --json --report 2> /dev/null | jq -c '.problems[]' | head -n 20 >&2
        exit 1
    fi
    if [[ $expect == rescan && $unchanged != "$files" ]]; then
        echo "rescan of $library found $unchanged unchanged files, expected $files" >&2
        exit 1
    fi

    # A rescan reads no file contents, so it gets no MB/s.
    if [[ $expect == rescan ]]; then
        bytes=0
    fi
    record "$label" "$scan_ms" "$files" "$bytes"
}

# Runs one round of every measurement. CACHE is "cold" or "warm".
run_round() {
    local cache=$1 data_dir=$work/data-$1
    local prepare=:
    if [[ $cache == cold ]]; then
        prepare=drop_caches
    else
        # Reads the whole tree once so every later read is a cache hit.
        find "$tree" -type f -print0 | xargs -0 cat > /dev/null
    fi

    echo "$cache cache:"
    $prepare
    hash_tree "sha256sum, 1 process ($cache)" 1 sha256sum
    $prepare
    hash_tree "sha256sum, $(nproc) processes ($cache)" "$(nproc)" sha256sum
    if [[ -n $openssl ]]; then
        $prepare
        hash_tree "openssl dgst -sha256, 1 process ($cache)" 1 openssl dgst -sha256
    fi
    $prepare
    scan_tree "hearth scan, first ($cache)" "$tree" "$data_dir" first
    $prepare
    scan_tree "hearth scan, unchanged rescan ($cache)" "$tree" "$data_dir" rescan
}

# First scans of each top folder alone, warm, to show where the time goes:
# photos are probed from their header and EXIF, audio and video through
# GStreamer's discoverer.
run_kinds() {
    local kind
    echo "warm cache, one folder at a time:"
    for kind in Photos Music Videos; do
        scan_tree "hearth scan, first, $kind only (warm)" "$tree/$kind" "$work/data-$kind" first
    done
}

echo
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
echo "hearth: $hearth_source ($("$hearth" --version), built $hearth_built, SHA-256 $(sha256sum < "$hearth" | cut -c1-12))"
echo "load at start: $(uptime | sed 's/.*load average: //')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"

can_drop=no
if [[ $cold == 1 ]] && drop_caches; then
    can_drop=yes
fi
echo "page cache drop (sync; echo 3 > /proc/sys/vm/drop_caches): $can_drop"
echo

if [[ $can_drop == yes ]]; then
    run_round cold
fi
run_round warm
run_kinds

# The copies share content: up to 2,480 files have the same SHA-256. The
# scanner checks each new file's hash against every stored item with that
# hash (a moved file keeps its item), so these groups cost more than distinct
# files would. Giving every copy a unique trailer that its format ignores
# shows the scan rate of a library without duplicates, in the same run.
make_copies_unique() {
    local file number=0
    while IFS= read -r -d '' file; do
        number=$((number + 1))
        case ${file##*.} in
            # A 28-byte ISO BMFF `free` box, so the top-level boxes still
            # end exactly at the end of the file.
            mp4) printf '\x00\x00\x00\x1cfreehearth-bench-%07d' "$number" >> "$file" ;;
            # Lands after JPEG's EOI, PNG's IEND, the size a RIFF header
            # (WAV, AVI) declares, or the last Ogg page, MPEG-PS pack or MP3
            # frame. Hearth's probe of each sample was the same with it.
            *) printf 'hearth-bench-%07d' "$number" >> "$file" ;;
        esac
    done < <(find "$tree" -type f -print0)
}

echo
echo "unique content (a 20- or 28-byte trailer appended to every copy):"
make_copies_unique
hash_command=(sha256sum)
if [[ -n $openssl ]]; then
    hash_command=(openssl dgst -sha256 -r)
fi
# Also reads the whole tree, so the scans below run warm.
unique_hashes=$(find "$tree" -type f -print0 | xargs -0 -P "$(nproc)" -n 500 "${hash_command[@]}" | cut -d' ' -f1 | sort -u | wc -l)
echo "  distinct SHA-256 values: $unique_hashes of $file_count files"
scan_tree "hearth scan, first, unique content (warm)" "$tree" "$work/data-unique" first
for kind in Photos Music; do
    scan_tree "hearth scan, first, $kind only, unique (warm)" "$tree/$kind" "$work/data-unique-$kind" first
done

# Probe cost per file: one gst-discoverer-1.0 process per distinct audio or
# video source, three times each, warm cache. Includes process start and
# GStreamer registry load, which the scanner pays once per process.
if command -v gst-discoverer-1.0 > /dev/null; then
    echo
    echo "gst-discoverer-1.0, 3 runs per file (warm cache):"
    probe_total_ms=0
    probe_runs=0
    for source in "$samples"/audio1/* "$samples"/audio2/* "$samples"/movie1/* "$samples"/movie2/* "$sounds/bell.oga"; do
        start=$(now_ns)
        for run in 1 2 3; do
            gst-discoverer-1.0 "$source" > /dev/null 2>&1 || echo "  gst-discoverer-1.0 failed on $source (run $run)" >&2
        done
        ms=$(elapsed_ms "$start")
        probe_total_ms=$((probe_total_ms + ms))
        probe_runs=$((probe_runs + 3))
        printf '  %-28s %6.1f ms per run\n' "${source##*/}" "$(awk -v t="$ms" 'BEGIN { print t / 3 }')"
    done
    echo "  mean: $(awk -v t="$probe_total_ms" -v n="$probe_runs" 'BEGIN { printf "%.1f", t / n }') ms per file ($(load_now))"
else
    echo "gst-discoverer-1.0 not installed; probe cost not measured"
fi

echo
echo "Results ($file_count files, $tree_mb MB):"
printf '| %-50s | %9s | %9s | %8s | %-26s |\n' "run" "time (s)" "files/s" "MB/s" "load at end (1, 5, 15 min)"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..28})"
for row in "${results[@]}"; do
    IFS='|' read -r label ms files bytes load <<< "$row"
    awk -v label="$label" -v ms="$ms" -v files="$files" -v bytes="$bytes" -v load="${load#load average: }" 'BEGIN {
        s = (ms > 0 ? ms : 1) / 1000
        mbps = (bytes > 0 ? sprintf("%.1f", bytes / 1e6 / s) : "-")
        printf "| %-50s | %9.2f | %9.0f | %8s | %-26s |\n", label, ms / 1000, files / s, mbps, load
    }'
done
