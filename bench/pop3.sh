#!/usr/bin/env bash
# POP3 benchmark: Postino's pop3d against Dovecot's, on demand only
# (`make bench-pop3`, part of `make bench`; never part of `make test`).
#
#   BUILD=build/gcc bench/pop3.sh             # as root
#   MESSAGES=10000 SIZE=4096 RUNS=3 WINDOW=32 bench/pop3.sh
#   TLS=1 bench/pop3.sh                       # over implicit TLS (POP3S)
#   KEEP_WORK=1 keeps the temporary directory, with both logs.
#
# One Maildir of MESSAGES messages (about SIZE bytes each, LF line ends,
# some lines starting with "." so that byte-stuffing is exercised) is made
# under a temporary directory, owned by nobody.  Both servers serve that
# same Maildir on loopback, plaintext USER/PASS (allowed from 127.0.0.1 on
# both), and bench/pop3_client.py logs in, reads STAT, RETRs every
# message with WINDOW commands pipelined and QUITs; the RETRs are timed
# (login and STAT are shown apart).  Each server gets one untimed warm-up
# session (Dovecot builds its index then, both move the messages to cur/
# and the files are in the page cache), then RUNS timed sessions of one
# and then the other, so that both meet the same load on a shared
# machine; the best of each is kept.  The script prints
# messages per second for both and the ratio (target: Postino >= 1x).
#
# The two servers are temporary and loopback-only:
#   Dovecot: Debian's dovecot-pop3d, installed if missing with its service
#     kept from starting (a temporary /usr/sbin/policy-rc.d, by
#     bench/postfix_install.sh as for Postfix); run in the foreground
#     with its own configuration, base_dir and logs under the temporary
#     directory ("dovecot -F -c FILE"), stopped by its PID.  The system's
#     Dovecot service is never started.
#   Postino: "postino -c DIR start-fg" from BUILD, stopped by its PID.
# Both are stopped, and the temporary directory removed, on every exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$HERE/build/gcc}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
WINDOW=${WINDOW:-32}
TLS=${TLS:-0}
PASSWORD=benchmark-secret
USER_NAME=bench@example.test
. "$HERE/bench/postfix_install.sh"
. "$HERE/bench/bench_common.sh"
DOVECOT_PID=""

pop3_cleanup() {
    local rc=$?
    stop_pid "$DOVECOT_PID"
    cleanup "$rc"
}
trap pop3_cleanup EXIT
trap 'exit 1' INT TERM

make_maildir() {
    local dir=$1
    mkdir -p "$dir/tmp" "$dir/new" "$dir/cur"
    /usr/bin/python3 - "$dir" "$MESSAGES" "$SIZE" <<'EOF'
import os, sys
d, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = b"The quick brown fox jumps over the lazy dog, again and again. 0123\n"
for i in range(count):
    head = (b"From: sender%d@example.org\nTo: bench@example.test\n"
            b"Subject: message %d\nMessage-ID: <%d@bench.example>\n\n"
            % (i, i, i))
    body = bytearray()
    n = 0
    while len(head) + len(body) < size:
        body += (b"." if n % 17 == 0 else b"") + line
        n += 1
    data = head + bytes(body)
    name = b"%d.M%dP1.bench,S=%d" % (1700000000 + i, i, len(data))
    with open(os.path.join(d.encode(), b"new", name), "wb") as f:
        f.write(data)
EOF
    chown -R nobody:nogroup "$dir"
    chmod -R go-rwx "$dir"
}

start_dovecot() {
    local port=$1 dir="$WORK/dovecot"
    mkdir -p "$dir/run"
    printf '%s:%s\n' "$USER_NAME" \
        "$(printf '%s' "$PASSWORD" | openssl passwd -6 -stdin)" > "$dir/passwd"
    local ssl_conf="ssl = no" plain_port=$port tls_port=0
    if [ "$TLS" = 1 ]; then
        ssl_conf="ssl = required
ssl_cert = <$WORK/cert.pem
ssl_key = <$WORK/key.pem"
        plain_port=0 tls_port=$port
    fi
    cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/run
log_path = $dir/log
protocols = pop3
listen = 127.0.0.1
$ssl_conf
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$WORK/Maildir
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$WORK/Maildir
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $plain_port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $tls_port
  }
}
service anvil {
  chroot =
}
CONF
    dovecot -F -c "$dir/dovecot.conf" >"$dir/stdout" 2>&1 &
    DOVECOT_PID=$!
    wait_port "$port" || die "Dovecot does not listen on 127.0.0.1:$port"
}

