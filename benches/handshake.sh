#!/usr/bin/env bash
# Benchmarks full TLS 1.3 handshakes per second on Hearth with X25519MLKEM768
# against X25519, and against nginx with X25519, in the same run.
#
# Starts `hearth serve` on an empty library with a fresh data dir, and nginx
# serving the same 15-byte health document over TLS 1.3 with an ECDSA P-256
# certificate from a throwaway CA of the same key type. The load client is the hearth-pqc example
# `handshake_load`: THREADS threads open connection after connection for a
# fixed time, each a full handshake (resumption disabled) followed by one
# `GET /api/v1/health` with `Connection: close`. It checks the negotiated
# group and the 200 status of every connection and counts the TLS bytes each
# handshake reads and writes on the TCP socket. The three targets alternate
# within each round, in a rotated order, so a change in the machine's other
# work affects them alike:
#   - hearth-hybrid:  Hearth, client policy HybridPreferred (X25519MLKEM768)
#   - hearth-x25519:  Hearth, client policy ClassicalOnly (X25519)
#   - nginx-x25519:   nginx, client policy ClassicalOnly (X25519)
# Server CPU time per handshake comes from /proc/PID/stat of the server
# processes (nginx: master and workers) before and after each load.
#
# Usage: benches/handshake.sh      (about 3 minutes with the defaults)
# Environment:
#   HEARTH_BIN      hearth binary [default: $CARGO_TARGET_DIR/release/hearth,
#                   built with `cargo build --release -p hearth-server` if missing]
#   LOAD_BIN        load client [default: $CARGO_TARGET_DIR/release/examples/handshake_load,
#                   built with `cargo build --release -p hearth-pqc --example handshake_load` if missing]
#   BENCH_SECONDS   length of each load in seconds [default: 10]
#   BENCH_THREADS   concurrent connections (client threads) [default: 4]
#   BENCH_ROUNDS    times the three loads run [default: 5]
# Needs: openssl, ps; nginx for the baseline (Debian: `apt-get install nginx`),
# run as the user nobody through setpriv (util-linux) when the script runs as root.
# Sends traffic only to 127.0.0.1.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/hearth-target}
hearth=${HEARTH_BIN:-$CARGO_TARGET_DIR/release/hearth}
load_client=${LOAD_BIN:-$CARGO_TARGET_DIR/release/examples/handshake_load}
seconds=${BENCH_SECONDS:-10}
threads=${BENCH_THREADS:-4}
rounds=${BENCH_ROUNDS:-5}
# The goal: hybrid handshakes at no less than this fraction of the X25519 rate.
goal_ratio=0.95

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-handshake-bench.XXXXXX")
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

# Prints the CPU time (user + system) of PID and its child processes, in
# clock ticks (USER_HZ, `getconf CLK_TCK`). Threads are included in a
# process's own figure.
cpu_ticks() {
    local pid=$1 total=0 child fields
    local -a values
    for child in "$pid" $(ps -o pid= --ppid "$pid"); do
        # Fields 14 and 15 of proc(5); the command name in parentheses may
        # contain spaces, so count from the last ')'.
        fields=$(sed 's/.*) //' "/proc/$child/stat" 2> /dev/null) || continue
        read -r -a values <<< "$fields"
        total=$((total + values[11] + values[12]))
    done
    echo "$total"
}

if [[ ! -x $hearth ]]; then
    echo "building $hearth (cargo build --release -p hearth-server)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-server)
fi
if [[ ! -x $load_client ]]; then
    echo "building $load_client (cargo build --release -p hearth-pqc --example handshake_load)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-pqc --example handshake_load)
fi
# Private copies, so a build in the shared target dir cannot swap a binary
# between two measurements.
hearth_built=$(date -u -r "$hearth" '+%Y-%m-%d %H:%M UTC')
load_built=$(date -u -r "$load_client" '+%Y-%m-%d %H:%M UTC')
hearth_source=$hearth
cp "$hearth" "$work/hearth"
cp "$load_client" "$work/handshake_load"
hearth=$work/hearth
load_client=$work/handshake_load
if ! command -v openssl > /dev/null; then
    echo "missing tool: openssl; install it and run again" >&2
    exit 1
