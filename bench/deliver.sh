#!/usr/bin/env bash
# End-to-end delivery benchmark: SMTP in, local Maildir delivery out,
# Postino against Postfix in one run, on demand only (`make bench-deliver`;
# never part of `make test`).
#
#   BUILD=build/gcc bench/deliver.sh          # as root
#   MESSAGES_10=2000 MESSAGES_50=4000 SIZE=5120 CONCURRENCY="10 50" \
#   RUNS=5 bench/deliver.sh
#   BENCH_FS=ram bench/deliver.sh             # images in memory (see below)
#   KEEP_WORK=1 (or KEEP_ON_FAILURE=1) keeps the temporary directory, with
#   both instances' logs, for inspection.
#
# For each C in CONCURRENCY, Postfix's smtp-source sends MESSAGES_C
# messages of SIZE bytes over C parallel sessions to each system on
# 127.0.0.1, Postino and Postfix in turn, RUNS times (default 5), keeping
# the best run of each: on a shared machine a disk's flush latency, and so
# a run's rate, varies by half or more from one run to the next, for both
# systems alike, and five alternating runs give each its best.  A run is
# timed from the start of smtp-source until the last message is in the
# recipient's Maildir/new (so it measures receiving,
# queueing and delivery together, each message fsynced on the way in and
# in the Maildir on both sides).  During each run a sampler adds up the
# proportional set size (Pss, so shared pages count once) of the master
# and every process under it, every 200 ms; the peak of the best run is
# reported for each system.  Target: Postino >= 1.5 x Postfix in
# messages per second, with no more memory.
#
# File systems: each system's queue, and the Maildir, are on fresh ext4
# file systems of their own (image files, loop-mounted, with a journal;
# inode tables and journal initialised by mkfs rather than by a kernel
# thread in the background of the first runs).  Two reasons.  Mail
# servers run on journaling file systems (both systems' durability
# depends on it), while a benchmark machine's scratch space may not have
# one; and without a journal ext4 avoids reusing an inode freed in the
# last 5 to 300 seconds by scanning past it on every file creation in the
# same block group, so in one shared directory every queue file that one
# system deletes slows down the other system's next runs (the scan showed
# as a third of all CPU time in a profile).  Where the images are:
#   BENCH_FS=scratch  (default) under the temporary directory, on this
#                     machine's disk: every journal commit ends in a cache
#                     flush of the real device;
#   BENCH_FS=ram      under /dev/shm: the same journaled ext4, the same
#                     fsyncs and commits, but the device under it is memory,
#                     so a flush costs no device time.  It measures what the
#                     software costs where the disk does not set the pace
#                     (on a virtual machine's disk both systems can be bound
#                     by the host's flush latency, which varies from run to
#                     run);
#   BENCH_FS=shared   both systems in the temporary directory itself, no
#                     image files.
# With images, each system's line also gives the device cache flushes per
# message on its queue and on the Maildir file system (from
# /proc/diskstats), the figure a flush-bound disk divides into.
#
# The recipient is one local Unix user, postino-bench (created if missing,
# removed again at the end if the script created it), whose home is set to
# a directory of the run; both systems deliver to ~/Maildir/ of that user
# (home_mailbox = Maildir/), one after the other, and the messages are
# moved aside between runs.  Neither system has aliases or recipient
# tables to look up, nor DNS for loopback clients.  Both instances are
# temporary and loopback-only, as in bench/receive.sh: Postfix under its own
# config_directory and queue_directory ("postfix -c DIR start|stop"; the
# system's service is never started; Debian's package is installed when
# missing, bench/postfix_install.sh), Postino with "postino start-fg"
# stopped by its PID.  Everything is stopped and removed on every exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$HERE/build/gcc}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
SIZE=${SIZE:-5120}
RUNS=${RUNS:-5}
CONCURRENCY=${CONCURRENCY:-10 50}
TARGET=1.5
FROM=from@example.com
BENCH_USER=postino-bench
TO=$BENCH_USER@localhost
. "$HERE/bench/postfix_install.sh"
. "$HERE/bench/bench_common.sh"
SAMPLER_PID=""
USER_CREATED=0
MOUNTS=()
IMAGES=""
FLUSHES=""
PEAK_KB=""

default_messages() {
    case $1 in 10) echo 2000 ;; *) echo 4000 ;; esac
}

deliver_cleanup() {
    local rc=$?
    stop_pid "$SAMPLER_PID"
    stop_pid "$SOURCE_PID"
    SOURCE_PID=""
    stop_postino
    stop_postfix
    if [ "$USER_CREATED" = 1 ]; then userdel "$BENCH_USER" 2>/dev/null || true; fi
    local m
    for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    case "$IMAGES" in /dev/shm/postino-deliver.*) rm -rf "$IMAGES" ;; esac
    cleanup "$rc"
}
trap deliver_cleanup EXIT
trap 'exit 130' INT TERM

