#!/usr/bin/env bash
# Benchmarks GET /api/v1/items/{id}/stream under load with oha, against nginx
# serving the same file over TLS 1.3 on 127.0.0.1 in the same run.
#
# Starts `hearth serve` on the sample library with a fresh data dir and a free
# port, waits for the start-up scan, picks the largest video and runs
# fixed-duration oha loads at 16 and 64 connections (HTTP/1.1, keep-alive):
#   - probe:  Range: bytes=0-1
#   - 1 MiB:  a 1 MiB range starting at the middle of the file
#   - full:   the whole file, no Range header
# then the same loads against nginx (when installed), and GET /api/v1/health on
# Hearth as the per-request overhead of the server without file I/O.
# oha trusts the household CA with --cacert (no --insecure). The script counts
# the key-exchange groups in Hearth's "TLS connection established" log lines.
#
# Usage: benches/range_get.sh      (about 5 minutes with the defaults)
# Environment:
#   HEARTH_BIN        hearth binary [default: $CARGO_TARGET_DIR/release/hearth,
#                     built with `cargo build --release -p hearth-server` if missing]
#   BENCH_LIBRARY     library folder [default: /usr/share/forensics-samples/original-files]
#   BENCH_DURATION    length of each load [default: 10s]
#   BENCH_CONNECTIONS connection counts, space-separated [default: "16 64"]
#   BENCH_ROUNDS      times the whole set of loads runs [default: 2]
# Needs: oha (installed with `cargo install oha --locked` when missing), curl,
# jq, openssl; nginx for the baseline (Debian: `apt-get install nginx`).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/hearth-target}
hearth=${HEARTH_BIN:-$CARGO_TARGET_DIR/release/hearth}
library=${BENCH_LIBRARY:-/usr/share/forensics-samples/original-files}
duration=${BENCH_DURATION:-10s}
read -r -a connection_counts <<< "${BENCH_CONNECTIONS:-16 64}"
rounds=${BENCH_ROUNDS:-2}

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-range-bench.XXXXXX")
hearth_pid=
nginx_pid=

