#!/bin/sh
# make run: a complete instance under run/, in the foreground, logging to the
# terminal; Ctrl-C stops all of it.
#
# run/etc is made anew from conf/ at every start (edit conf/, or edit run/etc
# and run "build/<cc>/bin/postino -c run/etc reload" while it runs); the queue
# under run/queue is kept between runs.  Services listen on loopback only:
# smtp 127.0.0.1:2525, submission 5587, submissions 5465, pop3 1110,
# pop3s 1995.  Submission logs in as "demo" with the password printed at
# start (run/sasl/demo-password), POP3 as "demo@example.test" with the same
# one; the virtual domain example.test has the mailbox demo@example.test
# (run/mail/example.test/demo/, table run/data/vmailbox); local users are
# at localhost (~/Maildir/); aliases are run/data/aliases.  Run as
# root it has real privilege separation (children as user postino); run as
# another user, everything runs as that user.
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

# One password, made once and kept in run/sasl/demo-password, for the
# login "demo" (or "demo@example.test") on submission (5587) and
# submissions (5465), and "demo@example.test" on POP3 (1110, 1995).
mkdir -p "$run/sasl"
if [ ! -s "$run/sasl/demo-password" ]; then
    (umask 077; openssl rand -hex 12 > "$run/sasl/demo-password")
fi
password=$(cat "$run/sasl/demo-password")
hash=$(printf '%s' "$password" | openssl passwd -6 -stdin)
printf 'demo %s\ndemo@example.test %s\n' "$hash" "$hash" > "$run/sasl/passwd"
"$BUILD/bin/postino-map" "hash:$run/sasl/passwd"
chmod 640 "$run/sasl/passwd" "$run/sasl/passwd.db"
if [ "$(id -u)" -eq 0 ]; then
    chgrp "$(id -gn "$owner")" "$run/sasl/passwd" "$run/sasl/passwd.db"
fi

# The virtual domain example.test, with the one mailbox demo@example.test:
# a Maildir under run/mail, owned by the vmail user as root (tools/deps.sh
# creates it), else by whoever runs this.
if [ "$(id -u)" -eq 0 ]; then
    vmail_uid=$(id -u vmail)
    vmail_gid=$(id -g vmail)
else
    vmail_uid=$(id -u)
    vmail_gid=$(id -g)
fi
mkdir -p "$run/mail/example.test"
if [ "$(id -u)" -eq 0 ]; then
    chown "$vmail_uid:$vmail_gid" "$run/mail" "$run/mail/example.test"
fi
if [ ! -e "$run/data/vmailbox" ]; then
    printf 'demo@example.test example.test/demo/\n' > "$run/data/vmailbox"
fi
"$BUILD/bin/postino-map" "hash:$run/data/vmailbox"

# The aliases of this instance (kept between runs; edit and restart).
if [ ! -e "$run/data/aliases" ]; then
    printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' > "$run/data/aliases"
fi
"$BUILD/bin/postino-map" -a "$run/data/aliases"

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
smtpd_sasl_password_maps = hash:$run/sasl/passwd
alias_maps = hash:$run/data/aliases
# Local users at localhost get their mail in ~/Maildir/.
mydestination = localhost
home_mailbox = Maildir/
virtual_mailbox_domains = example.test
virtual_mailbox_base = $run/mail
virtual_mailbox_maps = hash:$run/data/vmailbox
virtual_uid_maps = static:$vmail_uid
virtual_gid_maps = static:$vmail_gid
virtual_minimum_uid = 1
pop3d_password_maps = hash:$run/sasl/passwd
pop3d_tls_cert_file = $run/tls/cert.pem
pop3d_tls_key_file = $run/tls/key.pem
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
echo "make run: submission login: demo / $password (run/sasl/demo-password)"
echo "make run: POP3 login: demo@example.test / $password"
echo "make run: mail to demo@example.test arrives in run/mail/example.test/demo/new/;" \
     "mail to $(id -un)@localhost in ~$(id -un)/Maildir/new/"
echo "make run: Ctrl-C stops it"
exec "$BUILD/bin/postino" -c "$run/etc" start-fg
