# Sourced by the benchmarks: installs a Debian package the comparison
# needs (postfix, dovecot-pop3d: benchmark-only dependencies) when it is
# missing, with no service started meanwhile (a temporary
# /usr/sbin/policy-rc.d) and, for Postfix, no configuration.
# The sourcing script defines say and die, and in its exit trap removes
# "$POLICY" when POLICY_CREATED is 1 (an install interrupted half way).

POLICY=/usr/sbin/policy-rc.d
POLICY_CREATED=0

# apt-get install of package $1, its services kept from starting.
install_quietly() {
    local package=$1
    [ "$(id -u)" -eq 0 ] || die "$package is missing; run as root to install it"
    say "$package missing: installing Debian's $package (benchmark only)"
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# Postino benchmark: no service starts while it installs\nexit 101\n' \
            >"$POLICY"
        chmod 0755 "$POLICY"
        POLICY_CREATED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "$package" >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q "$package" >/dev/null
    fi
    if [ "$POLICY_CREATED" = 1 ]; then rm -f "$POLICY"; POLICY_CREATED=0; fi
}

install_postfix() {
    [ "$(id -u)" -eq 0 ] || die "Postfix is missing; run as root to install it"
    echo "postfix postfix/main_mailer_type select No configuration" |
        debconf-set-selections
    install_quietly postfix
}
