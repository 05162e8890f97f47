#!/bin/bash
# celery_test.sh BUILD: examples/celery/sqlfeed_tasks.py on a real broker and a
# real worker: a redis-server of its own (127.0.0.1, a free port, no
# persistence), PostgreSQL (tests/servers.sh, unless SQLFEED_PG_URL is set)
# holding the 200,000-row reference data set, and Debian's Celery worker
# (/usr/bin/python3 -m celery, prefork, concurrency 2).
#
#   - the one-process render task equals the CLI's render; a failure is retried;
#     the worker SIGKILLed mid-render keeps the previous feed;
#   - the chord: 4 shards (`sqlfeed render --shard K/4 --shard-key id`, one
#     snapshot from `sqlfeed snapshot`) then `sqlfeed publish`: the same bytes
#     as the one-process render (SOURCE_DATE_EPOCH fixed) and the same XML
#     (tests/ref/xml_equal.py);
#   - a shard that fails once (the tasks' test hook, SQLFEED_TASKS_FAULT_DIR)
#     is retried by Celery and the feed is still right;
#   - the worker's process group SIGKILLed mid-shard: the previous feed stays,
#     byte for byte, no temporary file beside it; a rerun publishes it right;
#     and with the caller still waiting, a new worker gets the unacknowledged
#     shards again after the visibility timeout (15 s here) and the chord
#     completes;
#   - publish refusing a missing shard (exit 7) is not retried; a render past
#     the tasks' soft time limit stops sqlfeed, leaves no temporary file;
#   - everything it started is stopped (the EXIT trap too).
# The sharded steps SKIP when the build has no `render --shard`, `snapshot`
# and `publish`. SKIPs (with the reason) when redis-server or python3-celery
# are missing (make deps installs them). Prints PASS/FAIL/SKIP lines.
#
# Environment: SQLFEED_CELERY_ROWS (default 200000) rows of the data set.
set -u
B=${1:?usage: celery_test.sh BUILD}
B=$(cd "$B" && pwd)
SF=$B/sqlfeed
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$HERE/ref
TASKS=$(cd "$HERE/../examples/celery" && pwd)
PY=/usr/bin/python3 # Debian's, which has python3-celery (not the first python3 on PATH)
ROWS=${SQLFEED_CELERY_ROWS:-200000}
N=4
T=$(mktemp -d /tmp/sqlfeed-celery.XXXXXX)
# shellcheck source=tests/lib.sh
. "$HERE/lib.sh"
export SOURCE_DATE_EPOCH=1700000000 # the same head in every render
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0

