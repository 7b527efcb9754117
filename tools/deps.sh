#!/bin/sh
# Installs the Debian packages that Postino needs to build, test and run,
# when any is missing, and (as root) creates the system user and group that
# a package's install script would: "postino" (mail_owner), "postdrop"
# (setgid_group) and "vmail" (the owner of make run's virtual mailboxes).
# Runs in well under a second when nothing is missing.
#
# Other distributions: see INSTALL for the same list under their names.
set -eu

PACKAGES="build-essential pkg-config libdb-dev libssl-dev libcap-dev
libpcre2-dev libcmocka-dev libcrypt-dev python3 python3-pytest swaks
dnsmasq-base openssl iproute2 passwd fetchmail mpop"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        else
            echo "postino: missing packages:$missing" >&2
            echo "postino: install them as root: apt-get install$missing" >&2
            exit 1
        fi
    else
        SUDO=""
    fi
    echo "postino: installing missing packages:$missing"
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi

if [ "$(id -u)" -eq 0 ]; then
    if ! getent group postino >/dev/null; then
        groupadd --system postino
    fi
    if ! getent passwd postino >/dev/null; then
        useradd --system --gid postino --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin \
            --comment "Postino mail system" postino
    fi
    if ! getent group postdrop >/dev/null; then
        groupadd --system postdrop
    fi
    # The owner of the virtual mailboxes of `make run` (virtual_uid_maps).
    if ! getent passwd vmail >/dev/null; then
        useradd --system --user-group --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin \
            --comment "Postino virtual mailboxes" vmail
    fi
fi
exit 0
