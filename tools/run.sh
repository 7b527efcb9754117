#!/bin/sh
# make run: a complete instance under run/, in the foreground, logging to the
# terminal; Ctrl-C stops all of it.
#
# run/etc is made anew from conf/ at every start (edit conf/, or edit run/etc
# and run "build/<cc>/bin/postino -c run/etc reload" while it runs); the queue
# under run/queue is kept between runs.  Services listen on loopback only:
# smtp 127.0.0.1:2525, submission 5587, submissions 5465, pop3 1110,
# pop3s 1995.  Run as root it has real privilege separation (children as
# user postino); run as another user, everything runs as that user.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
: "${BUILD:?BUILD must name the build directory}"
run="${RUN_DIR:-$top/run}"   # RUN_DIR: the tests start one elsewhere
mkdir -p "$run/etc" "$run/queue" "$run/data" "$run/tls"

if [ "$(id -u)" -eq 0 ]; then
    owner=postino
    group=postdrop
else
    owner=$(id -un)
    group=$(id -gn)
fi

if [ ! -s "$run/tls/cert.pem" ] || [ ! -s "$run/tls/key.pem" ]; then
    echo "make run: creating a self-signed TLS certificate in run/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" 2>/dev/null
    chmod 600 "$run/tls/key.pem"
fi

{
    cat "$top/conf/main.cf"
    cat <<CONF

# --- make run: this instance lives under run/ -------------------------
config_directory = $run/etc
queue_directory = $run/queue
data_directory = $run/data
daemon_directory = $BUILD/bin
command_directory = $BUILD/bin
mail_owner = $owner
setgid_group = $group
inet_interfaces = loopback-only
inet_protocols = ipv4
smtpd_tls_cert_file = $run/tls/cert.pem
smtpd_tls_key_file = $run/tls/key.pem
smtpd_tls_security_level = may
CONF
} > "$run/etc/main.cf"

# The standard service names become the development ports on loopback.
sed -E \
    -e 's/^smtp([[:space:]]+inet)/127.0.0.1:2525\1/' \
    -e 's/^submission([[:space:]]+inet)/127.0.0.1:5587\1/' \
    -e 's/^submissions([[:space:]]+inet)/127.0.0.1:5465\1/' \
    -e 's/^pop3([[:space:]]+inet)/127.0.0.1:1110\1/' \
    -e 's/^pop3s([[:space:]]+inet)/127.0.0.1:1995\1/' \
    "$top/conf/master.cf" > "$run/etc/master.cf"

echo "make run: instance in run/ -- SMTP 127.0.0.1:2525, submission 5587," \
     "submissions 5465, POP3 1110, POP3S 1995 as their daemons arrive" \
     "(conf/master.cf)"
echo "make run: Ctrl-C stops it"
exec "$BUILD/bin/postino" -c "$run/etc" start-fg
