#!/usr/bin/env bash
# Receive-path benchmark: Postino's smtpd and cleanup against Postfix's,
# on demand only (`make bench`; never part of `make test`).
#
#   BUILD=build/gcc bench/receive.sh          # as root
#   MESSAGES=2000 bench/receive.sh            # the same count for every run
#   MESSAGES_1=500 MESSAGES_10=3000 MESSAGES_50=6000 SIZE=5120 \
#   CONCURRENCY="1 10 50" RUNS=3 bench/receive.sh
#   KEEP_WORK=1 (or KEEP_ON_FAILURE=1) keeps the temporary directory, with
#   both instances' logs, for inspection.
#
# Postfix's smtp-source sends MESSAGES_C messages of SIZE bytes over C
# parallel sessions (one message per connection, as smtp-source does by
# default) to each system on 127.0.0.1, for each C in CONCURRENCY: Postino
# and Postfix in turn, RUNS times, keeping the best run of each (the
# machine may have other work).  Only receiving is timed: neither system
# runs a queue manager, so every accepted message stays in incoming/ (see "Why
# no qmgr" below).  After each run the script checks that incoming/ holds
# exactly the messages sent, then moves them aside, so every run starts
# with an empty incoming/.  It prints messages per second for both, the ratio and
# whether the target (Postino >= 1.5 x Postfix at 10 and 50) is met.
#
# Durability is the same on both sides: Postfix's cleanup fsyncs the queue
# file before smtpd answers 250, and so does Postino's (docs/queue-format.md).
#
# The two instances are temporary and loopback-only:
#   Postfix: its own config_directory (main.cf, master.cf) and
#     queue_directory under a temporary directory, started with
#     "postfix -c DIR start" and stopped with "postfix -c DIR stop".  The
#     system's Postfix service is never started; if Postfix is not
#     installed, Debian's package is installed with its service kept from
#     starting (a temporary /usr/sbin/policy-rc.d), as bench/tables.sh does.
#   Postino: "postino -c DIR start-fg" from BUILD, stopped by its PID.
# Both are stopped, and the temporary directory removed, on every exit,
# failures and Ctrl-C included.
#
# Why no qmgr: with a queue manager each message would also be moved to
# active/ and delivered or deferred while the next ones arrive, and the
# figures would mix receiving with queue management.  Without one, Postfix's
# cleanup would wait in_flow_delay (1 s) for each message, since it is the
# qmgr that hands out the flow-control tokens; in_flow_delay = 0 turns that
# off.  Postfix's master.cf holds only what receiving needs: smtpd, cleanup,
# trivial-rewrite (cleanup and smtpd resolve addresses through it), anvil
# (smtpd's connection counts, as on Postino) and postlogd (its log file).
# The qmgr's wakeup FIFO exists with no reader, so that cleanup's wakeup
# after each message fails silently instead of logging a warning.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$HERE/build/gcc}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac  # the instance needs absolute paths
SIZE=${SIZE:-5120}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-1 10 50}
TARGET=1.5
FROM=from@example.com
TO=to@localhost
. "$HERE/bench/postfix_install.sh"
. "$HERE/bench/bench_common.sh"

default_messages() {
    case $1 in
        1) echo 1000 ;;
        10) echo 4000 ;;
        *) echo 8000 ;;
    esac
}

trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Postfix ---------------------------------------------------------------

setup_postfix() {
    local port=$1
    postfix_main_cf <<EOF
mydestination = localhost
# No qmgr hands out flow-control tokens: do not wait for them.
in_flow_delay = 0
EOF
    cat >"$POSTFIX_DIR/etc/master.cf" <<EOF
# bench/receive.sh: receiving only; no qmgr, so mail stays in incoming/
$port     inet  n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    start_postfix "$port"
    # cleanup wakes the qmgr through this FIFO after each message.  Without
    # the FIFO it logs a warning for every message, which Postfix would not
    # do in real life; with one that nobody reads, the wakeup fails
    # silently, as it does for a qmgr that is busy.
    mkfifo -m 0622 "$POSTFIX_DIR/queue/public/qmgr"
    chown postfix: "$POSTFIX_DIR/queue/public/qmgr"
}

# ---- Postino ---------------------------------------------------------------

