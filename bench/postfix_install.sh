# Sourced by the benchmarks: installs Debian's postfix package (a
# benchmark-only dependency) when it is missing, with no service started
# meanwhile (a temporary /usr/sbin/policy-rc.d) and no configuration.
# The sourcing script defines say and die, and in its exit trap removes
# "$POLICY" when POLICY_CREATED is 1 (an install interrupted half way).

POLICY=/usr/sbin/policy-rc.d
POLICY_CREATED=0

install_postfix() {
    [ "$(id -u)" -eq 0 ] || die "Postfix is missing; run as root to install it"
    say "Postfix missing: installing Debian's postfix (benchmark only)"
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# Postino benchmark: no service starts while it installs\nexit 101\n' \
            >"$POLICY"
        chmod 0755 "$POLICY"
        POLICY_CREATED=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" |
        debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q postfix >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q postfix >/dev/null
    fi
    if [ "$POLICY_CREATED" = 1 ]; then rm -f "$POLICY"; POLICY_CREATED=0; fi
}
