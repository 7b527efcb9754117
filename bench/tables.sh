#!/usr/bin/env bash
# Table benchmark: postino-map against Postfix's postmap, on demand only
# (`make bench`; never part of `make test`).
#
#   BUILD=build/gcc bench/tables.sh      # ENTRIES=1000000 RUNS=3 by default
#
# Generates a source of ENTRIES "userNNNNNNN@example.com local-destination-N"
# lines and a query file with every key in a shuffled (seeded, so
# repeatable) order, then times, best of RUNS each:
#   build   postino-map hash:FILE          vs  postmap -c DIR hash:FILE
#   query   postino-map -q - hash:FILE     vs  postmap -c DIR -q - hash:FILE
# each program on its own copy of the source, and prints the seconds and
# the speedup (postmap time / postino-map time).  It also checks that both
# programs give the same answers on a sample of present and absent keys.
#
# Postfix is a benchmark-only dependency: when postmap is missing, Debian's
# postfix package is installed (as root) with its service kept from
# starting (a temporary /usr/sbin/policy-rc.d) and without configuration.
# Everything else lives in a temporary directory removed at the end.
set -euo pipefail

ENTRIES=${ENTRIES:-1000000}
RUNS=${RUNS:-3}
TARGET=1.5
HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$HERE/build/gcc}
POSTINO_MAP=$BUILD/bin/postino-map
. "$HERE/bench/postfix_install.sh"
WORK=""

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/tables.sh: $*"; exit 1; }

cleanup() {
    if [ "$POLICY_CREATED" = 1 ]; then rm -f "$POLICY"; fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

find_postmap() {
    command -v postmap 2>/dev/null && return 0
    [ -x /usr/sbin/postmap ] && { echo /usr/sbin/postmap; return 0; }
    return 1
}


# Seconds (with nanoseconds) of one run of "$@".
time_once() {
    local start end
    start=$(date +%s%N)
    "$@"
    end=$(date +%s%N)
    echo $(( end - start ))
}

# Best of RUNS runs of "$@", in seconds; PREPARE (a function name) runs
# before each, untimed.
best_of() {
    local prepare=$1; shift
    local best="" ns i
    for (( i = 0; i < RUNS; i++ )); do
        "$prepare"
        ns=$(time_once "$@")
        if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
    done
    awk -v ns="$best" 'BEGIN { printf "%.3f", ns / 1e9 }'
}

generate() {
    python3 - "$ENTRIES" "$WORK/source" "$WORK/queries" <<'EOF'
import random, sys
n, source, queries = int(sys.argv[1]), sys.argv[2], sys.argv[3]
keys = [f"user{i:07d}@example.com" for i in range(1, n + 1)]
with open(source, "w") as f:
    f.writelines(f"{k} local-destination-{i}\n" for i, k in enumerate(keys, 1))
random.Random(20261123).shuffle(keys)
with open(queries, "w") as f:
    f.writelines(k + "\n" for k in keys)
EOF
}

no_prepare() { :; }
clean_postino() { rm -f "$WORK/postino/table.db"; }
clean_postmap() { rm -f "$WORK/postmap/table.db"; }

postino_build() { "$POSTINO_MAP" "hash:$WORK/postino/table"; }
postmap_build() { "$POSTMAP" -c "$WORK/cf" "hash:$WORK/postmap/table"; }
postino_query() {
    "$POSTINO_MAP" -q - "hash:$WORK/postino/table" <"$1" >"$2"
}
postmap_query() {
    "$POSTMAP" -c "$WORK/cf" -q - "hash:$WORK/postmap/table" <"$1" >"$2"
}

# Both answer a sample of present and absent keys the same way.
check_agreement() {
    { head -n 20000 "$WORK/queries"
      for i in 1 2 3 4 5 6 7 8 9 10; do echo "absent$i@example.com"; done
      echo "USER0000001@EXAMPLE.COM"; } >"$WORK/sample"
    postino_query "$WORK/sample" "$WORK/sample.postino" || true
    postmap_query "$WORK/sample" "$WORK/sample.postmap" || true
    if ! cmp -s "$WORK/sample.postino" "$WORK/sample.postmap"; then
        diff "$WORK/sample.postino" "$WORK/sample.postmap" | head -n 10 >&2
        die "postino-map and postmap disagree on the sample"
    fi
    say "answers agree on $(wc -l <"$WORK/sample") sample keys" \
        "($(wc -l <"$WORK/sample.postino") found)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
meets() { awk -v r="$1" -v t="$TARGET" 'BEGIN { print (r >= t) ? "yes" : "NO" }'; }

main() {
    [ -x "$POSTINO_MAP" ] || die "$POSTINO_MAP missing: run make first"
    POSTMAP=$(find_postmap) || { install_postfix; POSTMAP=$(find_postmap); } ||
        die "postmap still missing after installing postfix"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postino-bench.XXXXXX")
    mkdir -p "$WORK/postino" "$WORK/postmap" "$WORK/cf"
    local version
    version=$(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo unknown)
    printf 'compatibility_level = 3.6\n' >"$WORK/cf/main.cf"
    say "generating $ENTRIES entries and $ENTRIES shuffled queries in $WORK"
    generate
    cp "$WORK/source" "$WORK/postino/table"
    cp "$WORK/source" "$WORK/postmap/table"

    say "build, best of $RUNS"
    local b_postino b_postmap q_postino q_postmap
    b_postino=$(best_of clean_postino postino_build)
    b_postmap=$(best_of clean_postmap postmap_build)
    say "query -q -, best of $RUNS"
    q_postino=$(best_of no_prepare postino_query "$WORK/queries" /dev/null)
    q_postmap=$(best_of no_prepare postmap_query "$WORK/queries" /dev/null)
    check_agreement

    local rb rq
    rb=$(ratio "$b_postmap" "$b_postino")
    rq=$(ratio "$q_postmap" "$q_postino")
    printf '\n%s entries, best of %s runs, seconds (postmap: %s)\n' \
        "$ENTRIES" "$RUNS" "postfix $version"
    printf '%-24s %12s %12s %10s %8s\n' "" postino-map postmap speedup "≥ $TARGET"
    printf '%-24s %12s %12s %9sx %8s\n' "build hash:FILE" "$b_postino" \
        "$b_postmap" "$rb" "$(meets "$rb")"
    printf '%-24s %12s %12s %9sx %8s\n' "lookups -q - hash:FILE" "$q_postino" \
        "$q_postmap" "$rq" "$(meets "$rq")"
}

main "$@"