# A fresh ext4 file system (with its journal, as any mail server's) in an
# image file under WORK, mounted at WORK/NAME.  Each system gets its own,
# and the Maildir a third: see "File systems" above.
scratch_fs() {
    local name=$1 size=$2 image=$IMAGES/$1.img
    truncate -s "$size" "$image"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$image"
    mkdir -p "$WORK/$name"
    mount -o loop "$image" "$WORK/$name"
    MOUNTS+=("$WORK/$name")
    chmod 0755 "$WORK/$name"
}

# Cache flushes the block device under directory dir has completed so far
# (field 19 of /proc/diskstats), or nothing when it is not a loop image.
flush_count() {
    local dev
    dev=$(findmnt -no SOURCE --target "$1" 2>/dev/null) || return 0
    case "$dev" in /dev/loop*) ;; *) return 0 ;; esac
    awk -v d="${dev#/dev/}" '$3 == d { print $19 }' /proc/diskstats
}

# "q/m": flushes per message on the queue file system (directory queue)
# and the Maildir's between two counts, or "-".
flush_rate() {
    local count=$1 q0=$2 q1=$3 h0=$4 h1=$5
    if [ -z "$q0" ] || [ -z "$h0" ]; then echo "-"; return; fi
    awk -v n="$count" -v q=$(( q1 - q0 )) -v h=$(( h1 - h0 )) \
        'BEGIN { printf "%.2f/%.2f", q / n, h / n }'
}

setup_user() {
    local home=$WORK/home
    if id "$BENCH_USER" >/dev/null 2>&1; then
        usermod -d "$home" "$BENCH_USER"
    else
        useradd -M -d "$home" -s /usr/sbin/nologin "$BENCH_USER"
        USER_CREATED=1
    fi
    mkdir -p "$home/Maildir/new" "$home/Maildir/cur" "$home/Maildir/tmp"
    chown -R "$BENCH_USER": "$home"
    chmod -R 0700 "$home"
    MAILDIR_NEW=$home/Maildir/new
}

# ---- Postfix ---------------------------------------------------------------

setup_postfix() {
    local port=$1
    postfix_main_cf <<EOF
mydestination = localhost
home_mailbox = Maildir/
EOF
    cat >"$POSTFIX_DIR/etc/master.cf" <<EOF
# bench/deliver.sh: what receiving and local delivery need
$port     inet  n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    start_postfix "$port"
}

# ---- Postino ---------------------------------------------------------------

setup_postino() {
    local port=$1
    postino_main_cf <<EOF
mydestination = localhost
home_mailbox = Maildir/
EOF
    cat >"$POSTINO_DIR/etc/master.cf" <<EOF
# bench/deliver.sh: what receiving and local delivery need
127.0.0.1:$port inet n  -       n       -       -       smtpd
cleanup   unix  -       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
bounce    unix  -       -       n       -       0       bounce
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
EOF
    start_postino "$port"
}

# ---- runs ------------------------------------------------------------------