fi
clock_ticks=$(getconf CLK_TCK)

# Hearth, on an empty library and a fresh data dir. RUST_LOG is left at the
# server's default (info), which logs one line per TLS connection.
mkdir -p "$work/library"
data_dir=$work/data
: > "$work/hearth.out"
HEARTH_CONFIG=/dev/null "$hearth" serve --library "$work/library" --listen 127.0.0.1:0 --data-dir "$data_dir" --no-watch \
    > "$work/hearth.out" 2> "$work/hearth.err" &
hearth_pid=$!

hearth_addr=
for ((try = 0; try < 100; try++)); do
    hearth_addr=$(sed -n 's/^ *Listening: *https:\/\/\([^ ]*\).*/\1/p' "$work/hearth.out")
    [[ -n $hearth_addr ]] && break
    if ! kill -0 "$hearth_pid" 2> /dev/null; then
        echo "hearth serve exited at start; its log:" >&2
        cat "$work/hearth.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $hearth_addr ]]; then
    echo "hearth serve printed no Listening line in 10 s" >&2
    exit 1
fi
ca=$data_dir/tls/ca.pem

# nginx: the health document over TLS 1.3 with an ECDSA P-256 certificate for
# 127.0.0.1 signed by a throwaway ECDSA P-256 CA made here, so both servers
# send the same chain shape (leaf and a CA of the same key type). Hearth's
# household CA key is sealed in its key store and cannot sign this leaf.
# Debian's nginx links OpenSSL 3.0, which has no ML-KEM.
# It runs as the user nobody (when this script is root), without a `user`
# directive, so master and workers are unprivileged.
nginx_addr=
if command -v nginx > /dev/null; then
    nginx_dir=$work/nginx
    mkdir -p "$nginx_dir/root/api/v1" "$nginx_dir/logs" "$nginx_dir/tmp"
    printf '{"status":"ok"}' > "$nginx_dir/root/api/v1/health"
    nginx_ca=$nginx_dir/ca.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=handshake.sh nginx CA" \
        -addext basicConstraints=critical,CA:TRUE,pathlen:0 -addext keyUsage=critical,keyCertSign,cRLSign \
        -days 1 -keyout "$nginx_dir/ca.key" -out "$nginx_ca" 2> /dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$nginx_dir/server.key" -out "$nginx_dir/server.csr" 2> /dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        > "$nginx_dir/ext.cnf"
    openssl x509 -req -in "$nginx_dir/server.csr" -CA "$nginx_ca" -CAkey "$nginx_dir/ca.key" -CAcreateserial \
        -CAserial "$nginx_dir/ca.srl" -days 1 -extfile "$nginx_dir/ext.cnf" -out "$nginx_dir/leaf.pem" 2> /dev/null
    cat "$nginx_dir/leaf.pem" "$nginx_ca" > "$nginx_dir/chain.pem"
    nginx_port=$(free_port)
    cat > "$nginx_dir/nginx.conf" << EOF
daemon off;
worker_processes $(nproc);
pid $nginx_dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    log_format tls 'TLS connection established group="\$ssl_curve" protocol=\$ssl_protocol status=\$status';
    access_log $nginx_dir/logs/tls.log tls;
    client_body_temp_path $nginx_dir/tmp/body;
    proxy_temp_path $nginx_dir/tmp/proxy;
    fastcgi_temp_path $nginx_dir/tmp/fastcgi;
    uwsgi_temp_path $nginx_dir/tmp/uwsgi;
    scgi_temp_path $nginx_dir/tmp/scgi;
    server {
        listen 127.0.0.1:$nginx_port ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $nginx_dir/chain.pem;
        ssl_certificate_key $nginx_dir/server.key;
        root $nginx_dir/root;
        default_type application/json;
    }
}
EOF
    nginx_command=(nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e stderr)
    if [[ $(id -u) == 0 ]]; then
        chown -R nobody:nogroup "$nginx_dir"
        # Search permission only: the data dir keeps its own mode.
        chmod 0711 "$work"
        nginx_command=(setpriv --reuid=nobody --regid=nogroup --clear-groups -- "${nginx_command[@]}")
    fi
    "${nginx_command[@]}" 2> "$work/nginx.err" &
    nginx_pid=$!
    wait_for_port "127.0.0.1:$nginx_port"
    nginx_addr=127.0.0.1:$nginx_port