REDIS_PID="" WORKER_PID="" STARTED="" CALLER=""
# stop_worker: warm shutdown (SIGTERM to the worker), then its whole process
# group (the pool and any sqlfeed it ran) is SIGKILLed if anything is left.
stop_worker() {
    [ -n "$WORKER_PID" ] || return 0
    kill -TERM "$WORKER_PID" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$WORKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$WORKER_PID" 2>/dev/null
    wait "$WORKER_PID" 2>/dev/null
    for _ in $(seq 50); do pgrep -g "$WORKER_PID" >/dev/null || break; sleep 0.1; done
    WORKER_PID=""
}
cleanup() {
    [ -z "$CALLER" ] || { kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; }
    stop_worker
    [ -z "$REDIS_PID" ] || { kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; }
    [ -z "$STARTED" ] || "$HERE/servers.sh" stop "$STARTED" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what it needs ------------------------------------------------------------
need() { skip "celery" "$1"; exit 0; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    need "redis-server is not installed (make deps: redis-server)"
"$PY" -c 'import celery, redis' 2>/dev/null ||
    need "$PY cannot import celery and redis (make deps: python3-celery python3-redis)"
for t in psql sqlite3 pgrep setsid cmp sha256sum; do
    command -v $t >/dev/null || need "$t is missing (make deps)"
done
SHARDS=1 SHARDS_WHY=""
if ! "$SF" snapshot --help >/dev/null 2>&1 || ! "$SF" publish --help >/dev/null 2>&1; then
    SHARDS=0 SHARDS_WHY="this build has no sqlfeed snapshot / sqlfeed publish (the sharded renders)"
fi

free_port() { "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- redis-server ---------------------------------------------------------------
RPORT=$(free_port)
mkdir "$T/redis"
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no \
    --dir "$T/redis" --logfile "$T/redis/log" --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for _ in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
if [ "$(rcli ping 2>/dev/null)" != PONG ]; then
    fail "redis-server" "not answering on 127.0.0.1:$RPORT: $(tail -3 "$T/redis/log")"; exit 1
fi
pass "redis-server on 127.0.0.1:$RPORT, no persistence"
export SQLFEED_CELERY_BROKER=redis://127.0.0.1:$RPORT/0
export SQLFEED_CELERY_BACKEND=redis://127.0.0.1:$RPORT/1
export SQLFEED=$SF
VIS=15 # the redis visibility timeout: a dead worker's task is delivered again after it
export SQLFEED_CELERY_VISIBILITY=$VIS

# --- PostgreSQL and the data set ----------------------------------------------------
if [ -z "${SQLFEED_PG_URL:-}" ]; then
    if ! out=$("$HERE/servers.sh" start 2>"$T/servers.err"); then
        fail "start PostgreSQL" "$(tail -5 "$T/servers.err")"; exit 1
    fi
    eval "$out"
    STARTED=$SQLFEED_SERVERS_DIR
fi
# The tasks get the URL without its password (task arguments are kept in the
# broker); the password reaches sqlfeed through PGPASSWORD.
PW=$(sed -nE 's|^postgres(ql)?://[^:/@]*:([^@]*)@.*|\2|p' <<<"$SQLFEED_PG_URL")
PG=$(sed -E 's|^(postgres(ql)?://[^:/@]*):[^@]*@|\1@|' <<<"$SQLFEED_PG_URL")
[ -z "$PW" ] || export PGPASSWORD=$PW
if ! "$PY" "$REF/make_jobs_db.py" --rows "$ROWS" --out "$T/jobs.db" >"$T/gen.log" 2>&1 ||
    ! "$REF/load_dataset.sh" "$T/jobs.db" "$PG" >"$T/load.log" 2>&1; then
    fail "load the data set" "$(tail -5 "$T/gen.log" "$T/load.log")"; exit 1
fi
rm -f "$T/jobs.db"
pass "the $ROWS-row reference data set in PostgreSQL"

# The one-process render every other feed must equal.
mkdir "$T/feeds"
run "$SF" render --db "$PG" -t simplyhired -o "$T/ref.xml"
TOTAL=$(sed -nE 's/^sqlfeed: ([0-9]+) rows.*/\1/p' "$T/err")
if [ "$rc" = 0 ] && [ -n "$TOTAL" ]; then pass "the one-process render: $TOTAL rows, $(stat -c %s "$T/ref.xml") bytes"
else fail "the one-process render" "exit $rc: $(head -c 400 "$T/err")"; exit 1; fi

# --- the worker ---------------------------------------------------------------------
WN=0
# start_worker [VAR=VALUE]...: a worker in a session (so a process group) of
# its own, with those variables set; its log is $T/worker.log (appended).
# Tasks' hook files live in $T/faults.
mkdir "$T/faults"
start_worker() {
    stop_worker # never two: a worker a failed step left running is stopped first
    WN=$((WN + 1))
    echo "==== worker $WN" >>"$T/worker.log"
    local from; from=$(wc -l <"$T/worker.log")
    (cd "$TASKS" && export SQLFEED_TASKS_FAULT_DIR=$T/faults "$@" && exec setsid "$PY" -m celery -A sqlfeed_tasks \
        worker --pool prefork --concurrency 2 --loglevel INFO -n "sqlfeed-test-$WN@%h" \
        --without-gossip --without-mingle --without-heartbeat) >>"$T/worker.log" 2>&1 </dev/null &
    WORKER_PID=$!
    for _ in $(seq 300); do
        tail -n "+$from" "$T/worker.log" | grep -q ' ready\.' && return 0
        kill -0 "$WORKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "start the worker" "$(tail -n 15 "$T/worker.log")"; exit 1
}
start_worker
if grep -q 'concurrency: 2 (prefork)' "$T/worker.log" && [ "$(ps -o pgid= -p "$WORKER_PID" | tr -d ' ')" = "$WORKER_PID" ]
then pass "a Celery $("$PY" -c 'import celery; print(celery.__version__)') worker: prefork, concurrency 2, its own process group"
else fail "the worker" "not prefork/2 or not a group leader: $(grep concurrency "$T/worker.log")"; fi
tasks() { "$PY" "$TASKS/sqlfeed_tasks.py" "$@"; }
TASKS_CMD=("$PY" "$TASKS/sqlfeed_tasks.py") # backgrounded as is, so $! is its pid

# feed_is NAME FILE: FILE is the reference render, byte for byte
feed_is() {
    if cmp -s "$T/ref.xml" "$2"; then pass "$1"
    else fail "$1" "differs from the one-process render: $(cmp "$T/ref.xml" "$2" 2>&1 | head -c 300)"; fi
}
# render_procs: the sqlfeed renders running in the worker's process group (MATCH: an extra pattern)
render_procs() { pgrep -g "$WORKER_PID" -f "$SF render .*$1" 2>/dev/null; }
# kill_mid_render PATTERN DIR: waits (30 s at most) for a render matching
# PATTERN in the worker's group and for a temporary file of sqlfeed's in DIR
# (a glob: the rows are being written), then SIGKILLs the whole group
kill_mid_render() {
    local i
    for i in $(seq 1500); do
        render_procs "$1" >/dev/null && compgen -G "$2/.*.sqlfeed-*" >/dev/null && break
        sleep 0.02
    done
    [ "$i" -lt 1500 ] || return 1
    kill -KILL -- "-$WORKER_PID"
    wait "$WORKER_PID" 2>/dev/null
    for _ in $(seq 50); do pgrep -g "$WORKER_PID" >/dev/null || break; sleep 0.1; done
    WORKER_PID=""
}
# restart: the killed run's messages dropped (a redelivery would come only after
# the visibility timeout), a fresh worker
restart() { rcli flushall >/dev/null; start_worker; }

# --- the one-process render as a task -------------------------------------------------
run tasks render --db "$PG" -o "$T/feeds/one.xml" --timeout 300
if [ "$rc" = 0 ]; then feed_is "render_feed: the task's feed is the CLI's" "$T/feeds/one.xml"
else fail "render_feed" "exit $rc: $(tail -c 400 "$T/err")"; fi

: >"$T/faults/fail-once-feed"
before=$(grep -c 'Retry in' "$T/worker.log")
run tasks render --db "$PG" -o "$T/feeds/one.xml" --timeout 300
if [ "$rc" = 0 ] && [ ! -e "$T/faults/fail-once-feed" ] && grep -q 'test hook: failing feed once' "$T/worker.log" &&
    [ "$(grep -c 'sqlfeed_tasks.render_feed.*Retry in' "$T/worker.log")" -gt "$before" ]; then
    feed_is "render_feed: killed once (the test hook), retried by Celery, the right feed" "$T/feeds/one.xml"
else fail "render_feed retried" "exit $rc: $(tail -c 300 "$T/err"); log: $(grep -E 'hook|Retry' "$T/worker.log" | tail -3)"; fi
no_temp "$T/feeds" && pass "render_feed: no temporary file left beside the feed after the retry" ||
    fail "render_feed: temporary files" "$(ls -A "$T/feeds")"

run tasks render --db "$SQLFEED_PG_URL" -o "$T/feeds/pw.xml"
if [ -n "$PW" ]; then
    if [ "$rc" = 1 ] && grep -q 'carries a password' "$T/err" && ! grep -qF "$PW" "$T/err" && [ ! -e "$T/feeds/pw.xml" ]
    then pass "a URL with a password is refused before it reaches the broker"
    else fail "a URL with a password" "exit $rc: $(sed "s/$PW/***/g" "$T/err" | head -c 300)"; fi
fi

# SIGKILL of the worker's process group while its sqlfeed writes the feed
sha=$(sha256sum <"$T/feeds/one.xml")
"${TASKS_CMD[@]}" render --db "$PG" -o "$T/feeds/one.xml" --timeout 120 >"$T/caller.out" 2>&1 &
CALLER=$!
if kill_mid_render "-o $T/feeds/one.xml" "$T/feeds"; then
    kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; CALLER=""
    if [ "$(sha256sum <"$T/feeds/one.xml")" = "$sha" ]; then pass "render_feed: worker SIGKILLed mid-render: the previous feed stays, byte for byte (its temporary file left, as after any SIGKILL)"
    else fail "render_feed killed" "the feed changed"; fi
    # a SIGKILLed sqlfeed cannot remove its temporary file (docs/sink.md); the next run on the feed does
    restart
    run tasks render --db "$PG" -o "$T/feeds/one.xml" --timeout 300
    if [ "$rc" = 0 ] && no_temp "$T/feeds"; then feed_is "render_feed: the rerun after the kill publishes the feed and removes the temporary file" "$T/feeds/one.xml"
    else fail "render_feed rerun after the kill" "exit $rc: $(tail -c 300 "$T/err"); $(ls -A "$T/feeds")"; fi
else
    fail "render_feed killed" "no render of the feed writing in the worker's group in 30 s"
    kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; CALLER=""
    restart
fi

# --- the chord: N shards, then publish ----------------------------------------------------
if [ "$SHARDS" = 0 ]; then
    for t in "chord: $N shards + publish = the one-process render" "chord: a shard killed once is retried" \
        "chord: worker SIGKILLed mid-shard keeps the previous feed" "chord: rerun after the kill"; do
        skip "$t" "$SHARDS_WHY"
    done
else
    FEED=$T/feeds/feed.xml
    build() { tasks build --db "$PG" -o "$FEED" --shards "$N" --shard-key id --timeout 300 "$@"; }
    # a chord is right when it exits 0, its feed is the reference and the
    # build's shard directory is gone
    chord_ok() {
        [ "$rc" = 0 ] || { fail "$1" "exit $rc: $(tail -c 400 "$T/err")"; return; }
        feed_is "$1" "$FEED"
        if [ -e "$FEED.shards" ] || ! no_temp "$T/feeds"; then fail "$1: left beside the feed" "$(ls -A "$T/feeds")"; fi
        if pgrep -f "^$SF snapshot" >/dev/null; then fail "$1: snapshot" "a sqlfeed snapshot still runs"; fi
    }
    run build
    chord_ok "chord: $N shards + publish = the one-process render, byte for byte"
    if [ "$rc" = 0 ]; then
        rows=$("$PY" -c 'import json, sys; print(json.loads(sys.stdin.read())["rows"])' <"$T/out")
        [ "$rows" = "$TOTAL" ] && pass "chord: the shards' manifests add up to the query's $TOTAL rows" ||
            fail "chord: rows" "the manifests say $rows, the render $TOTAL"
        if "$PY" "$REF/xml_equal.py" "$T/ref.xml" "$FEED" >"$T/eq" 2>&1; then pass "chord: xml_equal.py: the same document"
        else fail "chord: xml_equal.py" "$(head -c 300 "$T/eq")"; fi
        used=$(grep -E 'sqlfeed_tasks.render_shard\[.*succeeded' "$T/worker.log" | grep -oE 'ForkPoolWorker-[0-9]+' | sort -u | wc -l)
        [ "$used" = 2 ] && pass "chord: the shards ran on both pool processes" ||
            fail "chord: pool" "shards ran on $used pool process(es)"
    fi

    # a shard fails once (SIGKILL of its sqlfeed by the test hook) and is retried
    : >"$T/faults/fail-once-shard-2"
    before=$(grep -c 'sqlfeed_tasks.render_shard.*Retry in' "$T/worker.log")
    run build
    if [ ! -e "$T/faults/fail-once-shard-2" ] && grep -q 'test hook: failing shard-2 once' "$T/worker.log" &&
        [ "$(grep -c 'sqlfeed_tasks.render_shard.*Retry in' "$T/worker.log")" -gt "$before" ]; then
        chord_ok "chord: shard 2 killed once is retried by Celery; one right feed"
    else fail "chord: a shard killed once is retried" "exit $rc; log: $(grep -E 'hook|Retry' "$T/worker.log" | tail -3)"; fi

    # SIGKILL of the worker's group mid-shard
    [ -s "$FEED" ] || previous "$FEED" # (when the chords above failed)
    rm -rf "$FEED.shards"                # (what failed chords above left)
    sha=$(sha256sum <"$FEED")
    "${TASKS_CMD[@]}" build --db "$PG" -o "$FEED" --shards "$N" --shard-key id --timeout 120 >"$T/caller.out" 2>&1 &
    CALLER=$!
    if kill_mid_render "--shard " "$FEED.shards/*"; then
        kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; CALLER=""
        done_=$(find "$FEED.shards" -name "*-of-$N.json" 2>/dev/null | wc -l)
        if [ "$done_" -ge "$N" ]; then fail "chord: killed mid-shard" "the kill came after all $N shards were done"
        elif [ "$(sha256sum <"$FEED")" != "$sha" ]; then fail "chord: killed mid-shard" "the feed changed"
        elif ! no_temp "$T/feeds"; then fail "chord: killed mid-shard" "a temporary file beside the feed: $(ls -A "$T/feeds")"
        else pass "chord: worker SIGKILLed while writing a shard's part ($done_ of $N shards done): the previous feed stays, byte for byte, no temporary file beside it"; fi
        sleep 1
        pgrep -f "^$SF snapshot" >/dev/null && fail "chord: killed caller" "its sqlfeed snapshot still runs"
        rm -rf "$FEED.shards" # the killed build's directory, kept for inspection
        restart
        run build
        chord_ok "chord: rerun after the kill (new snapshot, new build directory): one right feed"
    else
        fail "chord: killed mid-shard" "no shard render writing its part in the worker's group in 30 s"
        kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; CALLER=""
    fi
    # SIGKILL of the worker's group mid-shard while the caller waits on: the
    # shards' messages were not acknowledged (acks_late), so once the
    # visibility timeout passes the next worker gets them again; they import
    # the snapshot the caller still holds and the chord completes.
    rm -rf "$FEED.shards"
    sha=$(sha256sum <"$FEED")
    "${TASKS_CMD[@]}" build --db "$PG" -o "$FEED" --shards "$N" --shard-key id --timeout 240 >"$T/caller.out" 2>&1 &
    CALLER=$!
    if kill_mid_render "--shard " "$FEED.shards/*"; then
        killed_at=$(date +%s)
        [ "$(sha256sum <"$FEED")" = "$sha" ] || fail "chord: redelivery" "the feed changed at the kill"
        # A worker puts back the messages unacknowledged for longer than the
        # timeout when it starts, then on every 10th check (one each 10 s):
        # started at once it took 105 s here; started after the timeout, no wait.
        sleep $((VIS + 1))
        start_worker
        for _ in $(seq 2400); do kill -0 "$CALLER" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$CALLER" 2>/dev/null; then
            fail "chord: redelivery to the next worker" "the caller still waits 240 s after the kill"
            kill "$CALLER"
        fi
        wait "$CALLER"; rc=$?; CALLER=""
        cp "$T/caller.out" "$T/out"; : >"$T/err"; cat "$T/caller.out" >"$T/err"
        chord_ok "chord: worker SIGKILLed mid-shard, the caller waiting: a new worker gets the unacknowledged shards after the visibility timeout (${VIS}s; done $(($(date +%s) - killed_at)) s after the kill), the chord completes, one right feed"
    else
        fail "chord: redelivery" "no shard render writing its part in the worker's group in 30 s"
        kill "$CALLER" 2>/dev/null; wait "$CALLER" 2>/dev/null; CALLER=""
    fi

    # publish refused (exit 7: shard 4 of 4 missing) is not retried; the feed stays
    sha=$(sha256sum <"$FEED")
    mkdir -p "$T/refused"
    for k in 1 2 3; do "$SF" render --db "$PG" -t simplyhired -o "$FEED" --shard "$k/4" --shard-key id --shard-dir "$T/refused" -q; done
    before=$(grep -c 'sqlfeed_tasks.publish.*Retry in' "$T/worker.log")
    run "$PY" -c 'import sys
sys.path.insert(0, sys.argv[1])
import sqlfeed_tasks as t
r = t.publish.delay([{"shard": k, "of": 4, "manifest": {}} for k in (1, 2, 3, 4)], sys.argv[2], sys.argv[3], 4)
try:
    print("published", r.get(timeout=120))
except t.SqlfeedRefused as e:
    print("refused:", e)' "$TASKS" "$FEED" "$T/refused"
    if grep -q '^refused:.*exit 7.*4' "$T/out" && [ "$(sha256sum <"$FEED")" = "$sha" ] && no_temp "$T/feeds" &&
        [ "$(grep -c 'sqlfeed_tasks.publish.*Retry in' "$T/worker.log")" = "$before" ]; then
        pass "publish: a missing shard is refused (exit 7), not retried, the feed untouched"
    else fail "publish refused" "$(head -c 400 "$T/out") $(head -c 300 "$T/err")"; fi
fi

# a render past the tasks' soft time limit (1 s here): sqlfeed gets SIGTERM,
# removes its temporary file, the task fails (not retried), the feed stays
start_worker SQLFEED_SOFT_TIME_LIMIT=1
sha=$(sha256sum <"$T/feeds/one.xml")
before=$(grep -c 'Retry in' "$T/worker.log")
# (the caller's setting counts: Celery sends the task's limits with the message)
# (a query that takes 5 s before its first row, so the limit is passed
# whatever the rows: 200,000, or 20,000 under ASan)
SLOWQ="SELECT q.* FROM ($("$SF" templates --show simplyhired.sql)) AS q, (SELECT pg_sleep(5)) AS s ORDER BY q.id"
SQLFEED_SOFT_TIME_LIMIT=1 run tasks render --db "$PG" -o "$T/feeds/one.xml" --timeout 120 --query "$SLOWQ"
if [ "$rc" = 1 ] && grep -q 'SoftTimeLimitExceeded' "$T/err" && [ "$(sha256sum <"$T/feeds/one.xml")" = "$sha" ] &&
    no_temp "$T/feeds" && [ "$(grep -c 'Retry in' "$T/worker.log")" = "$before" ] && [ -z "$(render_procs "")" ]; then
    pass "render_feed past its soft time limit: sqlfeed stopped, no temporary file, not retried, the feed untouched"
else fail "soft time limit" "exit $rc: $(tail -c 300 "$T/err"); $(ls -A "$T/feeds")"; fi

# --- everything stops ----------------------------------------------------------------------
pg=$WORKER_PID
stop_worker
kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rp=$REDIS_PID; REDIS_PID=""
left=$(pgrep -a -g "$pg"; kill -0 "$rp" 2>/dev/null && echo redis-server; pgrep -af "^$PY $TASKS/sqlfeed_tasks.py|^$SF (render|snapshot|publish)")
if [ -z "$left" ] && ! rcli ping >/dev/null 2>&1; then
    pass "the worker (its whole process group), redis-server and every caller stopped"
else fail "stop" "left: $left"; fi