cleanup() {
    if [[ -n $hearth_pid ]]; then
        kill "$hearth_pid" 2> /dev/null || true
        wait "$hearth_pid" 2> /dev/null || true
    fi
    if [[ -n $nginx_pid ]]; then
        kill "$nginx_pid" 2> /dev/null || true
        wait "$nginx_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints "a, b, c" (load averages over 1, 5 and 15 minutes).
load_now() {
    uptime | sed 's/.*load average: //'
}

# Prints a TCP port on 127.0.0.1 that nothing listens on. Gives up after 50
# random tries.
free_port() {
    local try port
    for ((try = 0; try < 50; try++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found on 127.0.0.1 after 50 tries" >&2
    return 1
}

# Waits until "host:port" accepts TCP connections, for at most 10 s.
wait_for_port() {
    local address=$1 try
    for ((try = 0; try < 100; try++)); do
        if (exec 3<> "/dev/tcp/${address%:*}/${address##*:}") 2> /dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on $address after 10 s" >&2
    return 1
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
if ! command -v oha > /dev/null; then
    echo "oha not found; installing it from crates.io (cargo install oha --locked)" >&2
    cargo install oha --locked
fi
for tool in curl jq openssl; do
    if ! command -v "$tool" > /dev/null; then
        echo "missing tool: $tool; install it and run again" >&2
        exit 1
    fi
done

# Hearth, on a fresh data dir. RUST_LOG=info keeps the per-connection
# "TLS connection established" lines, which name the key-exchange group.
data_dir=$work/data
: > "$work/hearth.out"
RUST_LOG=info "$hearth" serve --library "$library" --listen 127.0.0.1:0 --data-dir "$data_dir" --no-watch \
    > "$work/hearth.out" 2> "$work/hearth.err" &
hearth_pid=$!

hearth_url=
for ((try = 0; try < 100; try++)); do
    hearth_url=$(sed -n 's/^ *Listening: *\(https:\/\/[^ ]*\).*/\1/p' "$work/hearth.out")
    [[ -n $hearth_url ]] && break
    if ! kill -0 "$hearth_pid" 2> /dev/null; then
        echo "hearth serve exited at start; its log:" >&2
        cat "$work/hearth.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $hearth_url ]]; then
    echo "hearth serve printed no Listening line in 10 s" >&2
    exit 1
fi
ca=$data_dir/tls/ca.pem
# Host commands on the admin socket: the script runs as the server's user.
host_api() {
    curl -sf --unix-socket "$data_dir/admin.sock" "http://localhost$1" "${@:2}"
}

# Waits for the start-up scan (at most 60 s).
phase=
for ((try = 0; try < 120; try++)); do
    phase=$(host_api /api/v1/scan | jq -r '.latest.phase // empty' || true)
    [[ $phase == done ]] && break
    sleep 0.5
done
if [[ $phase != done ]]; then
    echo "start-up scan not done after 60 s (phase: ${phase:-none})" >&2
    exit 1
fi

items=$(host_api "/api/v1/items?limit=500")
video=$(jq -c '[(.items // .)[] | select(.mime | startswith("video/"))] | max_by(.size)' <<< "$items")
if [[ -z $video || $video == null ]]; then
    echo "no video item in $library" >&2
    exit 1
fi
video_id=$(jq -r '.id' <<< "$video")
video_size=$(jq -r '.size' <<< "$video")
video_mime=$(jq -r '.mime' <<< "$video")
# A media grant, as a <video> element uses: no header, valid 4 hours.
stream_url=$hearth_url$(host_api "/api/v1/items/$video_id/grant" -X POST | jq -r '.stream_url')

# The file on disk, for nginx; its hash must match the item's.
video_detail=$(host_api "/api/v1/items/$video_id")
video_file=$library/$(jq -r '.path' <<< "$video_detail")
if [[ $(sha256sum < "$video_file" | cut -d' ' -f1) != "$(jq -r '.sha256' <<< "$video_detail")" ]]; then
    echo "$video_file does not match the SHA-256 of item $video_id" >&2
    exit 1
fi

# A 1 MiB range from the middle of the file, or the whole file if smaller.
mid_start=$((video_size / 2))
mid_end=$((mid_start + 1048575))
if ((mid_end >= video_size)); then
    mid_start=0
    mid_end=$((video_size > 1048576 ? 1048575 : video_size - 1))
fi
mid_range="bytes=$mid_start-$mid_end"

# Checks that one request returns the expected status and body length.
# Arguments: CA file, URL, Range value (empty for none), status, length.
check_response() {
    local cafile=$1 url=$2 range=$3 expect_status=$4 expect_length=$5 status length
    local -a headers=()
    [[ -n $range ]] && headers+=(-H "Range: $range")
    read -r status length < <(curl -s --cacert "$cafile" -o /dev/null -w '%{http_code} %{size_download}\n' "${headers[@]}" "$url")
    if [[ $status != "$expect_status" || $length != "$expect_length" ]]; then
        echo "GET $url ${range:+(Range: $range) }returned $status with $length bytes, expected $expect_status with $expect_length" >&2
        exit 1
    fi
}

# nginx, when installed: the same file over TLS 1.3 with an ECDSA P-256
# certificate (as Hearth's) from a throwaway CA. Debian's nginx links OpenSSL
# 3.0, which has no ML-KEM, so it negotiates X25519.
nginx_url=
if command -v nginx > /dev/null; then
    nginx_dir=$work/nginx
    mkdir -p "$nginx_dir/root" "$nginx_dir/logs" "$nginx_dir/tmp"
    : > "$nginx_dir/logs/tls.log"
    cp "$video_file" "$nginx_dir/root/video"
    # nginx workers started by root run as the user nobody, who must reach
    # the file.
    chmod 0711 "$work" "$nginx_dir"
    chmod -R a+rX "$nginx_dir/root"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=bench CA" \
        -keyout "$nginx_dir/ca.key" -out "$nginx_dir/ca.pem" 2> /dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$nginx_dir/server.key" -out "$nginx_dir/server.csr" 2> /dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$nginx_dir/ext.cnf"
    openssl x509 -req -in "$nginx_dir/server.csr" -CA "$nginx_dir/ca.pem" -CAkey "$nginx_dir/ca.key" -CAcreateserial \
        -days 1 -extfile "$nginx_dir/ext.cnf" -out "$nginx_dir/server.pem" 2> /dev/null
    nginx_port=$(free_port)
    cat > "$nginx_dir/nginx.conf" << EOF
daemon off;
worker_processes auto;
pid $nginx_dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    # One line per connection (its first request), naming the group as
    # Hearth's log does for its connections.
    map \$connection_requests \$first_request { 1 1; default 0; }
    log_format tls 'TLS connection established group="\$ssl_curve" protocol=\$ssl_protocol cipher=\$ssl_cipher';
    access_log $nginx_dir/logs/tls.log tls if=\$first_request;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path $nginx_dir/tmp/body;
    proxy_temp_path $nginx_dir/tmp/proxy;
    fastcgi_temp_path $nginx_dir/tmp/fastcgi;
    uwsgi_temp_path $nginx_dir/tmp/uwsgi;
    scgi_temp_path $nginx_dir/tmp/scgi;
    server {
        listen 127.0.0.1:$nginx_port ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $nginx_dir/server.pem;
        ssl_certificate_key $nginx_dir/server.key;
        root $nginx_dir/root;
        default_type $video_mime;
    }
}
EOF
    nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e stderr 2> "$work/nginx.err" &
    nginx_pid=$!
    wait_for_port "127.0.0.1:$nginx_port"
    nginx_url=https://127.0.0.1:$nginx_port
else
    echo "nginx not installed (Debian: apt-get install nginx); only /api/v1/health is measured as a baseline" >&2
fi

# Sanity checks before loading: status and length of each kind of request.
check_response "$ca" "$stream_url" "bytes=0-1" 206 2
check_response "$ca" "$stream_url" "$mid_range" 206 $((mid_end - mid_start + 1))
check_response "$ca" "$stream_url" "" 200 "$video_size"
if [[ -n $nginx_url ]]; then
    check_response "$nginx_dir/ca.pem" "$nginx_url/video" "bytes=0-1" 206 2
    check_response "$nginx_dir/ca.pem" "$nginx_url/video" "$mid_range" 206 $((mid_end - mid_start + 1))
    check_response "$nginx_dir/ca.pem" "$nginx_url/video" "" 200 "$video_size"
fi

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
echo "hearth: $hearth_source ($("$hearth" --version), built $hearth_built, SHA-256 $(sha256sum < "$hearth" | cut -c1-12)), oha: $(oha --version), nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///' || echo none)"
echo "load at start: $(uptime | sed 's/.*load average: //')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "video: $video_file ($video_mime, $video_size bytes, item $video_id); 1 MiB range: $mid_range"
echo

# Rows of the results table.
results=()
# Aggregated non-2xx statuses and client errors, for the report.
failures=()

# Runs one oha load and records a row (a load cut short by its duration
# waits for requests in flight, -w, so none is counted as aborted). Arguments: server, load, connections,
# CA file, URL, then extra oha arguments (headers).
run_load() {
    local server=$1 load=$2 connections=$3 cafile=$4 url=$5
    shift 5
    local json=$work/oha-$server-$load-$connections.json
    local tls_log=$work/hearth.err log_lines_before
    [[ $server == nginx ]] && tls_log=$nginx_dir/logs/tls.log
    log_lines_before=$(wc -l < "$tls_log")
    oha --no-tui -w -z "$duration" -c "$connections" --cacert "$cafile" --output-format json "$@" "$url" > "$json"

    local rps mbps p50 p99 total ok statuses errors groups
    groups=$(tls_groups_after "$tls_log" "$log_lines_before")
    rps=$(jq -r '.summary.requestsPerSec' "$json")
    mbps=$(jq -r '.summary.sizePerSec / 1e6' "$json")
    p50=$(jq -r '.latencyPercentiles.p50 * 1000' "$json")
    p99=$(jq -r '.latencyPercentiles.p99 * 1000' "$json")
    total=$(jq -r '[.statusCodeDistribution[]] | add // 0' "$json")
    ok=$(jq -r '.summary.successRate' "$json")
    statuses=$(jq -c '.statusCodeDistribution' "$json")
    errors=$(jq -c '.errorDistribution' "$json")
    if [[ $errors != "{}" ]] || jq -e '[.statusCodeDistribution | keys[] | select(startswith("2") | not)] | length > 0' "$json" > /dev/null; then
        failures+=("$server $load c=$connections: statuses $statuses, errors $errors")
    fi
    results+=("$round|$server|$load|$connections|$rps|$mbps|$p50|$p99|$groups|$(load_now)")
    printf '  %-7s %-6s c=%-3s %9.0f req/s %8.1f MB/s p50 %7.2f ms p99 %7.2f ms (%s requests, success %s, statuses %s, TLS %s, load %s)\n' \
        "$server" "$load" "$connections" "$rps" "$mbps" "$p50" "$p99" "$total" "$ok" "$statuses" "$groups" "$(load_now)"
}

# Prints the key-exchange groups of the TLS connections logged in LOG after
# line N, as "COUNT GROUP" pairs, e.g. "16 X25519MLKEM768".
tls_groups_after() {
    local log=$1 skip=$2
    tail -n +"$((skip + 1))" "$log" | grep 'TLS connection established' |
        sed -n 's/.* group="\{0,1\}\([A-Za-z0-9_]*\).*/\1/p' | sort | uniq -c |
        awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { if (NR == 0) printf "none" }'
}

# Runs LOAD at CONNECTIONS on Hearth, then on nginx when it runs. RANGE is
# the Range field value, empty for none.
run_pair() {
    local load=$1 connections=$2 range=$3
    local -a range_header=()
    [[ -n $range ]] && range_header=(-H "Range: $range")
    run_load hearth "$load" "$connections" "$ca" "$stream_url" "${range_header[@]}"
    if [[ -n $nginx_url ]]; then
        run_load nginx "$load" "$connections" "$nginx_dir/ca.pem" "$nginx_url/video" "${range_header[@]}"
    fi
}

# Hearth and nginx alternate load by load, so a change in the machine's
# other work affects both sides alike.
for ((round = 1; round <= rounds; round++)); do
    for connections in "${connection_counts[@]}"; do
        echo "round $round, $connections connections, $duration each:"
        run_pair probe "$connections" "bytes=0-1"
        run_pair 1MiB "$connections" "$mid_range"
        run_pair full "$connections" ""
        run_load hearth health "$connections" "$ca" "$hearth_url/api/v1/health"
    done
done

echo
echo "Key-exchange groups of all TLS connections Hearth accepted, curl's checks included: $(tls_groups_after "$work/hearth.err" 0)"
handshake_failures=$(grep -c 'TLS handshake failed\|TLS handshake timed out' "$work/hearth.err" || true)
echo "Failed or timed-out handshakes: $handshake_failures"
server_errors=$(grep -c ' ERROR \|panicked' "$work/hearth.err" || true)
echo "ERROR or panic lines in Hearth's log: $server_errors"
if ! kill -0 "$hearth_pid" 2> /dev/null; then
    echo "hearth serve is no longer running" >&2
fi
if [[ ${#failures[@]} -gt 0 ]]; then
    echo "Loads with errors or non-2xx statuses:"
    printf '  %s\n' "${failures[@]}"
fi

echo
echo "Results (oha, HTTP/1.1 keep-alive, $duration per load, latencies in ms):"
printf '| %5s | %-6s | %-6s | %5s | %9s | %8s | %8s | %8s | %-20s | %-18s |\n' \
    "round" "server" "load" "conns" "req/s" "MB/s" "p50" "p99" "TLS groups" "load (1, 5, 15)"
echo "|-------|--------|--------|-------|-----------|----------|----------|----------|----------------------|--------------------|"
for row in "${results[@]}"; do
    IFS='|' read -r round server load connections rps mbps p50 p99 groups load_avg <<< "$row"
    printf '| %5s | %-6s | %-6s | %5s | %9.0f | %8.1f | %8.2f | %8.2f | %-20s | %-18s |\n' \
        "$round" "$server" "$load" "$connections" "$rps" "$mbps" "$p50" "$p99" "$groups" "$load_avg"
done