else
    echo "nginx not installed (Debian: apt-get install nginx); only Hearth is measured" >&2
fi

targets=(hearth-hybrid hearth-x25519)
[[ -n $nginx_addr ]] && targets+=(nginx-x25519)

# Runs one load against TARGET for DURATION seconds. With "record", adds a
# row to the results; otherwise it is a warm-up that only has to succeed.
run_load() {
    local target=$1 duration=$2 mode=${3:-}
    local addr=$hearth_addr pid=$hearth_pid group=x25519 trust=$ca
    case $target in
        hearth-hybrid) group=x25519mlkem768 ;;
        nginx-x25519) addr=$nginx_addr pid=$nginx_pid trust=$nginx_ca ;;
    esac

    local before after line
    before=$(cpu_ticks "$pid")
    if ! line=$("$load_client" --addr "$addr" --ca "$trust" --group "$group" --path /api/v1/health \
        --threads "$threads" --seconds "$duration" 2> "$work/load.err"); then
        echo "load on $target failed: $line $(cat "$work/load.err")" >&2
        exit 1
    fi
    after=$(cpu_ticks "$pid")
    [[ $mode == record ]] || return 0

    local -A field
    local pair
    for pair in $line; do
        field[${pair%%=*}]=${pair#*=}
    done
    local server_cpu_ms
    server_cpu_ms=$(awk -v ticks=$((after - before)) -v hz="$clock_ticks" -v n="${field[connections]}" \
        'BEGIN { printf "%.3f", ticks * 1000 / hz / n }')
    results+=("$round|$target|${field[connections]}|${field[seconds]}|${field[rate]}|${field[p50_ms]}|${field[p99_ms]}|$server_cpu_ms|${field[client_cpu_ms]}|${field[handshake_written]}|${field[handshake_read]}|${field[total_written]}|${field[total_read]}|$(load_now)")
    printf '  %-14s %6s handshakes in %ss: %8s/s  p50 %5s ms  p99 %6s ms  server CPU %s ms  client CPU %s ms  handshake bytes out/in %s/%s  load %s\n' \
        "$target" "${field[connections]}" "${field[seconds]}" "${field[rate]}" "${field[p50_ms]}" "${field[p99_ms]}" \
        "$server_cpu_ms" "${field[client_cpu_ms]}" "${field[handshake_written]}" "${field[handshake_read]}" "$(load_now)"
}

