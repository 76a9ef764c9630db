#!/usr/bin/env bash
# Measures how the first scan's time grows with the number of files that share
# one content (one SHA-256), against the same number of distinct files.
#
# For N in 1000, 2000 and 4000 it builds two folders of N copies of a 1.7 KB
# PNG (debian_logo.png from the forensics samples): in one every copy is
# identical, in the other each copy ends with a unique 20-byte trailer after
# the PNG's IEND chunk, which image readers ignore. Each folder gets a first
# `hearth scan --json` on a fresh data dir. The file is small, so hashing and
# probing cost little and the difference is the per-file work that depends
# on how many stored items share the hash.
#
# Usage: benches/scan_duplicates.sh   (about 1-2 minutes on 2 cores)
# Environment:
#   HEARTH_BIN   hearth binary [default: $CARGO_TARGET_DIR/release/hearth,
#                built with `cargo build --release -p hearth-server` if missing]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_png=/usr/share/forensics-samples/original-files/pic1/debian_logo.png
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/hearth-target}
hearth=${HEARTH_BIN:-$CARGO_TARGET_DIR/release/hearth}

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-dup-bench.XXXXXX")
cleanup() {
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ! -x $hearth ]]; then
    echo "building $hearth (cargo build --release -p hearth-server)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-server)
fi
if ! command -v jq > /dev/null; then
    echo "missing tool: jq; install it and run again" >&2
    exit 1
fi
hearth_built=$(date -u -r "$hearth" '+%Y-%m-%d %H:%M UTC')
cp "$hearth" "$work/hearth"
hearth_source=$hearth
hearth=$work/hearth

# Fills FOLDER with COUNT copies of the PNG, 100 per subfolder. With MODE
# "unique", each copy gets its own trailer.
make_copies() {
    local folder=$1 count=$2 mode=$3 i dir
    for ((i = 0; i < count; i++)); do
        dir=$folder/$((i / 100))
        [[ -d $dir ]] || mkdir -p "$dir"
        cp --reflink=never "$source_png" "$dir/$i.png"
        if [[ $mode == unique ]]; then
            printf 'hearth-bench-%07d' "$i" >> "$dir/$i.png"
        fi
    done
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), kernel $(uname -r)"
echo "hearth: $hearth_source ($("$hearth" --version), built $hearth_built, SHA-256 $(sha256sum < "$hearth" | cut -c1-12))"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load at start: $(uptime | sed 's/.*load average: //')"
echo

rows=()
for count in 1000 2000 4000; do
    for mode in identical unique; do
        folder=$work/$mode-$count
        make_copies "$folder" "$count" "$mode"
        summary=$("$hearth" scan --library "$folder" --data-dir "$work/data-$mode-$count" --json 2> /dev/null | jq -c '.summary')
        added=$(jq -r '.added' <<< "$summary")
        if [[ $added != "$count" ]]; then
            echo "scan of $folder added $added items, expected $count: $summary" >&2
            exit 1
        fi
        ms=$(jq -r '.elapsed_ms' <<< "$summary")
        load=$(uptime | sed 's/.*load average: //')
        echo "  $count $mode files: $ms ms (load $load)"
        rows+=("$count|$mode|$ms|$load")
        rm -rf "$folder" "$work/data-$mode-$count"
    done
done

echo
echo "| files | content   | first scan (s) | files/s | load at end (1, 5, 15) |"
echo "|-------|-----------|----------------|---------|------------------------|"
for row in "${rows[@]}"; do
    IFS='|' read -r count mode ms load <<< "$row"
    awk -v count="$count" -v mode="$mode" -v ms="$ms" -v load="$load" 'BEGIN {
        printf "| %5d | %-9s | %14.2f | %7.0f | %-22s |\n", count, mode, ms / 1000, count / ((ms > 0 ? ms : 1) / 1000), load
    }'
done
