#!/bin/bash
# fuzz.sh BUILD NAME...: runs each libFuzzer target BUILD/bin/fuzz_NAME for
# FUZZ_SECONDS (default 60) on a scratch copy of its corpus
# (tests/fuzz/corpus/NAME/), in fork mode so that a crash is kept and the run
# goes on. `make fuzz` builds the targets and calls this.
#
# Prints per target: seconds run, executions, crashes (and timeouts, OOMs)
# found, and where the inputs that crashed are kept:
#   BUILD/out/NAME/crash-*  (also timeout-*, oom-*, leak-*)
#   BUILD/out/NAME/corpus/  the grown corpus (NOT added to tests/)
#   BUILD/out/NAME/log      libFuzzer's output
# Exit status 1 when any target found a crash, timeout or leak, 2 when one
# could not run.
#
# A new input worth keeping (a crash once fixed, or one that reaches code the
# corpus does not): minimise it and add it under a name that says what it is:
#   BUILD/bin/fuzz_NAME -minimize_crash=1 -runs=10000 -exact_artifact_path=min CRASH
#   (or, to shrink the grown corpus: BUILD/bin/fuzz_NAME -merge=1 NEWDIR
#    tests/fuzz/corpus/NAME BUILD/out/NAME/corpus, and review NEWDIR)
#   cp min tests/fuzz/corpus/NAME/regress-WHAT; make check replays it.
set -u
B=${1:?usage: fuzz.sh BUILD NAME...}
shift
SECONDS_EACH=${FUZZ_SECONDS:-60}
HERE=$(cd "$(dirname "$0")/.." && pwd)
case $SECONDS_EACH in ''|*[!0-9]*|0) echo "fuzz: FUZZ_SECONDS must be a positive whole number" >&2; exit 2 ;; esac
[ $# -gt 0 ] || { echo "fuzz: no targets (tests/fuzz/fuzz_NAME.c)" >&2; exit 2; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1
status=0
printf '%-12s %8s %12s %8s %8s %6s  %s\n' target seconds executions crashes timeouts ooms kept
for name in "$@"; do
    bin=$B/bin/fuzz_$name
    out=$B/out/$name
    if [ ! -x "$bin" ]; then
        echo "fuzz: no $bin (make fuzz builds it)" >&2
        status=2
        continue
    fi
    rm -rf "$out"
    mkdir -p "$out/corpus"
    # A scratch copy: what the run finds never lands in tests/ by itself.
    [ -d "$HERE/tests/fuzz/corpus/$name" ] && cp -R "$HERE/tests/fuzz/corpus/$name/." "$out/corpus/"
    dict=()
    [ -f "$HERE/tests/fuzz/$name.dict" ] && dict=(-dict="$HERE/tests/fuzz/$name.dict")
    start=$(date +%s)
    "$bin" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/" "${dict[@]}" "$out/corpus" >"$out/log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    # Fork mode's status lines: "#EXECS: cov: ... oom/timeout/crash: O/T/C time: ..."
    last=$(grep -E '^#[0-9]+: cov:' "$out/log" | tail -1)
    execs=$(printf '%s' "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    counts=$(printf '%s' "$last" | sed -n 's|.*oom/timeout/crash: \([0-9]*\)/\([0-9]*\)/\([0-9]*\).*|\1 \2 \3|p')
    read -r ooms timeouts crashes <<<"${counts:-0 0 0}"
    kept=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' \) | wc -l)
    printf '%-12s %8s %12s %8s %8s %6s  %s\n' "$name" "$took" "${execs:-?}" "$crashes" \
        "$timeouts" "$ooms" "$kept in $out/"
    if [ -z "$last" ]; then
        echo "fuzz: $name did not run (exit $rc); see $out/log:" >&2
        tail -5 "$out/log" >&2
        status=2
    elif [ "$kept" -gt 0 ] || [ "$crashes" != 0 ] || [ "$timeouts" != 0 ]; then
        [ $status = 0 ] && status=1
    fi
done
exit $status
