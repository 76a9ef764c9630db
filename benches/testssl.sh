#!/usr/bin/env bash
# Runs testssl.sh 3.2 against `hearth serve` on 127.0.0.1 and prints every
# finding at severity LOW or above and the KEMs it saw. The same check runs
# as the test crates/hearth-server/tests/testssl.rs.
#
# Starts Hearth on an empty library with a fresh data dir (default: hybrid
# key exchange, X25519MLKEM768 then X25519). Then runs every testssl.sh check
# except -E and -g (its default), with DNS lookups and CRL/OCSP fetches off,
# trusting the household CA with --add-ca. Exits with status 1 when a
# finding at LOW or above is not in the by-design list below, when testssl.sh
# reports a scan problem, or when X25519MLKEM768 is not among the KEMs.
#
# Usage: benches/testssl.sh [--pq-only]      (39 to 76 s here, on 2 shared cores)
#   --pq-only    start Hearth with --pq-only instead of the default groups
# Environment:
#   HEARTH_BIN   hearth binary [default: $CARGO_TARGET_DIR/release/hearth,
#                built with `cargo build --release -p hearth-server` if missing]
#   TESTSSL      testssl.sh program [default: testssl.sh or testssl on PATH]
#   TESTSSL_OUT  folder that keeps testssl.json and testssl.txt [default: removed on exit]
# Needs: testssl.sh 3.2 or newer (Debian 12: apt-get install -t bookworm-backports
# testssl.sh; bookworm's own 3.0.8 does not know ML-KEM), jq.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/hearth-target}
hearth=${HEARTH_BIN:-$CARGO_TARGET_DIR/release/hearth}
server_args=()
case ${1:-} in
    "") ;;
    --pq-only) server_args=(--pq-only) ;;
    *)
        echo "unknown argument $1; usage: benches/testssl.sh [--pq-only]" >&2
        exit 2
        ;;
esac

# Findings at LOW or above that Hearth accepts on purpose, as "id|finding".
# cert_revocation: the household CA is private to one server and publishes no
# CRL or OCSP responder, which testssl.sh rates HIGH for any leaf.
by_design=("cert_revocation|Neither CRL nor OCSP URI provided")

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-testssl.XXXXXX")
hearth_pid=