# Prints the key-exchange groups in the "TLS connection established" lines
# of LOG as "COUNT GROUP" pairs.
tls_groups() {
    grep 'TLS connection established' "$1" | sed -n 's/.* group="\{0,1\}\([A-Za-z0-9_]*\).*/\1/p' | sort | uniq -c |
        awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { if (NR == 0) printf "none" }'
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
echo "hearth: $hearth_source ($("$hearth" --version), built $hearth_built, SHA-256 $(sha256sum < "$hearth" | cut -c1-12))"
echo "load client: handshake_load (built $load_built, SHA-256 $(sha256sum < "$load_client" | cut -c1-12)), $threads threads, ${seconds}s per load, $rounds rounds"
echo "nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///' || echo none), $(openssl version)"
echo "load at start: $(load_now)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo

# Warm-up: one second per target, which also checks that every target
# responds with the expected group and status.
for target in "${targets[@]}"; do
    run_load "$target" 1
done

results=()
for ((round = 1; round <= rounds; round++)); do
    echo "round $round:"
    for ((i = 0; i < ${#targets[@]}; i++)); do
        run_load "${targets[(i + round - 1) % ${#targets[@]}]}" "$seconds" record
    done
done

echo
echo "Key-exchange groups Hearth logged (warm-up included): $(tls_groups "$work/hearth.err")"
echo "Failed or timed-out handshakes in Hearth's log: $(grep -c 'TLS handshake failed\|TLS handshake timed out' "$work/hearth.err" || true)"
echo "ERROR or panic lines in Hearth's log: $(grep -c ' ERROR \|panicked' "$work/hearth.err" || true)"
if [[ -n $nginx_addr ]]; then
    echo "Key-exchange groups nginx logged (warm-up included): $(tls_groups "$nginx_dir/logs/tls.log")"
    echo "nginx error log lines: $(wc -l < "$work/nginx.err")"
fi

echo
echo "Results ($threads threads, ${seconds}s per load; CPU times are per handshake):"
printf '| %5s | %-13s | %7s | %8s | %6s | %7s | %10s | %10s | %9s | %9s | %-18s |\n' \
    round target conns "conn/s" "p50 ms" "p99 ms" "server ms" "client ms" "hs out/in" "conn out/in" "load (1, 5, 15)"
echo "|-------|---------------|---------|----------|--------|---------|------------|------------|-----------|-----------|--------------------|"
for row in "${results[@]}"; do
    IFS='|' read -r round target connections elapsed rate p50 p99 server_ms client_ms hs_out hs_in total_out total_in load_avg <<< "$row"
    printf '| %5s | %-13s | %7s | %8.0f | %6s | %7s | %10s | %10s | %9s | %9s | %-18s |\n' \
        "$round" "$target" "$connections" "$rate" "$p50" "$p99" "$server_ms" "$client_ms" "$hs_out/$hs_in" "$total_out/$total_in" "$load_avg"
done

# Totals per target over all rounds, and the hybrid/X25519 ratio on Hearth,
# overall and per round.
echo
printf '%s\n' "${results[@]}" | awk -F'|' -v goal="$goal_ratio" '
    {
        connections[$2] += $3; elapsed[$2] += $4
        server_ms[$2] += $8 * $3; client_ms[$2] += $9 * $3
        rate[$1, $2] = $5; rounds[$1] = 1
    }
    END {
        print "Totals over all rounds:"
        split("hearth-hybrid hearth-x25519 nginx-x25519", order, " ")
        for (i = 1; i <= 3; i++) {
            target = order[i]
            if (!(target in connections)) continue
            printf "  %-14s %8d handshakes, %8.1f/s, server CPU %.3f ms, client CPU %.3f ms per handshake\n",
                target, connections[target], connections[target] / elapsed[target],
                server_ms[target] / connections[target], client_ms[target] / connections[target]
        }
        hybrid = connections["hearth-hybrid"] / elapsed["hearth-hybrid"]
        classical = connections["hearth-x25519"] / elapsed["hearth-x25519"]
        ratio = hybrid / classical
        low = 1e9; high = 0
        for (round in rounds) {
            r = rate[round, "hearth-hybrid"] / rate[round, "hearth-x25519"]
            if (r < low) low = r
            if (r > high) high = r
        }
        printf "Hearth X25519MLKEM768 / X25519 handshake rate: %.3f overall, %.3f to %.3f per round (goal: >= %.2f, %s)\n",
            ratio, low, high, goal, (ratio >= goal ? "met" : "not met")
        cpu_ratio = (server_ms["hearth-hybrid"] / connections["hearth-hybrid"]) / (server_ms["hearth-x25519"] / connections["hearth-x25519"])
        printf "Hearth server CPU per handshake, X25519MLKEM768 / X25519: %.3f\n", cpu_ratio
    }'
echo "load at end: $(load_now)"