setup_postino() {
    local port=$1
    postino_main_cf <<EOF
mydestination = localhost
EOF
    cat >"$POSTINO_DIR/etc/master.cf" <<EOF
# bench/receive.sh: receiving only; no qmgr, so mail stays in incoming/
127.0.0.1:$port inet n  -       n       -       -       smtpd
cleanup   unix  -       -       n       -       0       cleanup
anvil     unix  -       -       n       -       1       anvil
EOF
    start_postino "$port"
}

# ---- runs ------------------------------------------------------------------

# Files in an incoming/ directory (Postfix may hash it into subdirectories).
queue_count() { find "$1" -type f | wc -l; }
# Moves the messages out of incoming/ into a directory beside it.  Not
# deleted: the ext4 inode allocator skips inodes freed in the last seconds,
# so thousands of deletions would slow down the file creations of the next
# run for reasons that have nothing to do with mail.
set_aside() {
    local spent
    spent="$(dirname "$1")/spent"
    mkdir -p "$spent"
    find "$1" -type f -exec mv -t "$spent" -- {} +
}

# Sets RATE to messages per second, after checking that the queue got
# every message.
measure() {
    local name=$1 port=$2 incoming=$3 conc=$4 count=$5 got
    set_aside "$incoming"
    run_source "$port" "$conc" "$count" "$WORK/$name-$conc.log" ||
        die "$name: smtp-source failed at concurrency $conc"
    got=$(queue_count "$incoming")
    [ "$got" -eq "$count" ] ||
        die "$name: $got messages in $incoming after sending $count"
    set_aside "$incoming"
    RATE=$(awk -v n="$count" -v s="$SECONDS_TAKEN" \
        'BEGIN { printf "%.1f", n / s }')
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root: Postfix's master must start as root"
    command -v postfix >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 ||
        install_postfix
    command -v smtp-source >/dev/null 2>&1 || die "smtp-source still missing"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postino-receive.XXXXXX")
    chmod 0755 "$WORK" # the mail owners must reach their queues
    local pf_port pn_port version have_postino=0
    pf_port=$(free_port)
    setup_postfix "$pf_port"
    if postino_ready smtpd cleanup; then
        have_postino=1
        pn_port=$(free_port)
        setup_postino "$pn_port"
    else
        say "Postino's smtpd or cleanup is not built in $BUILD:" \
            "measuring Postfix only"
    fi
    version=$(postconf -c "$POSTFIX_DIR/etc" -h mail_version 2>/dev/null || echo "?")

    say "warming up"
    measure postfix "$pf_port" "$POSTFIX_DIR/queue/incoming" 5 50
    if [ "$have_postino" = 1 ]; then
        measure postino "$pn_port" "$POSTINO_DIR/queue/incoming" 5 50
    fi

    local rows=() c n pn pf r ok i
    for c in $CONCURRENCY; do
        n=$(messages_for "$c")
        pn="-"; pf=0; r="-"; ok="-"
        [ "$have_postino" = 1 ] && pn=0
        # Alternate the two, RUNS times, and keep each one's best: other
        # load on the machine then hurts both alike and the best run shows
        # what each can do.
        for (( i = 1; i <= RUNS; i++ )); do
            if [ "$have_postino" = 1 ]; then
                say "Postino: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
                measure postino "$pn_port" "$POSTINO_DIR/queue/incoming" "$c" "$n"
                pn=$(best "$pn" "$RATE")
            fi
            say "Postfix: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
            measure postfix "$pf_port" "$POSTFIX_DIR/queue/incoming" "$c" "$n"
            pf=$(best "$pf" "$RATE")
        done
        if [ "$pn" != "-" ]; then
            r=$(ratio "$pn" "$pf")
            if [ "$c" -ge 10 ]; then ok=$(meets "$r"); fi
        fi
        rows+=("$(printf '%11s %9s %14s %14s %7s %10s' "$c" "$n" "$pn" "$pf" \
            "$r" "$ok")")
    done

    printf '\nreceive path: smtp-source, %s-byte messages, one per connection,' "$SIZE"
    printf ' best of %s runs,' "$RUNS"
    printf ' fsync before 250 on both (Postfix %s)\n' "$version"
    printf '%11s %9s %14s %14s %7s %10s\n' concurrency messages \
        "Postino msg/s" "Postfix msg/s" ratio "≥ $TARGET"
    printf '%s\n' "${rows[@]}"
    if [ "$have_postino" = 0 ]; then
        printf '(Postino not measured: build smtpd and cleanup first)\n'
    fi
}

main "$@"
