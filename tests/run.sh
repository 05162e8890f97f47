#!/bin/bash
# run.sh BUILD: runs every test against the build in BUILD and ends with
# "N passed, N failed[, N skipped]". Shows failures and per-suite summaries;
# VERBOSE=1 shows every line. Exit 1 if anything failed.
set -u
B=${1:?usage: run.sh BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
# Every suite reads only files of this repository (tests/data, tests/ref).
unset SHARED
S=$(mktemp -d /tmp/sqlfeed-test.XXXXXX)
trap 'rm -rf "$S"' EXIT
LOG=$S/log

suite() { # suite NAME CMD...: run one test program, keep its lines
    local name=$1; shift
    echo "== $name"
    "$@" >"$S/suite" 2>&1
    local rc=$?
    cat "$S/suite" >>"$LOG"
    if [ "${VERBOSE:-0}" = 1 ]; then cat "$S/suite"; else grep -vE '^(PASS|SKIP):' "$S/suite"; fi
    # A suite that dies without reporting its failure still counts as one.
    if [ $rc -ne 0 ] && ! grep -q '^FAIL' "$S/suite"; then
        echo "FAIL: $name: exited $rc" | tee -a "$LOG"
    fi
}

mkdir -p "$S/unit" "$S/hostile"
suite unit "$B/tests/unit_test" "$S/unit"
suite spec "$B/tests/spec_test" -v "$HERE/data/mustache-spec"
suite hostile "$B/tests/hostile_test" "$B/sqlfeed" "$S/hostile"
mkdir -p "$S/wellformed"; suite wellformed "$B/tests/wellformed_test" "$S/wellformed"
suite secrets "$B/tests/secret_test"
suite sources "$HERE/source_test.sh" "$B"
mkdir -p "$S/output"; suite output "$B/tests/output_test" "$S/output"
mkdir -p "$S/feed"; suite feed "$B/tests/feed_test" "$S/feed"
suite format "$B/tests/format_test"
mkdir -p "$S/stage"; suite stage "$B/tests/stage_test" "$S/stage"
suite stage-tools "$HERE/stage_test.sh" "$B"
mkdir -p "$S/thread"; suite thread "$B/tests/thread_test" "$S/thread"
mkdir -p "$S/commit"; suite commit "$B/tests/commit_test" "$S/commit"
suite json "$B/tests/json_test"
mkdir -p "$S/feed9"; suite feed9 "$B/tests/feed9_test" "$S/feed9"
mkdir -p "$S/watch"; suite watch "$B/tests/watch_test" "$S/watch"
suite cli "$HERE/cli_test.sh" "$B"
suite cli8 "$HERE/cli8_test.sh" "$B"
suite cli9 "$HERE/cli9_test.sh" "$B"
suite census "$HERE/census_test.sh" "$B"
suite publish "$HERE/publish_test.sh" "$B"
suite set "$HERE/set_test.sh" "$B"
suite servers "$HERE/server_test.sh" "$B"
suite shards "$HERE/shard_test.sh" "$B"
# The chord renders the 200,000-row reference feed; under ASan+UBSan (the
# second pass of make check) the same steps over 20,000 rows.
if [ "${SANITIZED:-0}" = 1 ]; then
    SQLFEED_CELERY_ROWS=${SQLFEED_CELERY_ROWS:-20000} suite celery "$HERE/celery_test.sh" "$B"
else
    suite celery "$HERE/celery_test.sh" "$B"
fi
suite formats "$HERE/formats_test.sh" "$B"
suite oom "$HERE/oom_test.sh" "$B"
suite fault "$HERE/fault_test.sh" "$B"
suite fuzz-replay "$HERE/fuzz_replay.sh" "$B"
suite build "$HERE/build_test.sh" "$B"
suite python "$HERE/python_test.sh" "$B"
# memcheck on the optimised build (the sanitized one has ASan instead)
if [ "${SANITIZED:-0}" != 1 ]; then suite valgrind "$HERE/valgrind_test.sh" "$B"; fi

p=$(grep -c '^PASS' "$LOG"); f=$(grep -c '^FAIL' "$LOG"); k=$(grep -c '^SKIP' "$LOG")
echo "$p passed, $f failed, $k skipped"
[ -z "${COUNTS:-}" ] || echo "$p $f $k" >> "$COUNTS"
[ "$f" = 0 ]
