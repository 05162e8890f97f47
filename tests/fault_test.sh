#!/bin/bash
# fault_test.sh BUILD: the fault matrix. Each failure point of a render is
# provoked in turn and each row asserts the promise of 0.1.0: the exit
# status is the documented one, one line names the cause, the previous feed
# is byte-identical and no temporary file is left (after the rename only the
# directory sync can fail: then the new feed is in place, complete, and the
# message says so).
#   database: open (not a database, missing file), prepare, first row,
#             mid-stream SQL error
#   output:   create the temporary file, write (EIO, ENOSPC, EFBIG injected;
#             EFBIG from a real `ulimit -f`: SIGXFSZ is ignored, so write
#             fails, exit 5), fsync, close, rename, directory fsync
#             (tests/inject.c, an LD_PRELOAD shim, provokes them)
#   memory:   --max-memory crossed (exit 6)
#   signals:  every asynchronous signal whose default action ends the
#             process, sent mid-render (exit 128+N); SIGTERM also before the
#             first row. Crash signals (SEGV BUS ABRT SYS) sent by kill: the
#             handler removes the temporary file, prints "crashed with signal
#             N; temporary file removed, nothing published" and dies by the
#             signal. SIGXFSZ and SIGPIPE are ignored by the command (a
#             file-size limit and a closed output are write errors to
#             report): the render must stop cleanly or go on. SIGUSR1
#             prints the census and must not stop the render.
#   servers:  PostgreSQL and MariaDB (throwaway servers, tests/servers.sh,
#             loopback only; SKIP when their binaries are missing): a hung
#             server (kill -STOP) with SIGTERM and with --timeout, and a killed
#             backend.
# Environment: FAULT_BOUND (seconds a signal or --timeout may take to end a
# run against a hung server, default 10), FAULT_SERVERS=0 skips the servers.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: fault_test.sh BUILD}
SF=$B/sqlfeed
INJ=$B/tests/inject.so
HERE=$(cd "$(dirname "$0")" && pwd)
BOUND=${FAULT_BOUND:-10}
T=$(mktemp -d /tmp/sqlfeed-fault.XXXXXX)
STARTED=""
STOPPED=""  # a server process this script stopped (kill -STOP), to resume
cleanup() {
    [ -z "$STOPPED" ] || kill -CONT $STOPPED 2>/dev/null
    kill $(jobs -p) 2>/dev/null
    [ -z "$STARTED" ] || "$HERE/servers.sh" stop "$STARTED" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
unset SOURCE_DATE_EPOCH SQLFEED_CENSUS SQLFEED_FAIL_ALLOC_AFTER
ulimit -c 0  # the signals whose default is a core dump must not leave one here

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }

DB=$T/jobs.db
"$SF" demo-db --rows 3000 -o "$DB" 2>/dev/null || { fail "fault: demo-db" "cannot make $DB"; exit 1; }
mkdir -p "$T/pub"
OUT=$T/pub/feed.xml
printf '<r><v>{{v}}</v>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v0.mustache"
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"
# The previous feed: bytes a rewrite would not reproduce by chance.
{ printf '<?xml version="1.0"?>\n<previous>'; head -c 3000 /dev/urandom | base64 -w 76; printf '</previous>\n'; } > "$T/previous"
ENDLESS="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000000) SELECT x AS v FROM c"
MID="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000)
     SELECT CASE WHEN x = 1001 THEN abs(-9223372036854775807 - 1) ELSE x END AS v FROM c"

