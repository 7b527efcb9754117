# Sourced by the benchmarks that run Postino and Postfix side by side:
# the two temporary instances (their common configuration, starting and
# stopping them), loopback ports, and the arithmetic of the results.  The
# sourcing script defines TARGET and default_messages (the message count
# for a concurrency), sets "trap cleanup EXIT" (or a trap of its own that
# ends in cleanup), and keeps in these variables what it starts:
WORK=""            # the temporary directory
POSTFIX_DIR=""     # WORK/postfix once postfix_main_cf made it
POSTFIX_STARTED=0
POSTINO_DIR=""     # WORK/postino once postino_main_cf made it
POSTINO_PID=""     # the master started with start-fg
SOURCE_PID=""      # a load generator running
RATE=""            # what the last measured run gave
SECONDS_TAKEN=""   # how long the last run_source took

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/${0##*/}: $*"; exit 1; }

# Stops process $1, a child of this script: SIGTERM, then SIGKILL if it is
# still there after 30 s.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for (( i = 0; i < 300; i++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "process $pid did not stop; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

stop_postino() {
    stop_pid "$POSTINO_PID"
    POSTINO_PID=""
}

stop_postfix() {
    [ "$POSTFIX_STARTED" = 1 ] || return 0
    postfix -c "$POSTFIX_DIR/etc" stop >/dev/null 2>&1 ||
        say "postfix -c $POSTFIX_DIR/etc stop failed"
    # "postfix stop" returns before the master is gone; wait for its pid
    # file lock to be released so the directory can be removed.
    local pidfile=$POSTFIX_DIR/queue/pid/master.pid i
    for (( i = 0; i < 100; i++ )); do
        [ -s "$pidfile" ] || break
        kill -0 "$(tr -d ' ' <"$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    POSTFIX_STARTED=0
}

# ---- the two instances ----------------------------------------------------

# Makes POSTFIX_DIR (WORK/postfix) and writes its main.cf: what every
# benchmark's Postfix has, then the lines given on standard input.
postfix_main_cf() {
    POSTFIX_DIR=$WORK/postfix
    mkdir -p "$POSTFIX_DIR/etc" "$POSTFIX_DIR/queue" "$POSTFIX_DIR/data"
    chown postfix: "$POSTFIX_DIR/data" # Postfix's mail_owner keeps locks there
    {
        cat <<EOF
# bench/${0##*/}: a temporary Postfix on 127.0.0.1
compatibility_level = 3.6
queue_directory = $POSTFIX_DIR/queue
data_directory = $POSTFIX_DIR/data
maillog_file = $POSTFIX_DIR/maillog
maillog_file_prefixes = $POSTFIX_DIR
myhostname = bench.localdomain
mydomain = localdomain
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# No recipient tables to consult (no proxymap, no aliases).
local_recipient_maps =
alias_maps =
alias_database =
# No DNS: loopback clients are not looked up.
smtpd_peername_lookup = no
biff = no
EOF
        cat
    } >"$POSTFIX_DIR/etc/main.cf"
}

# Starts the Postfix of POSTFIX_DIR (its master.cf written by the caller)
# and waits until it listens on 127.0.0.1:$1.
start_postfix() {
    local port=$1
    postfix -c "$POSTFIX_DIR/etc" check >/dev/null 2>&1 || true
    # Postfix writes its errors to stderr only when that is a terminal, and
    # to its log file once that is set up: show both on failure.
    if ! postfix -c "$POSTFIX_DIR/etc" start >"$POSTFIX_DIR/start.err" 2>&1; then
        cat "$POSTFIX_DIR/start.err" >&2
        tail -n 20 "$POSTFIX_DIR/maillog" >&2 2>/dev/null || true
        die "postfix -c $POSTFIX_DIR/etc start failed"
    fi
    POSTFIX_STARTED=1
    wait_port "$port" || die "Postfix does not listen on 127.0.0.1:$port"
}

postfix_master_pid() { tr -d ' ' <"$POSTFIX_DIR/queue/pid/master.pid"; }

# True when BUILD has postino and every program named.
postino_ready() {
    local p
    for p in postino "$@"; do
        [ -x "$BUILD/bin/$p" ] || return 1
    done
}

# Makes POSTINO_DIR (WORK/postino) and writes its main.cf: what every
# benchmark's Postino has (the same choices as for Postfix), then the
# lines given on standard input, then POSTINO_MAIN_CF_EXTRA.
postino_main_cf() {
    POSTINO_DIR=$WORK/postino
    mkdir -p "$POSTINO_DIR/etc" "$POSTINO_DIR/queue" "$POSTINO_DIR/data"
    local owner=postino group=postdrop
    if [ "$(id -u)" -ne 0 ]; then owner=$(id -un); group=$(id -gn); fi
    {
        cat <<EOF
# bench/${0##*/}: a temporary Postino on 127.0.0.1
queue_directory = $POSTINO_DIR/queue
data_directory = $POSTINO_DIR/data
daemon_directory = $BUILD/bin
command_directory = $BUILD/bin
mail_owner = $owner
setgid_group = $group
myhostname = bench.localdomain
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = ipv4
local_recipient_maps =
alias_maps =
alias_database =
smtpd_peername_lookup = no
EOF
        cat
        if [ -n "${POSTINO_MAIN_CF_EXTRA:-}" ]; then
            printf '%s\n' "$POSTINO_MAIN_CF_EXTRA"
        fi
    } >"$POSTINO_DIR/etc/main.cf"
}

# Starts the Postino of POSTINO_DIR (its master.cf written by the caller)
# and waits until it listens on 127.0.0.1:$1.
start_postino() {
    local port=$1
    "$BUILD/bin/postino" -c "$POSTINO_DIR/etc" start-fg \
        >"$POSTINO_DIR/master.log" 2>&1 &
    POSTINO_PID=$!
    wait_port "$port" || {
        tail -n 20 "$POSTINO_DIR/master.log" >&2
        die "Postino does not listen on 127.0.0.1:$port"
    }
}

# ---- load ------------------------------------------------------------------

# One smtp-source run of count messages of SIZE bytes from FROM to TO over
# conc sessions to 127.0.0.1:port, its output in log; sets SECONDS_TAKEN,
# fails (the output shown) when smtp-source does.
# smtp-source runs as a background job that the shell waits for, so that
# a signal stops the benchmark at once (the shell defers its traps while a
# foreground command runs).
run_source() {
    local port=$1 conc=$2 count=$3 log=$4 start end rc=0
    start=$(date +%s%N)
    smtp-source -s "$conc" -l "$SIZE" -m "$count" -f "$FROM" -t "$TO" \
        "127.0.0.1:$port" >"$log" 2>&1 &
    SOURCE_PID=$!
    wait "$SOURCE_PID" || rc=$?
    SOURCE_PID=""
    end=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        return 1
    fi
    SECONDS_TAKEN=$(awk -v ns=$(( end - start )) \
        'BEGIN { printf "%.3f", ns / 1e9 }')
}

# ---- ports and figures -----------------------------------------------------

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 i
    for (( i = 0; i < 200; i++ )); do
        if python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
            "$port" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# The message count for concurrency $1: MESSAGES, else MESSAGES_$1, else
# what the sourcing script's default_messages says for $1.
messages_for() {
    local var="MESSAGES_$1"
    if [ -n "${MESSAGES:-}" ]; then echo "$MESSAGES"; return; fi
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    default_messages "$1"
}

best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
meets() { awk -v r="$1" -v t="$TARGET" 'BEGIN { print (r >= t) ? "yes" : "NO" }'; }

cleanup() {
    local rc=${1:-$?}
    stop_pid "$SOURCE_PID"
    SOURCE_PID=""
    stop_postino
    stop_postfix
    if [ "$POLICY_CREATED" = 1 ]; then rm -f "$POLICY"; fi
    if [ -n "$WORK" ]; then
        if [ -n "${KEEP_WORK:-}" ] ||
           { [ "$rc" -ne 0 ] && [ -n "${KEEP_ON_FAILURE:-}" ]; }; then
            say "keeping $WORK for inspection"
        else
            rm -rf "$WORK"
        fi
    fi
}