setup_postino() {
    local port=$1 dir=$WORK/postino # postino_main_cf's POSTINO_DIR
    postino_main_cf <<CONF
pop3d_password_maps = hash:$dir/etc/passwd
pop3d_trusted_networks = 127.0.0.0/8
virtual_mailbox_base = $WORK
virtual_mailbox_maps = texthash:$dir/etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
CONF
    printf '%s %s\n' "$USER_NAME" \
        "$(printf '%s' "$PASSWORD" | openssl passwd -6 -stdin)" > "$dir/etc/passwd"
    "$BUILD/bin/postino-map" "hash:$dir/etc/passwd"
    chgrp postino "$dir/etc/passwd.db" && chmod 640 "$dir/etc/passwd.db"
    printf '%s Maildir/\n' "$USER_NAME" > "$dir/etc/vmailbox"
    printf '127.0.0.1:%s inet n n n - - pop3d\n' "$port" > "$dir/etc/master.cf"
    if [ "$TLS" = 1 ]; then
        printf '  -o pop3d_tls_wrappermode=yes\n' >> "$dir/etc/master.cf"
        printf 'pop3d_tls_cert_file = %s\npop3d_tls_key_file = %s\n' \
            "$WORK/cert.pem" "$WORK/key.pem" >> "$dir/etc/main.cf"
    fi
    start_postino "$port"
}

# One session: prints "messages seconds bytes login_seconds".
session() {
    /usr/bin/python3 "$HERE/bench/pop3_client.py" "$1" "$USER_NAME" \
        "$PASSWORD" "$WINDOW" "$([ "$TLS" = 1 ] && echo tls || echo plain)"
}

# One timed session of server $2 on port $1: its rate in messages/s.
timed_session() {
    local port=$1 name=$2 out count secs login rate
    out=$(session "$port") || die "$name: session failed"
    read -r count secs _ login <<<"$out"
    [ "$count" = "$MESSAGES" ] || die "$name: $count of $MESSAGES messages"
    rate=$(awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')
    say "  $name: login and STAT $login s; $count messages in $secs s =" \
        "$rate msg/s"
    echo "$rate"
}

[ "$(id -u)" -eq 0 ] || die "run as root (both servers switch to the mailbox owner)"
[ -x "$BUILD/bin/pop3d" ] || die "no $BUILD/bin/pop3d: run make first"
command -v dovecot >/dev/null 2>&1 || install_quietly dovecot-pop3d
"$HERE/tools/deps.sh" >/dev/null

WORK=$(mktemp -d /tmp/postino-bench-pop3-XXXXXX)
chmod 755 "$WORK"
say "making a Maildir of $MESSAGES messages of about $SIZE bytes"
make_maildir "$WORK/Maildir"
if [ "$TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 2 -subj /CN=localhost -keyout "$WORK/key.pem" \
        -out "$WORK/cert.pem" 2>/dev/null
    chmod 600 "$WORK/key.pem"
fi

DOVECOT_PORT=$(free_port)
start_dovecot "$DOVECOT_PORT"
POSTINO_PORT=$(free_port)
setup_postino "$POSTINO_PORT"

say "Dovecot $(dovecot --version | cut -d' ' -f1) pop3 on 127.0.0.1:$DOVECOT_PORT," \
    "Postino pop3d on 127.0.0.1:$POSTINO_PORT"
session "$DOVECOT_PORT" >/dev/null || die "Dovecot: warm-up session failed"
session "$POSTINO_PORT" >/dev/null || die "Postino: warm-up session failed"
dovecot_rate=0
postino_rate=0
for run in $(seq "$RUNS"); do
    say "run $run:"
    rate=$(timed_session "$DOVECOT_PORT" Dovecot)
    if [ "$rate" -gt "$dovecot_rate" ]; then dovecot_rate=$rate; fi
    rate=$(timed_session "$POSTINO_PORT" Postino)
    if [ "$rate" -gt "$postino_rate" ]; then postino_rate=$rate; fi
done

ratio=$(awk -v p="$postino_rate" -v d="$dovecot_rate" 'BEGIN { printf "%.2f", p / d }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 1.0) ? "met" : "NOT met" }')
printf 'POP3%s RETR of %s messages (%s bytes each, window %s):\n' \
    "$([ "$TLS" = 1 ] && echo S)" "$MESSAGES" "$SIZE" "$WINDOW"
printf '  Dovecot  %8s msg/s\n  Postino  %8s msg/s\n  ratio    %8s  (target >= 1x: %s)\n' \
    "$dovecot_rate" "$postino_rate" "$ratio" "$met"