# Samples the summed Pss of pid and all its descendants every 200 ms (the
# sampling costs CPU of its own, taken from both systems alike) until
# SIGTERM, keeping the peak so far (KiB) in the file given.
start_sampler() {
    local pid=$1 out=$2
    python3 - "$pid" "$out" <<'PY' &
import os, signal, sys, time
root, out = int(sys.argv[1]), sys.argv[2]
peak = 0
stop = False
def on_term(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids
def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
while not stop:
    kids = children_map()
    todo, total = [root], 0
    while todo:
        p = todo.pop()
        total += pss(p)
        todo.extend(kids.get(p, []))
    if total > peak:
        peak = total
        with open(out + ".new", "w") as f:
            f.write(f"{peak}\n")
        os.replace(out + ".new", out)
    time.sleep(0.2)
PY
    SAMPLER_PID=$!
}

stop_sampler() {
    stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
}

maildir_count() { find "$MAILDIR_NEW" -maxdepth 1 -type f | wc -l; }

set_aside() {
    local spent=$WORK/home/spent
    mkdir -p "$spent"
    find "$MAILDIR_NEW" -maxdepth 1 -type f -exec mv -t "$spent" -- {} +
}

# One timed run: smtp-source, then wait for the Maildir; sets RATE and
# PEAK_KB.
measure() {
    local name=$1 port=$2 master=$3 conc=$4 count=$5 start end i got
    local log=$WORK/$name-$conc.log memfile=$WORK/$name-$conc.mem
    set_aside
    echo 0 >"$memfile"
    start_sampler "$master" "$memfile"
    sleep 0.2 # the sampler's first reading, before the load
    local q0 q1 h0 h1
    q0=$(flush_count "$WORK/$name"); h0=$(flush_count "$WORK/home")
    start=$(date +%s%N)
    run_source "$port" "$conc" "$count" "$log" || die "$name: smtp-source failed"
    for (( i = 0; i < 6000; i++ )); do
        got=$(maildir_count)
        [ "$got" -ge "$count" ] && break
        sleep 0.05
    done
    end=$(date +%s%N)
    q1=$(flush_count "$WORK/$name"); h1=$(flush_count "$WORK/home")
    stop_sampler
    [ "$got" -eq "$count" ] ||
        die "$name: $got messages in the Maildir after sending $count"
    set_aside
    SECONDS_TAKEN=$(awk -v ns=$(( end - start )) 'BEGIN { printf "%.3f", ns / 1e9 }')
    RATE=$(awk -v n="$count" -v s="$SECONDS_TAKEN" 'BEGIN { printf "%.1f", n / s }')
    PEAK_KB=$(cat "$memfile")
    FLUSHES=$(flush_rate "$count" "$q0" "$q1" "$h0" "$h1")
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root: both masters must start as root"
    command -v postfix >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 ||
        install_postfix
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postino-deliver.XXXXXX")
    chmod 0755 "$WORK"
    IMAGES=$WORK
    case "${BENCH_FS:-scratch}" in
    scratch|shared) ;;
    ram) IMAGES=$(mktemp -d /dev/shm/postino-deliver.XXXXXX) ;;
    *) die "BENCH_FS: scratch, ram or shared, not \"$BENCH_FS\"" ;;
    esac
    if [ "${BENCH_FS:-scratch}" != shared ]; then
        scratch_fs postfix 2G
        scratch_fs postino 2G
        scratch_fs home 4G
    fi
    setup_user
    local pf_port pn_port version have_postino=0
    pf_port=$(free_port)
    setup_postfix "$pf_port"
    if postino_ready smtpd cleanup qmgr local bounce; then
        have_postino=1
        pn_port=$(free_port)
        setup_postino "$pn_port"
    else
        say "Postino's qmgr, local or bounce is not built in $BUILD: measuring Postfix only"
    fi
    version=$(postconf -c "$POSTFIX_DIR/etc" -h mail_version 2>/dev/null || echo "?")

    say "warming up"
    measure postfix "$pf_port" "$(postfix_master_pid)" 5 50
    [ "$have_postino" = 1 ] && measure postino "$pn_port" "$POSTINO_PID" 5 50

    local rows=() c n pn pf pnm pfm pnf pff r mem ok i
    for c in $CONCURRENCY; do
        n=$(messages_for "$c")
        pn="-"; pnm="-"; pf=0; pfm=0; pnf="-"; pff="-"; r="-"; mem="-"; ok="-"
        [ "$have_postino" = 1 ] && { pn=0; pnm=0; }
        for (( i = 1; i <= RUNS; i++ )); do
            if [ "$have_postino" = 1 ]; then
                say "Postino: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
                measure postino "$pn_port" "$POSTINO_PID" "$c" "$n"
                say "  $RATE msg/s, $FLUSHES flushes/msg"
                if [ "$(best "$pn" "$RATE")" = "$RATE" ]; then
                    pn=$RATE; pnm=$PEAK_KB; pnf=$FLUSHES
                fi
            fi
            say "Postfix: $n messages of $SIZE bytes, $c sessions (run $i of $RUNS)"
            measure postfix "$pf_port" "$(postfix_master_pid)" "$c" "$n"
            say "  $RATE msg/s, $FLUSHES flushes/msg"
            if [ "$(best "$pf" "$RATE")" = "$RATE" ]; then
                pf=$RATE; pfm=$PEAK_KB; pff=$FLUSHES
            fi
        done
        if [ "$pn" != "-" ]; then
            r=$(ratio "$pn" "$pf")
            mem=$(ratio "$pnm" "$pfm")
            ok=$(meets "$r")
            if awk -v m="$mem" 'BEGIN { exit !(m > 1.0) }'; then ok="$ok, memory NO"; fi
            pnm=$(mib "$pnm")
        fi
        rows+=("$(printf '%11s %9s %14s %14s %7s %12s %12s %9s %14s %14s %s' \
            "$c" "$n" "$pn" "$pf" "$r" "$pnm" "$(mib "$pfm")" "$mem" \
            "$pnf" "$pff" "$ok")")
    done

    printf '\nend-to-end delivery: smtp-source -> local Maildir, %s-byte messages,' "$SIZE"
    printf ' best of %s runs (Postfix %s), file systems: %s\n' "$RUNS" "$version" \
        "${BENCH_FS:-scratch}"
    printf '%11s %9s %14s %14s %7s %12s %12s %9s %14s %14s %s\n' concurrency \
        messages "Postino msg/s" "Postfix msg/s" ratio "Postino MiB" \
        "Postfix MiB" "mem ratio" "Postino fl/msg" "Postfix fl/msg" \
        "target met (≥ $TARGET, memory ≤ 1)"
    printf '%s\n' "${rows[@]}"
    if [ "$have_postino" = 0 ]; then
        printf '(Postino not measured: build qmgr, local and bounce first)\n'
    fi
}

main "$@"
