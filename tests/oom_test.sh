#!/bin/bash
# oom_test.sh BUILD: allocation failure at every point, as expat's allocation
# tests do. SQLFEED_FAIL_ALLOC_AFTER=N makes every census allocation after
# the first N fail (sf_census_fail_after; SQLite's memory is routed there
# too); this loops N = 0, 1, 2, ... over one render that uses every feature
# (a template file with a partial, --param, --query-file, --census, --mem-log,
# --census-fifo, --count) until the render succeeds, and asserts for each N:
# no crash, exit 1, one line that says "out of memory", nothing published
# (the previous feed byte-identical), no temporary file left, the FIFO it
# made removed, and under ASan (SANITIZED=1) no leak or error report
# (LeakSanitizer is on: a leak changes the exit status and prints a report).
# Then the library-level loop, tests/oom_test.c (built as BUILD/tests/oom_test).
# Environment: OOM_STEP (default 1: every N; a larger step samples N coarsely),
# OOM_MAX (default 20000: the loop gives up there and fails).
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: oom_test.sh BUILD}
SF=$B/sqlfeed
STEP=${OOM_STEP:-1}
MAX=${OOM_MAX:-20000}
T=$(mktemp -d /tmp/sqlfeed-oom.XXXXXX)
trap 'rm -rf "$T"' EXIT
# LeakSanitizer reports at exit with status 23; abort_on_error is off, so a
# sanitizer report is an exit status and text on stderr, both checked.
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0:detect_leaks=1:exitcode=23
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:print_stacktrace=1
unset SOURCE_DATE_EPOCH SQLFEED_CENSUS

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

"$SF" demo-db --rows 20 -o "$T/jobs.db" 2>/dev/null || { fail "oom: demo-db" "cannot make $T/jobs.db"; exit 1; }
mkdir -p "$T/tpl" "$T/pub"
cat > "$T/tpl/feed.mustache" <<'EOF'
{{! sqlfeed: every feature, for the allocation-failure loop }}
<?xml version="1.0" encoding="utf-8"?>
<jobs site="{{site}}" generated="{{generated_at}}" v="{{sqlfeed_version}}">
{{#rows}}{{>item}}{{/rows}}{{^rows}}<!-- no jobs -->{{/rows}}</jobs>
EOF
cat > "$T/tpl/item.mustache" <<'EOF'
<job id="{{id}}" ref="{{reference}}"><title>{{title}}</title>{{#salary}}<salary>{{salary}}</salary>{{/salary}}<d><![CDATA[{{description}}]]></d><!-- {{city}} --></job>
EOF
cat > "$T/q.sql" <<'EOF'
SELECT j.id, j.reference, j.title, j.salary, j.description, j.city
FROM jobs j JOIN companies c ON c.id = j.company_id
WHERE j.site <> :site ORDER BY j.id
EOF
OUT=$T/pub/feed.xml
printf 'the previous feed\n<keep/>\n' > "$T/previous"

render() { # render N: one run with the N-th allocation failing
    cp "$T/previous" "$OUT"
    rm -f "$T/mem.log"
    SQLFEED_FAIL_ALLOC_AFTER=$1 "$SF" render --db "$T/jobs.db" --template "$T/tpl/feed.mustache" \
        --query-file "$T/q.sql" --param site=nosuchsite -o "$OUT" --census \
        --mem-log "$T/mem.log" --census-fifo "$T/census.fifo" --count --progress=never \
        >"$T/out" 2>"$T/err"
}

# What one failed run must look like; prints the first broken rule.
check_failed() { # check_failed N RC
    local n=$1 rc=$2 msg
    # The census (--census) follows the message: its header and indented lines.
    msg=$(grep -v -e '^sqlfeed: census at ' -e '^  ' "$T/err")
    if grep -qE 'Sanitizer|runtime error|LeakSanitizer|SUMMARY:' "$T/err"; then
        echo "a sanitizer report: $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$T/err")"
    elif [ "$rc" -ge 128 ]; then echo "killed by signal $((rc - 128))"
    elif [ "$rc" != 1 ]; then echo "exit $rc (want 1): $(head -c 300 <<<"$msg")"
    elif [ "$(grep -c . <<<"$msg")" != 1 ]; then echo "not one line: $(head -c 300 <<<"$msg")"
    elif ! grep -q '^sqlfeed: .*out of memory' <<<"$msg"; then echo "does not say out of memory: $msg"
    elif ! cmp -s "$T/previous" "$OUT"; then echo "the previous feed changed"
    elif [ -n "$(find "$T/pub" -name '.*sqlfeed-*')" ]; then echo "a temporary file is left: $(ls -A "$T/pub")"
    elif [ "$(ls -A "$T/pub")" != feed.xml ]; then echo "other files in the output directory: $(ls -A "$T/pub")"
    elif [ -e "$T/census.fifo" ]; then echo "the census FIFO it made is left"
    elif [ -s "$T/out" ]; then echo "wrote to stdout"
    fi
}

n=0 failures=0 bad=0 succeeded=
while [ "$n" -le "$MAX" ]; do
    render "$n"; rc=$?
    if [ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' "$T/err"; then succeeded=$n; break; fi
    why=$(check_failed "$n" "$rc")
    if [ -n "$why" ]; then
        bad=$((bad + 1))
        [ "$bad" -le 25 ] && fail "oom cli: allocation $n fails" "$why"
    fi
    failures=$((failures + 1))
    n=$((n + STEP))
done
if [ -z "$succeeded" ]; then
    fail "oom cli: the render succeeds once enough allocations do" "still failing at N=$MAX"
else
    # Succeeding, the same render must publish the whole feed.
    if cmp -s "$T/previous" "$OUT" || ! grep -q '</jobs>' "$OUT" ||
        [ "$(grep -o '<job ' "$OUT" | wc -l)" != 20 ]; then
        fail "oom cli: the first render that succeeds (N=$succeeded) publishes the feed" "$(head -c 200 "$OUT")"
    else
        pass "oom cli: the render succeeds from N=$succeeded allocations on and publishes 20 rows"
    fi
fi
# A loop that never failed an allocation proves nothing.
if [ "$failures" -lt 100 ]; then
    fail "oom cli: the hook fails allocations" "only $failures runs failed before success"
elif [ "$bad" = 0 ]; then
    pass "oom cli: all $failures runs with an allocation failing (N=0..$((succeeded - 1)), step $STEP) exit 1 with one line, publish nothing, leave no temporary file${SANITIZED:+, no leak}"
else
    fail "oom cli: runs with an allocation failing" "$bad of $failures broke a rule (first ones above)"
fi

# A bad value is refused, not taken as 0 or ignored.
SQLFEED_FAIL_ALLOC_AFTER=x "$SF" templates >/dev/null 2>"$T/err"; rc=$?
if [ "$rc" = 2 ] && grep -q 'SQLFEED_FAIL_ALLOC_AFTER must be a number' "$T/err"; then
    pass "oom cli: SQLFEED_FAIL_ALLOC_AFTER=x is refused (exit 2)"
else
    fail "oom cli: SQLFEED_FAIL_ALLOC_AFTER=x is refused" "exit $rc: $(head -c 200 "$T/err")"
fi

# The library-level loop.
if [ -x "$B/tests/oom_test" ]; then
    mkdir -p "$T/lib"
    "$B/tests/oom_test" "$T/lib"
else
    fail "oom lib" "$B/tests/oom_test is not built"
fi