# prev: the previous feed in place, and nothing an earlier row left beside it
prev() { rm -f "$T"/pub/.*sqlfeed-*; cp "$T/previous" "$OUT"; }
# broken WANT_RC REGEX [KEEP]: every rule the last run broke ("" if none),
# judged on rc and $T/err; KEEP=1 (the default): the previous feed must be
# byte-identical
broken() {
    local want=$1 re=$2 keep=${3:-1} msg why=()
    msg=$(grep -v -e '^sqlfeed: census at ' -e '^  ' "$T/err")
    [ "$rc" = "$want" ] || why+=("exit $rc (want $want)")
    if [ -z "$msg" ]; then why+=("no message")
    elif [ "$(grep -c . <<<"$msg")" != 1 ]; then why+=("not one line: $(head -c 300 <<<"$msg")")
    elif ! grep -qE -- "$re" <<<"$msg"; then why+=("message does not match /$re/: $(head -c 300 <<<"$msg")")
    fi
    [ "$keep" = 1 ] && ! cmp -s "$T/previous" "$OUT" && why+=("the previous feed changed")
    [ -n "$(find "$T/pub" -name '.*sqlfeed-*')" ] && why+=("a temporary file is left")
    # The state record (.feed.xml.sqlfeed.state) is the last run's figures: it may stay.
    [ -n "$(find "$T/pub" -mindepth 1 ! -name feed.xml ! -name '.*sqlfeed-*' ! -name .feed.xml.sqlfeed.state)" ] &&
        why+=("other files beside the feed: $(ls -A "$T/pub" | tr '\n' ' ')")
    [ ${#why[@]} = 0 ] || { printf '%s; ' "${why[@]:0:${#why[@]}-1}"; printf '%s\n' "${why[-1]}"; }
}
# row NAME WANT_RC REGEX [KEEP]: one matrix row, judged on the last run
row() {
    local why
    why=$(broken "$2" "$3" "${4:-1}")
    if [ -z "$why" ]; then pass "fault: $1: exit $2, previous feed intact, no temporary file"
    else fail "fault: $1" "$why"; fi
}
render() { # render ARGS...: a render into $OUT over the previous feed
    prev
    "$SF" render -o "$OUT" --progress=never "$@" >/dev/null 2>"$T/err"; rc=$?
}
# launch ARGS...: starts `sqlfeed render -o $OUT ARGS` in the background with
# every signal at its default action (a non-interactive shell would start it
# with SIGINT and SIGQUIT ignored), stderr in $T/err; sets pid. A wrapper
# subshell collects its exit status (wait_end reads it), so the shell does not
# print a notice when a signal ends it.
launch() {
    rm -f "$T/pid" "$T/rc"
    ( env --default-signal "$SF" render -o "$OUT" --progress=never "$@" >/dev/null 2>"$T/err" &
      echo $! >"$T/pid"; wait $!; echo $? >"$T/rc" ) 2>/dev/null &
    WRAP=$!
    while [ ! -s "$T/pid" ]; do sleep 0.01; done
    pid=$(cat "$T/pid")
}
# wait_writing: until the running render's temporary file holds output
wait_writing() {
    local i
    for i in $(seq 400); do
        [ -n "$(find "$T/pub" -name '.*sqlfeed-*' -size +1k 2>/dev/null)" ] && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.025
    done
    return 1
}
# wait_end PID SECONDS: sets rc to the launched render's exit status, or to
# "timeout" (and kills it) when it has not ended in time
wait_end() {
    local pid=$1 i
    for i in $(seq $(($2 * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$WRAP" 2>/dev/null; rc=$(cat "$T/rc" 2>/dev/null || echo lost); return 0
        fi
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null; wait "$WRAP" 2>/dev/null
    rc=timeout
    echo "still running $2 s later (killed)" >>"$T/err"
    return 1
}

# ---- the database --------------------------------------------------------
printf 'not a database, just text\n%.0s' $(seq 200) > "$T/text.db"
render --db "$T/text.db" --query 'SELECT 1 AS v' --template "$T/v.mustache"
row "open: not a database" 4 "cannot (open|read) database .*text.db"
render --db "$T/no-such.db" --query 'SELECT 1 AS v' --template "$T/v.mustache"
row "open: no such file" 4 "no-such.db"
render --db "$DB" --query 'SELEC 1 AS v' --template "$T/v.mustache"
row "prepare: syntax error" 4 "syntax error"
render --db "$DB" --query 'SELECT abs(-9223372036854775807 - 1) AS v' --template "$T/v.mustache"
row "first row fails" 4 "at row 1: .*integer overflow"
render --db "$DB" --query "$MID" --template "$T/v.mustache"
row "SQL error mid-stream (row 1001)" 4 "query failed at row 1001: .*integer overflow"

# ---- the output ----------------------------------------------------------
inj() { local v=$1; shift; prev; env LD_PRELOAD="$INJ" "$v" "$SF" render -o "$OUT" --progress=never "$@" >/dev/null 2>"$T/err"; rc=$?; }
R=(--db "$DB" --template simplyhired)
inj SQLFEED_INJECT_CREATE_FAIL=1 "${R[@]}";        row "create the temporary file" 5 "cannot create a temporary file .*Permission denied"
inj SQLFEED_INJECT_EIO_AFTER=300000 "${R[@]}";     row "write: EIO mid-stream" 5 "Input/output error; nothing published"
inj SQLFEED_INJECT_EIO_AFTER=0 "${R[@]}";          row "write: EIO on the first write" 5 "Input/output error; nothing published"
inj SQLFEED_INJECT_ENOSPC_AFTER=300000 "${R[@]}";  row "write: ENOSPC (full disk)" 5 "No space left on device; nothing published"
inj SQLFEED_INJECT_EFBIG_AFTER=300000 "${R[@]}";   row "write: EFBIG (file-size limit, SIGXFSZ ignored)" 5 "File too large; nothing published"
inj SQLFEED_INJECT_FSYNC_EIO=1 "${R[@]}";          row "fsync of the temporary file" 5 "fsync .*Input/output error; nothing published"
# A durable render's step (every 32 MiB) waits for the writeback of the one before: it fails at
# the second step (64 MiB) of 80 MB of rows.
BIG="WITH RECURSIVE r(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM r WHERE v < 2000000) SELECT printf('%030d', v) AS v FROM r"
inj SQLFEED_INJECT_WRITEBACK_EIO=1 --db "$DB" --query "$BIG" --template "$T/v.mustache"
row "writeback of a 32 MiB step" 5 "write-back of .*\.sqlfeed-.*Input/output error; nothing published"
# gzip in blocks on its 2 workers: a write failing while they compress (the feed's rows do compress: 4 MB)
inj SQLFEED_INJECT_EIO_AFTER=300000 --db "$DB" --query "$BIG" --template "$T/v.mustache" --compress gzip
row "write: EIO mid-stream, gzip on workers" 5 "Input/output error; nothing published"
inj SQLFEED_INJECT_CLOSE_EIO=1 "${R[@]}";          row "close of the temporary file" 5 "close .*Input/output error; nothing published"
inj SQLFEED_INJECT_RENAME_FAIL=1 "${R[@]}";        row "rename over the feed" 5 "rename .*Input/output error; nothing published"
# The directory sync comes after the rename: the new feed is in place.
"$SF" render "${R[@]}" -o "$T/expected.xml" -q 2>/dev/null
inj SQLFEED_INJECT_DIRSYNC_EIO=1 "${R[@]}"
why=$(broken 5 "is published \([0-9]+ rows\), but fsync of directory .*Input/output error" 0)
[ -z "$why" ] && ! cmp -s "$T/expected.xml" "$OUT" && why="the published feed is not the complete new one"
if [ -z "$why" ]; then pass "fault: directory fsync: exit 5, says the feed is published, the new feed complete, no temporary file"
else fail "fault: directory fsync" "$why"; fi
# A real file-size limit: the kernel sends SIGXFSZ, then write fails EFBIG.
prev
rc=$( (ulimit -f 200 && env --default-signal "$SF" render "${R[@]}" -o "$OUT" --progress=never \
    >/dev/null 2>"$T/err"; echo $?) 2>/dev/null)
row "write: EFBIG from ulimit -f (SIGXFSZ)" 5 "File too large; nothing published"

# ---- memory --------------------------------------------------------------
render --db "$DB" --query "$ENDLESS" --template "$T/v.mustache" --max-memory 1K
why=$(broken 6 "memory budget exceeded")
# (the census follows the one line; broken() leaves it out)
if [ -z "$why" ]; then pass "fault: --max-memory crossed: exit 6, previous feed intact, no temporary file"
else fail "fault: --max-memory crossed" "$why"; fi

# ---- signals -------------------------------------------------------------
# sigrow SIG: sends SIG to a render that is writing
sigrow() {
    local sig=$1 num pid want
    num=$(kill -l "$sig")
    want=$((128 + num))
    prev
    launch --db "$DB" --query "$ENDLESS" --template "$T/v.mustache"
    if ! wait_writing $pid; then
        kill -KILL $pid 2>/dev/null; wait_end $pid 1
        fail "fault: SIG$sig mid-render" "the render did not start writing"; return
    fi
    kill -s "$sig" $pid
    if [ "$sig" = PIPE ] || [ "$sig" = XFSZ ]; then
        # Ignored (documented: a closed pipe and a file-size limit are write
        # errors, exit 5) or a clean stop: both keep the promise.
        sleep 1
        if kill -0 $pid 2>/dev/null; then
            kill -TERM $pid; wait_end $pid "$BOUND"
            row "SIG$sig mid-render is ignored (then SIGTERM stops it)" 143 "stopped by signal 15"
        else
            wait_end $pid 1
            row "SIG$sig mid-render stops it" "$want" "stopped by signal $num"
        fi
        return
    fi
    wait_end $pid "$BOUND"
    case $sig in
    SEGV | BUS | ILL | FPE | ABRT | TRAP | SYS) # a crash: the handler removes the file and dies
        row "SIG$sig mid-render (a crash)" "$want" "crashed with signal $num; temporary files? removed, nothing published" ;;
    *) row "SIG$sig mid-render" "$want" "stopped by signal $num .*after row [0-9]+; nothing published" ;;
    esac
}
for sig in INT TERM HUP QUIT ALRM USR2 PIPE VTALRM PROF XCPU XFSZ STKFLT IO PWR SYS SEGV BUS ABRT RTMIN RTMAX; do
    # Under ASan the sanitizer reports SIGSEGV and SIGBUS itself (and exits 1).
    if [ "${SANITIZED:-0}" = 1 ] && { [ $sig = SEGV ] || [ $sig = BUS ]; }; then
        skip "fault: SIG$sig mid-render" "the sanitizer handles it"; continue
    fi
    sigrow $sig
done
# SIGUSR1 prints the census; the render goes on (then SIGTERM stops it).
prev
launch --db "$DB" --query "$ENDLESS" --template "$T/v.mustache"
if wait_writing $pid; then
    kill -USR1 $pid
    sleep 0.5
    if kill -0 $pid 2>/dev/null && grep -q '^sqlfeed: census at' "$T/err"; then
        kill -TERM $pid; wait_end $pid "$BOUND"
        row "SIGUSR1 prints the census, the render goes on; then SIGTERM" 143 "stopped by signal 15"
    else
        wait_end $pid 1
        fail "fault: SIGUSR1 prints the census, the render goes on" "exit $rc: $(head -c 300 "$T/err")"
    fi
else
    kill -KILL $pid 2>/dev/null; wait_end $pid 1
    fail "fault: SIGUSR1 mid-render" "the render did not start writing"
fi
# Before the first row: SQLite still sorting.
prev
SLOW="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30000000) SELECT x AS v FROM c ORDER BY -x"
launch --db "$DB" --query "$SLOW" --template "$T/v.mustache"
sleep 0.5
kill -TERM $pid
wait_end $pid "$BOUND"
row "SIGTERM before the first row" 143 "stopped by signal 15"

# ---- servers -------------------------------------------------------------
if [ "${FAULT_SERVERS:-1}" = 0 ]; then
    skip "fault: servers" "FAULT_SERVERS=0"; exit 0
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "${SQLFEED_PG_URL:-}" ]; then
    if [ -z "$PGBIN" ] || ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
        skip "fault: servers" "PostgreSQL or MariaDB server binaries missing (postgresql, mariadb-server)"
        exit 0
    fi
    if ! out=$("$HERE/servers.sh" start 2>"$T/servers.err"); then
        fail "fault: start the test servers" "$(tail -5 "$T/servers.err")"
        exit 1
    fi
    eval "$out"
    STARTED=$SQLFEED_SERVERS_DIR
fi
PG=$SQLFEED_PG_URL
MY=${SQLFEED_MY_URL:-}
pgsql() { psql "${SQLFEED_PG_ADMIN_URL:-$PG}" -qAtX -c "$1"; }
mysql_admin() {
    local u=${SQLFEED_MY_ADMIN_URL:-$MY} rest userpass host db
    rest=${u#*://}; userpass=${rest%%@*}; rest=${rest#*@}; host=${rest%%/*}; db=${rest#*/}; db=${db%%\?*}
    MYSQL_PWD=${userpass#*:} mariadb -u "${userpass%%:*}" -h "${host%%:*}" -P "${host##*:}" \
        --protocol=tcp -N -B "$db" -e "$1"
}
# (a set-returning function in the select list streams; in FROM it is
# materialised before the first row)
pgq="SELECT generate_series(1, 100000000) AS v"
myq="SELECT seq AS v FROM seq_1_to_100000000"
# hung KIND HOW: a render from KIND whose server stops answering mid-stream;
# HOW is "signal" (SIGTERM to sqlfeed) or "timeout" (--timeout 3)
hung() {
    local k=$1 how=$2 url q pid victim extra=() want re
    if [ "$k" = pg ]; then url=$PG q=$pgq; else url=$MY q=$myq; fi
    # The server is stopped long before its own statement_timeout would fire.
    [ "$how" = timeout ] && extra=(--timeout 3)
    prev
    launch --db "$url" --query "$q" --template "$T/v.mustache" "${extra[@]}"
    if ! wait_writing $pid; then
        kill -KILL $pid 2>/dev/null; wait_end $pid 1
        fail "fault: $k: hung server ($how)" "the render did not start writing: $(head -c 300 "$T/err")"; return
    fi
    if [ "$k" = pg ]; then
        victim=$(pgsql "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT generate_series(1, 100000000)%' AND pid <> pg_backend_pid()" | head -1)
    else
        victim=$(head -n 1 "$SQLFEED_SERVERS_DIR/my.pid" 2>/dev/null)
    fi
    if [ -z "$victim" ]; then
        kill -KILL $pid; wait_end $pid 1
        fail "fault: $k: hung server ($how)" "cannot find the server process to stop"; return
    fi
    kill -STOP "$victim"; STOPPED=$victim
    if [ "$how" = signal ]; then
        sleep 0.5; kill -TERM $pid
        want=143 re="stopped by signal 15"
    else
        want=4 re="(timeout|timed out|time limit)"
    fi
    wait_end $pid "$BOUND"
    kill -CONT "$victim"; STOPPED=""
    row "$k: hung server (kill -STOP), $([ "$how" = signal ] && echo "SIGTERM ends the run within $BOUND s" || echo "--timeout 3 ends the run within $BOUND s")" "$want" "$re"
}
killed() {
    local k=$1 url q pid
    if [ "$k" = pg ]; then url=$PG q=$pgq; else url=$MY q=$myq; fi
    prev
    launch --db "$url" --query "$q" --template "$T/v.mustache"
    if ! wait_writing $pid; then
        kill -KILL $pid 2>/dev/null; wait_end $pid 1
        fail "fault: $k: backend killed" "the render did not start writing: $(head -c 300 "$T/err")"; return
    fi
    if [ "$k" = pg ]; then
        kill -KILL "$(pgsql "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT generate_series(1, 100000000)%' AND pid <> pg_backend_pid()" | head -1)"
    else
        for id in $(mysql_admin "SELECT id FROM information_schema.processlist WHERE info LIKE 'SELECT seq AS v%'"); do
            mysql_admin "KILL $id" >/dev/null
        done
    fi
    wait_end $pid "$BOUND"
    row "$k: backend killed mid-stream" 4 "query failed at row [0-9]+"
    if [ "$k" = pg ]; then # the postmaster restarts every backend after a SIGKILL
        for _ in $(seq 100); do pgsql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
    fi
}
kinds=pg
[ -n "$MY" ] && kinds="pg my"
for k in $kinds; do
    hung $k signal
    hung $k timeout
    killed $k
done
