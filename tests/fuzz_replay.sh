#!/bin/bash
# fuzz_replay.sh BUILD: replays each fuzz target's regression corpus
# (tests/fuzz/corpus/NAME/) through BUILD/tests/fuzz/replay_NAME, the target
# linked with a plain main() (tests/fuzz/replay.c), with a time limit per
# target. Every tests/fuzz/fuzz_NAME.c is a target; one without a corpus or
# without its replay program fails.
# Prints "PASS: name" / "FAIL: name: detail".
set -u
B=${1:?usage: fuzz_replay.sh BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
LIMIT=${FUZZ_REPLAY_SECONDS:-120}
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:print_stacktrace=1
T=$(mktemp -d /tmp/sqlfeed-replay.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
for src in "$HERE"/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=${src##*/fuzz_}
    name=${name%.c}
    n=$((n + 1))
    bin=$B/tests/fuzz/replay_$name
    corpus=$HERE/fuzz/corpus/$name
    if [ ! -x "$bin" ]; then
        echo "FAIL: fuzz-replay $name: no $bin (make builds it)"
    elif [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        echo "FAIL: fuzz-replay $name: no regression corpus in tests/fuzz/corpus/$name/"
    elif { timeout -k 5 "$LIMIT" "$bin" "$corpus" >"$T/out" 2>"$T/err"; } 2>/dev/null; then
        echo "PASS: fuzz-replay $name ($(sed -n 's/^replayed //p' "$T/out"))"
    else
        rc=$?
        [ $rc = 124 ] && rc="timed out after ${LIMIT}s"
        input=$(grep '^replay: ' "$T/err" | tail -1 | sed 's/^replay: //')
        why=$(grep -v '^replay: ' "$T/err" | head -c 600 | tr '\n' ' ')
        echo "FAIL: fuzz-replay $name: exit $rc on $input: $why"
    fi
done
[ $n -gt 0 ] || echo "SKIP: fuzz-replay: no targets in tests/fuzz/"