cleanup() {
    if [[ -n $hearth_pid ]]; then
        kill "$hearth_pid" 2> /dev/null || true
        wait "$hearth_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

testssl=${TESTSSL:-$(command -v testssl.sh || command -v testssl || true)}
if [[ -z $testssl ]]; then
    echo "testssl.sh not found on PATH: apt-get install -t bookworm-backports testssl.sh (scripts/install-deps --test does)" >&2
    exit 1
fi
# The banner names the version and the openssl binary testssl.sh drives.
banner=$("$testssl" --version 2> /dev/null | sed 's/\x1b\[[0-9;]*m//g' || true)
testssl_version=$(sed -n 's/.* version \([0-9][0-9.]*\).*/\1/p' <<< "$banner" | head -n 1)
if [[ -z $testssl_version ]] || ! printf '3.2\n%s\n' "$testssl_version" | sort -C -V; then
    echo "$testssl is testssl.sh ${testssl_version:-of unknown version}; 3.2 or newer is needed for ML-KEM" >&2
    exit 1
fi
if ! command -v jq > /dev/null; then
    echo "missing tool: jq; install it and run again" >&2
    exit 1
fi

if [[ ! -x $hearth ]]; then
    echo "building $hearth (cargo build --release -p hearth-server)" >&2
    (cd "$repo_root" && cargo build --release -p hearth-server)
fi
cp "$hearth" "$work/hearth"

mkdir -p "$work/library"
data_dir=$work/data
: > "$work/hearth.out"
HEARTH_CONFIG=/dev/null "$work/hearth" serve --library "$work/library" --listen 127.0.0.1:0 --data-dir "$data_dir" \
    --no-watch "${server_args[@]}" > "$work/hearth.out" 2> "$work/hearth.err" &
hearth_pid=$!

address=
for ((try = 0; try < 100; try++)); do
    address=$(sed -n 's/^ *Listening: *https:\/\/\([^ ]*\).*/\1/p' "$work/hearth.out")
    [[ -n $address ]] && break
    if ! kill -0 "$hearth_pid" 2> /dev/null; then
        echo "hearth serve exited at start; its log:" >&2
        cat "$work/hearth.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $address ]]; then
    echo "hearth serve printed no Listening line in 10 s" >&2
    exit 1
fi

openssl_used=$(sed -n 's/^ *Using *\(OpenSSL.*\)/\1/p; s/^ *on [^:]*:\(.*\)/\1/p' <<< "$banner" | tr -s ' \n' ' ')
echo "testssl.sh $testssl_version ($testssl), driving ${openssl_used:-an unknown openssl}"
echo "hearth: $("$work/hearth" --version) at $address, ${server_args[*]:-default key-exchange groups}"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load at start: $(uptime | sed 's/.*load average: //')"

json=$work/testssl.json
started=$SECONDS
testssl_status=0
"$testssl" --quiet --warnings off --color 0 --nodns none --ip 127.0.0.1 \
    --connect-timeout 10 --openssl-timeout 10 \
    --jsonfile "$json" --add-ca "$data_dir/tls/ca.pem" "$address" > "$work/testssl.txt" 2>&1 || testssl_status=$?
echo "testssl.sh took $((SECONDS - started)) s and exited with status $testssl_status, load at end: $(uptime | sed 's/.*load average: //')"
if [[ -n ${TESTSSL_OUT:-} ]]; then
    mkdir -p "$TESTSSL_OUT"
    cp "$work/testssl.txt" "$TESTSSL_OUT/"
    [[ -f $json ]] && cp "$json" "$TESTSSL_OUT/"
fi
if [[ ! -s $json ]]; then
    echo "testssl.sh wrote no JSON file; its output:" >&2
    cat "$work/testssl.txt" >&2
    exit 1
fi

echo
echo "KEMs offered (FS_KEMs): $(jq -r '[.[] | select(.id == "FS_KEMs") | .finding] | first // "none"' "$json")"
echo "Elliptic curves offered (FS_ECDHE_curves): $(jq -r '[.[] | select(.id == "FS_ECDHE_curves") | .finding] | first // "none"' "$json")"
echo "Severity counts: $(jq -r 'group_by(.severity) | map("\(length) \(.[0].severity)") | join(", ")' "$json")"

status=0
if ((testssl_status != 0)); then
    # testssl.sh 3.2.1 exits non-zero when one of its checks could not
    # connect. Its session-resumption check often does: it closes `openssl
    # s_client` before the server's TLS 1.3 session ticket arrives. Against
    # a --pq-only server, OpenSSL 3.0 (no ML-KEM) cannot connect at all, and
    # testssl.sh adds a scanProblem, which fails this script below.
    echo
    echo "testssl.sh exited with status $testssl_status; its lines about connect problems:"
    grep -iE 'connect problem|client problem|cannot connect' "$work/testssl.txt" || echo "  (none)"
fi
echo
echo "Findings at LOW or above:"
while IFS=$'\t' read -r severity id finding; do
    [[ -z $severity ]] && continue
    verdict="UNEXPECTED"
    for entry in "${by_design[@]}"; do
        [[ $entry == "$id|$finding" ]] && verdict="by design"
    done
    [[ $verdict == UNEXPECTED ]] && status=1
    printf '  %-8s %-24s %s (%s)\n' "$severity" "$id" "$finding" "$verdict"
done < <(jq -r '.[] | select(.severity | IN("LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL")) | [.severity, .id, .finding] | @tsv' "$json")

problems=$(jq -r '.[] | select(.id == "scanProblem") | "\(.severity): \(.finding)"' "$json")
if [[ -n $problems ]]; then
    echo "testssl.sh could not run all checks:"
    printf '  %s\n' "$problems"
    status=1
fi
if ! jq -e '.[] | select(.id == "FS_KEMs") | .finding | split(" ") | index("X25519MLKEM768")' "$json" > /dev/null; then
    echo "X25519MLKEM768 is not among the KEMs testssl.sh reports"
    status=1
fi
exit "$status"
