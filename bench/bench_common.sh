# Sourced by the benchmarks that run Postino and Postfix side by side:
# stopping each, loopback ports, and the arithmetic of the results.  The
# sourcing script defines say and die, POSTINO_PID (the master started
# with start-fg, or empty), POSTFIX_DIR and POSTFIX_STARTED, SOURCE_PID (a
# load generator running, or empty), WORK (the temporary directory),
# TARGET and default_messages (the message count for a concurrency), and
# sets "trap cleanup EXIT".

stop_postino() {
    [ -n "$POSTINO_PID" ] || return 0
    if kill -0 "$POSTINO_PID" 2>/dev/null; then
        kill -TERM "$POSTINO_PID" 2>/dev/null || true
        local i
        for (( i = 0; i < 300; i++ )); do
            kill -0 "$POSTINO_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$POSTINO_PID" 2>/dev/null; then
            say "postino master $POSTINO_PID did not stop; killing it"
            kill -KILL "$POSTINO_PID" 2>/dev/null || true
        fi
    fi
    wait "$POSTINO_PID" 2>/dev/null || true
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
    if [ -n "$SOURCE_PID" ]; then
        kill -TERM "$SOURCE_PID" 2>/dev/null || true
        wait "$SOURCE_PID" 2>/dev/null || true
    fi
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
