#!/usr/bin/env bash
# Relay benchmark: SMTP in, SMTP out to Postfix's smtp-sink, Postino
# against Postfix in one run, on demand only (`make bench-relay`; never
# part of `make test`).
#
#   BUILD=build/gcc bench/relay.sh            # as root
#   MESSAGES_10=2000 MESSAGES_50=4000 SIZE=5120 CONCURRENCY="10 50" \
#   RUNS=3 bench/relay.sh
#   KEEP_WORK=1 (or KEEP_ON_FAILURE=1) keeps the temporary directory, with
#   both instances' logs, for inspection.
#
# For each C in CONCURRENCY, smtp-source sends MESSAGES_C messages of SIZE
# bytes (one recipient each, outside every local domain) over C parallel
# sessions to each system on 127.0.0.1, Postino and Postfix in turn, RUNS
# times, keeping the best run of each.  Both relay everything to one
# smtp-sink on loopback (relayhost = [127.0.0.1]:PORT: no DNS), which
# throws the mail away.  A run is timed from the start of smtp-source
# until the system has logged "status=sent" for every message, so it
# measures receiving, queueing (fsynced) and the SMTP client together.
# Target: Postino >= 1.5 x Postfix in messages per second.
#
# Both instances are temporary and loopback-only: Postfix under its own
# config_directory and queue_directory ("postfix -c DIR start|stop";
# Debian's package is installed when missing, bench/postfix_install.sh),
# Postino with "postino start-fg" stopped by its PID.  Postino is measured
# only when its qmgr is built; otherwise the table has Postfix alone.
# Everything is stopped and removed on every exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$HERE/build/gcc}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
SIZE=${SIZE:-5120}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-10 50}
TARGET=1.5
FROM=from@example.com
TO=to@relay-bench.example
. "$HERE/bench/postfix_install.sh"
. "$HERE/bench/bench_common.sh"
SINK_PID=""

default_messages() {
    case $1 in 10) echo 2000 ;; *) echo 4000 ;; esac
}

relay_cleanup() {
    local rc=$?
    stop_pid "$SINK_PID"
    cleanup "$rc"
}
trap relay_cleanup EXIT
trap 'exit 130' INT TERM

start_sink() {
    local port=$1
    smtp-sink -u nobody "127.0.0.1:$port" 256 >"$WORK/sink.log" 2>&1 &
    SINK_PID=$!
    wait_port "$port" || die "smtp-sink does not listen on 127.0.0.1:$port"
}

# ---- Postfix ---------------------------------------------------------------

setup_postfix() {
    local port=$1 sink=$2
    postfix_main_cf <<EOF
mydestination =
relayhost = [127.0.0.1]:$sink
smtp_tls_security_level = may
EOF
    cat >"$POSTFIX_DIR/etc/master.cf" <<EOF
# bench/relay.sh: what receiving and relaying need
$port     inet  n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    start_postfix "$port"
}

# ---- Postino ---------------------------------------------------------------

setup_postino() {
    local port=$1 sink=$2
    postino_main_cf <<EOF
mydestination =
relayhost = [127.0.0.1]:$sink
smtp_tls_security_level = may
EOF
    cat >"$POSTINO_DIR/etc/master.cf" <<EOF
# bench/relay.sh: what receiving and relaying need
127.0.0.1:$port inet n  -       n       -       -       smtpd
cleanup   unix  -       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
bounce    unix  -       -       n       -       0       bounce
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
EOF
    start_postino "$port"
}

# ---- runs ------------------------------------------------------------------

log_of() {
    case $1 in
    postfix) echo "$POSTFIX_DIR/maillog" ;;
    *) echo "$POSTINO_DIR/master.log" ;;
    esac
}

sent_count() {
    local log
    log=$(log_of "$1")
    [ -f "$log" ] || { echo 0; return; }
    grep -c ' status=sent ' "$log" || true
}

# One timed run: smtp-source, then wait for the "status=sent" lines; sets
# RATE.
measure() {
    local name=$1 port=$2 conc=$3 count=$4 start end i got before
    local log=$WORK/$name-$conc.log
    before=$(sent_count "$name")
    start=$(date +%s%N)
    run_source "$port" "$conc" "$count" "$log" || die "$name: smtp-source failed"
    for (( i = 0; i < 12000; i++ )); do
        got=$(( $(sent_count "$name") - before ))
        [ "$got" -ge "$count" ] && break
        sleep 0.05
    done
    end=$(date +%s%N)
    [ "$got" -ge "$count" ] ||
        die "$name: $got messages relayed after sending $count ($(log_of "$name"))"
    local seconds
    seconds=$(awk -v ns=$(( end - start )) 'BEGIN { printf "%.3f", ns / 1e9 }')
    RATE=$(awk -v n="$count" -v s="$seconds" 'BEGIN { printf "%.1f", n / s }')
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root: both masters must start as root"
    command -v postfix >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 &&
        command -v smtp-sink >/dev/null 2>&1 || install_postfix
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postino-relay.XXXXXX")
    chmod 0755 "$WORK"
    local sink pf_port pn_port version have_postino=0
    sink=$(free_port)
    start_sink "$sink"
    pf_port=$(free_port)
    setup_postfix "$pf_port" "$sink"
    if postino_ready smtpd cleanup qmgr smtp bounce; then
        have_postino=1
        pn_port=$(free_port)
        setup_postino "$pn_port" "$sink"
    else
        say "Postino's qmgr, smtp or bounce is not built in $BUILD: measuring Postfix only"
    fi
    version=$(postconf -c "$POSTFIX_DIR/etc" -h mail_version 2>/dev/null || echo "?")

    say "warming up"
    measure postfix "$pf_port" 5 50
    [ "$have_postino" = 1 ] && measure postino "$pn_port" 5 50

    local rows=() c n pn pf r ok i
    for c in $CONCURRENCY; do
        n=$(messages_for "$c")
        pn="-"; pf=0; r="-"; ok="-"
        [ "$have_postino" = 1 ] && pn=0
        for (( i = 1; i <= RUNS; i++ )); do
            if [ "$have_postino" = 1 ]; then
                say "Postino: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
                measure postino "$pn_port" "$c" "$n"
                pn=$(best "$pn" "$RATE")
            fi
            say "Postfix: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
            measure postfix "$pf_port" "$c" "$n"
            pf=$(best "$pf" "$RATE")
        done
        if [ "$pn" != "-" ]; then
            r=$(ratio "$pn" "$pf")
            ok=$(meets "$r")
        fi
        rows+=("$(printf '%11s %9s %14s %14s %7s %s' "$c" "$n" "$pn" "$pf" \
            "$r" "$ok")")
    done

    printf '\nrelay: smtp-source -> MTA -> smtp-sink, %s-byte messages,' "$SIZE"
    printf ' best of %s runs (Postfix %s)\n' "$RUNS" "$version"
    printf '%11s %9s %14s %14s %7s %s\n' concurrency messages \
        "Postino msg/s" "Postfix msg/s" ratio "target met (≥ $TARGET)"
    printf '%s\n' "${rows[@]}"
    if [ "$have_postino" = 0 ]; then
        printf '(Postino not measured: build qmgr first)\n'
    fi
}

main "$@"
