#!/bin/bash
# publish_test.sh BUILD: the previous feed is never touched, whatever -o
# names and however the run ends: descriptor names (/dev/stdout, /dev/fd/N,
# /proc/self/fd/N), /dev and /proc never written into, symlinks, FIFOs,
# read-only file systems, names up to NAME_MAX, every output-like option
# checked against every input and output, every terminating signal, a
# file-size limit, an allocation failure at every point of the library, and
# the memory budget (peak RSS of this process, a huge row).
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
# Tests that touch /dev run inside a private mount namespace with a tmpfs on
# /dev (unshare), so even a broken sqlfeed cannot replace a real /dev entry;
# without unshare they are skipped.
set -u
B=${1:?usage: publish_test.sh BUILD}
SF=$(cd "$(dirname "$B/sqlfeed")" && pwd)/sqlfeed
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-publish.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
unset SOURCE_DATE_EPOCH
ulimit -c 0 # SIGQUIT and the crash signals dump core by default

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
expect() {
    if [ "$rc" = "$2" ] && grep -qE -- "$3" "$T/err"; then pass "$1"
    else fail "$1" "exit $rc (want $2); stderr: $(head -c 400 "$T/err")"; fi
}
ok() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi; }
no_temp() { ! find "$1" -maxdepth 1 -name '.*.sqlfeed-*' | grep -q .; }
previous() { echo "previous feed" > "$1"; }
is_previous() { [ "$(cat "$1" 2>/dev/null)" = "previous feed" ]; }

DB=$T/jobs.db
"$SF" demo-db --rows 2000 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
"$SF" render --db "$DB" --template simplyhired -o "$T/ref.xml" -q || { fail "reference" "render"; exit 1; }
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"
ENDLESS="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000000) SELECT x AS v FROM c"
R=(render --db "$DB" --template simplyhired -q)

# ---- -o naming a descriptor ---------------------------------------------------
# sandbox SCRIPT: runs bash SCRIPT in a private mount namespace whose /dev is a
# fresh tmpfs with the usual links and /dev/null; $SF, $T, $DB are exported.
HAVE_NS=0
unshare --mount --propagation private true 2>/dev/null && HAVE_NS=1
sandbox() {
    SF=$SF T=$T DB=$DB unshare --mount --propagation private bash -c '
        mount -t tmpfs -o mode=755 sqlfeed-test-dev /dev || exit 99
        ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout
        ln -s /proc/self/fd/2 /dev/stderr; ln -s /proc/self/fd /dev/fd
        mknod -m 666 /dev/null c 1 3
        '"$1"
}
if [ $HAVE_NS = 1 ]; then
    sandbox '"$SF" render --db "$DB" --template simplyhired -q -o /dev/stdout > "$T/stdout.xml"
             echo "rc=$?"; [ -L /dev/stdout ] && echo link=$(readlink /dev/stdout)
             ls -A /dev | grep sqlfeed-' > "$T/sb" 2>&1
    ok "-o /dev/stdout > FILE: exit 0" grep -qx "rc=0" "$T/sb"
    ok "-o /dev/stdout > FILE: /dev/stdout is still the link to /proc/self/fd/1" grep -qx "link=/proc/self/fd/1" "$T/sb"
    ok "-o /dev/stdout > FILE: no file created in /dev" sh -c "! grep -q sqlfeed- '$T/sb'"
    ok "-o /dev/stdout > FILE: FILE holds the feed" cmp -s "$T/stdout.xml" "$T/ref.xml"
    sandbox '"$SF" render --db "$DB" --template simplyhired -q -o /dev/stderr 2> "$T/stderr.xml"
             echo "rc=$?"; [ -L /dev/stderr ] && echo link
             "$SF" render --db "$DB" --template simplyhired -q -o /dev/newfeed.xml 2>"$T/newerr"
             echo "new=$?"; ls -A /dev' > "$T/sb" 2>&1
    ok "-o /dev/stderr 2> FILE: exit 0, the link stays, FILE holds the feed" \
        sh -c "grep -qx rc=0 '$T/sb' && grep -qx link '$T/sb' && cmp -s '$T/stderr.xml' '$T/ref.xml'"
    ok "-o /dev/NEWFILE: refused (exit 5), nothing created in /dev" \
        bash -c "grep -qx new=5 '$T/sb' && ! grep -qE 'newfeed|sqlfeed-' <(grep -v '^new=' '$T/sb') && grep -q 'will not create' '$T/newerr'"
    mkdir -p "$T/ro"
    sandbox 'mount -t tmpfs -o ro sqlfeed-test-ro "$T/ro" || exit 99
             "$SF" render --db "$DB" --template simplyhired -q -o "$T/ro/f.xml"; echo "rc=$?"' > "$T/sb" 2>&1
    ok "-o on a read-only file system: exit 5, says so" \
        sh -c "grep -qx rc=5 '$T/sb' && grep -q 'Read-only file system' '$T/sb'"
    # No new file anywhere under /dev (whatever is mounted there), for every
    # output option of every command.
    sandbox 'mkdir /dev/shm /dev/mqueue; mount -t tmpfs sqlfeed-test-shm /dev/shm || exit 99
             mount -t mqueue sqlfeed-test-mq /dev/mqueue 2>/dev/null && echo mq=1
             R="render --db $DB --query SELECT\ 1\ AS\ v --template simplyhired -q"
             "$SF" render --db "$DB" --template simplyhired -q -o /dev/shm/feed.xml 2>>"$T/kerr"; echo "shm=$?"
             "$SF" render --db "$DB" --template simplyhired -q -o /dev/mqueue/feed.xml 2>>"$T/kerr"; echo "mq=$?"
             "$SF" render --db "$DB" --template simplyhired -q -o "$T/k.xml" --mem-log /dev/newlog.json 2>>"$T/kerr"; echo "log=$?"
             "$SF" render --db "$DB" --template simplyhired -q -o "$T/k.xml" --census-fifo /dev/shm/c.fifo 2>>"$T/kerr"; echo "fifo=$?"
             ln -s /dev/shm/viaLink.json "$T/dangling-to-dev"
             "$SF" render --db "$DB" --template simplyhired -q -o "$T/k.xml" --mem-log "$T/dangling-to-dev" 2>>"$T/kerr"; echo "dlog=$?"
             for i in 0 1 2; do echo "{\"t\":$i,\"rows\":$i,\"bytes\":0,\"rss\":1,\"heap\":1,\"tracked\":1}"; done > "$T/m.json"
             "$SF" mem-plot "$T/m.json" -o /dev/shm/m.svg 2>>"$T/kerr"; echo "plot=$?"
             "$SF" demo-db --rows 10 -o /dev/new.db 2>>"$T/kerr"; echo "demo=$?"
             "$SF" demo-db --rows 10 -o /dev/stdout > "$T/demo-stdout.db" 2>>"$T/kerr"; echo "demostdout=$?"
             "$SF" demo-db --rows 10 -o /dev/null 2>"$T/demonull"; echo "demonull=$?"; [ -c /dev/null ] && echo nullchr
             [ -L /dev/stdout ] && echo link=$(readlink /dev/stdout)
             ls -A /dev /dev/shm /dev/mqueue | grep -E "feed|log|fifo|svg|new|sqlfeed-|viaLink"' > "$T/sb" 2>&1
    ok "-o /dev/shm/FILE: refused (exit 5)" grep -qx "shm=5" "$T/sb"
    if grep -qx mq=1 "$T/sb"; then ok "-o /dev/mqueue/FILE: refused (exit 5)" grep -qx "mq=5" "$T/sb"
    else skip "-o /dev/mqueue/FILE" "cannot mount mqueue here"; fi
    ok "--mem-log /dev/NEWFILE: refused (exit 5)" grep -qx "log=5" "$T/sb"
    ok "--census-fifo /dev/shm/NEW: refused (exit 5)" grep -qx "fifo=5" "$T/sb"
    ok "--mem-log through a dangling symlink into /dev/shm: refused (exit 5)" grep -qx "dlog=5" "$T/sb"
    ok "mem-plot -o /dev/shm/NEW: refused (exit 5)" grep -qx "plot=5" "$T/sb"
    ok "demo-db -o /dev/NEWFILE: refused (exit 5)" grep -qx "demo=5" "$T/sb"
    ok "demo-db -o /dev/stdout > FILE: refused (exit 2), /dev/stdout still the link" \
        sh -c "grep -qx demostdout=2 '$T/sb' && grep -qx link=/proc/self/fd/1 '$T/sb' && [ ! -s '$T/demo-stdout.db' ]"
    ok "demo-db -o /dev/null: refused (exit 2), /dev/null still the device" \
        sh -c "grep -qx demonull=2 '$T/sb' && grep -qx nullchr '$T/sb' && grep -q 'a database is a file' '$T/demonull'"
    ok "... nothing created in /dev, /dev/shm or /dev/mqueue" sh -c "! grep -qvE '^(mq|shm|log|fifo|dlog|plot|demo|demostdout|demonull)=|^link=|^nullchr$' '$T/sb'"
    ok "... each refusal says why" sh -c "[ \$(grep -c 'will not create' '$T/kerr') -ge 7 ]"
else
    skip "-o /dev/stdout and /dev/NEWFILE" "no unshare --mount: not run against the real /dev"
fi
# These cannot replace anything even when broken: /dev/fd and /proc/self/fd
# are directories of procfs, where no file can be created.
for p in /dev/fd/1 /proc/self/fd/1; do
    run "$SF" "${R[@]}" -o $p
    ok "-o $p > FILE: exit 0, the feed on the descriptor" sh -c "[ $rc = 0 ] && cmp -s '$T/out' '$T/ref.xml'"
done
sh -c 'exec "$0" "$@" -o /proc/$$/fd/1' "$SF" "${R[@]}" > "$T/pid.xml" 2>"$T/err"; rc=$?
ok "-o /proc/OWN-PID/fd/1 > FILE: exit 0, the feed on the descriptor" sh -c "[ $rc = 0 ] && cmp -s '$T/pid.xml' '$T/ref.xml'"
"$SF" "${R[@]}" -o /dev/fd/5 5>"$T/fd5.xml" 2>"$T/err"; rc=$?
ok "-o /dev/fd/5 5> FILE: exit 0, FILE holds the feed" sh -c "[ $rc = 0 ] && cmp -s '$T/fd5.xml' '$T/ref.xml'"
"$SF" "${R[@]}" -o /dev/fd/1 | cat > "$T/pipe.xml"
ok "-o /dev/fd/1 | cat: the feed through the pipe" cmp -s "$T/pipe.xml" "$T/ref.xml"
run "$SF" "${R[@]}" -o /dev/fd/9
expect "-o /dev/fd/9 with descriptor 9 closed: exit 5, says so" 5 "descriptor 9.*not open"
run "$SF" "${R[@]}" -o /dev/fd/7 7<"$T/ref.xml"
expect "-o /dev/fd/7 open read-only: exit 5, says so" 5 "descriptor 7.*not open for writing"

# ---- a descriptor on a file that already holds something -------------------------
# Opened without O_TRUNC (1<>FILE): the feed must not be followed by the old
# file's tail. With O_APPEND (>>FILE) what was there stays, the feed after it.
old_big() { head -c 8000000 /dev/zero | tr '\0' x > "$1"; }
old_big "$T/sd.xml"; "$SF" "${R[@]}" -o /dev/stdout 1<>"$T/sd.xml" 2>"$T/err"; rc=$?
ok "-o /dev/stdout 1<> an 8 MB file: exactly the feed, no old tail" sh -c "[ $rc = 0 ] && cmp -s '$T/sd.xml' '$T/ref.xml'"
old_big "$T/sd.xml"; "$SF" "${R[@]}" -o - 1<>"$T/sd.xml" 2>"$T/err"; rc=$?
ok "-o - 1<> an 8 MB file: exactly the feed, no old tail" sh -c "[ $rc = 0 ] && cmp -s '$T/sd.xml' '$T/ref.xml'"
old_big "$T/sd.xml"; "$SF" "${R[@]}" -o /dev/fd/5 5<>"$T/sd.xml" 2>"$T/err"; rc=$?
ok "-o /dev/fd/5 5<> an 8 MB file: exactly the feed, no old tail" sh -c "[ $rc = 0 ] && cmp -s '$T/sd.xml' '$T/ref.xml'"
echo head > "$T/ap.xml"; "$SF" "${R[@]}" -o /dev/stdout >>"$T/ap.xml" 2>"$T/err"; rc=$?
ok "-o /dev/stdout >> FILE (O_APPEND): what was there, then the feed" \
    sh -c "[ $rc = 0 ] && { echo head; cat '$T/ref.xml'; } | cmp -s - '$T/ap.xml'"
head -c 8000000 /dev/zero | tr '\0' x > "$T/sd.xml"; mkfifo "$T/over.fifo"
(cat "$T/over.fifo" 1<>"$T/sd.xml") & cpid=$!
run timeout 20 "$SF" "${R[@]}" -o "$T/over.fifo"; wait $cpid
ok "-o a FIFO whose reader writes 1<> an 8 MB file: the feed, then the old tail (the reader's file: not ours to cut)" \
    sh -c "[ $rc = 0 ] && cmp -s -n \$(stat -c %s '$T/ref.xml') '$T/sd.xml' '$T/ref.xml' && [ \$(stat -c %s '$T/sd.xml') = 8000000 ]"
rm -f "$T/over.fifo"

# ---- symlinks ---------------------------------------------------------------
previous "$T/target.xml"; ln -s target.xml "$T/link.xml"
run "$SF" "${R[@]}" -o "$T/link.xml"
ok "-o a symlink to a regular file: the link is replaced by the feed, its target untouched" \
    sh -c "[ $rc = 0 ] && [ ! -L '$T/link.xml' ] && cmp -s '$T/link.xml' '$T/ref.xml' && [ \"\$(cat '$T/target.xml')\" = 'previous feed' ]"
ln -s /dev/null "$T/null.xml"
run "$SF" "${R[@]}" -o "$T/null.xml"
ok "-o a symlink to /dev/null: written to the device, the link stays" sh -c "[ $rc = 0 ] && [ -L '$T/null.xml' ] && [ -c /dev/null ]"
mkfifo "$T/f.fifo"; ln -s f.fifo "$T/fifolink.xml"
timeout 20 cat "$T/f.fifo" > "$T/fromfifo.xml" & cpid=$!
run timeout 20 "$SF" "${R[@]}" -o "$T/fifolink.xml"
wait $cpid
ok "-o a symlink to a FIFO: written into the FIFO, both stay" \
    sh -c "[ $rc = 0 ] && [ -L '$T/fifolink.xml' ] && [ -p '$T/f.fifo' ] && cmp -s '$T/fromfifo.xml' '$T/ref.xml'"
ln -s nowhere.xml "$T/dangling.xml"
run "$SF" "${R[@]}" -o "$T/dangling.xml"
ok "-o a dangling symlink: replaced by the feed" sh -c "[ $rc = 0 ] && [ ! -L '$T/dangling.xml' ] && cmp -s '$T/dangling.xml' '$T/ref.xml'"

# ---- FIFOs with nobody at the other end ------------------------------------
mkfifo "$T/noreader.fifo"
start=$(date +%s)
run timeout 60 "$SF" "${R[@]}" -o "$T/noreader.fifo"
took=$(( $(date +%s) - start ))
expect "-o a FIFO nobody reads: gives up (exit 5), says why" 5 "no process opened .*noreader.fifo for reading within 10 s"
ok "-o a FIFO nobody reads: within 10 s (+2), not forever (took $took s)" test $took -le 12
for opt in "-o" "--mem-log"; do
    args=(-o "$T/x.xml"); [ "$opt" = "-o" ] && args=()
    rm -f "$T/x.xml"
    "$SF" "${R[@]}" "${args[@]}" $opt "$T/noreader.fifo" 2>"$T/err" & pid=$!
    sleep 0.5
    # With --mem-log, -o's temporary file exists while the log waits: the
    # signal must remove it. With -o the FIFO, there is none to remove.
    had=$(find "$T" -maxdepth 1 -name '.x.xml.sqlfeed-*' | wc -l)
    kill -TERM $pid
    for _ in $(seq 40); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
    if kill -0 $pid 2>/dev/null; then fail "SIGTERM while $opt waits for a FIFO reader" "still running"; kill -KILL $pid
    else wait $pid; rc=$?; expect "SIGTERM while $opt waits for a FIFO reader: exit 143 at once" 143 "stopped by signal 15"; fi
    if [ "$opt" = "--mem-log" ]; then
        ok "SIGTERM while --mem-log waits: -o's temporary file existed, and is removed, -o not created" \
            sh -c "[ $had = 1 ] && ! find '$T' -maxdepth 1 -name '.x.xml.sqlfeed-*' | grep -q . && [ ! -e '$T/x.xml' ]"
    else
        ok "SIGTERM while -o waits for a FIFO reader: the FIFO stays a FIFO, no file beside it" \
            sh -c "[ $had = 0 ] && [ -p '$T/noreader.fifo' ] && ! ls -A '$T' | grep -q 'noreader.fifo.'"
    fi
done

# ---- every output checked against every input and output ---------------------
cp "$DB" "$T/db2.db"; printf 'SELECT 1 AS v\n' > "$T/q.sql"
printf '<r>{{#rows}}{{>item}}{{/rows}}</r>\n' > "$T/part.mustache"; printf '<v>{{v}}</v>' > "$T/item.mustache"
previous "$T/feed.xml"
Q=(render --db "$T/db2.db" --query-file "$T/q.sql" --template "$T/v.mustache")
run "$SF" "${Q[@]}" -o "$T/feed.xml" --mem-log "$T/feed.xml"
expect "--mem-log naming the feed: exit 2, names both" 2 "--mem-log $T/feed.xml is the same file as -o $T/feed.xml"
ok "--mem-log naming the feed: the previous feed untouched" is_previous "$T/feed.xml"
run "$SF" "${Q[@]}" -o "$T/new.xml" --mem-log "$T/./new.xml"
expect "--mem-log and -o naming one file that does not exist yet: exit 2" 2 "--mem-log $T/./new.xml is the same file as -o $T/new.xml"
ok "... and nothing is created" test ! -e "$T/new.xml"
ln -s feed.xml "$T/feedlink"
run "$SF" "${Q[@]}" -o "$T/feed.xml" --mem-log "$T/feedlink"
expect "--mem-log through a symlink to the feed: exit 2" 2 "--mem-log $T/feedlink is the same file as -o"
for pair in "--db:$T/db2.db" "--template:$T/v.mustache" "--query-file:$T/q.sql"; do
    run "$SF" "${Q[@]}" -o "$T/ok.xml" --mem-log "${pair#*:}"
    expect "--mem-log naming ${pair%%:*}: exit 2" 2 "--mem-log ${pair#*:} is the same file as ${pair%%:*}"
done
ok "... the inputs untouched" sh -c "cmp -s '$DB' '$T/db2.db' && [ \"\$(cat '$T/q.sql')\" = 'SELECT 1 AS v' ]"
run "$SF" "${Q[@]}" -o "$T/q.sql"
expect "-o naming --query-file: exit 2" 2 "-o $T/q.sql is the same file as --query-file"
run "$SF" render --db "$T/db2.db" --query 'SELECT 1 AS v' --template "$T/part.mustache" -o "$T/item.mustache"
expect "-o naming a partial of the template: exit 2" 2 "-o $T/item.mustache is .* partial"
# The database as SQLite opens it: a file: URI, a name with '=' in it.
cp "$DB" "$T/uri.db"; cp "$DB" "$T/a=b.db"
run "$SF" render --db "file:$T/uri.db" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/uri.db"
expect "--db file:DB -o DB: exit 2, names the database" 2 "-o $T/uri.db is the same file as --db $T/uri.db"
run "$SF" render --db "file:$T/uri.db?mode=ro" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/ok.xml" --mem-log "$T/uri.db"
expect "--db file:DB?mode=ro --mem-log DB: exit 2" 2 "--mem-log $T/uri.db is the same file as --db"
run "$SF" render --db "$T/a=b.db" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/a=b.db"
expect "--db a=b.db -o a=b.db: exit 2" 2 "is the same file as --db"
ok "... the databases untouched" sh -c "cmp -s '$DB' '$T/uri.db' && cmp -s '$DB' '$T/a=b.db'"
# Every partial the template read, wherever it lives (a hard link elsewhere).
mkdir -p "$T/ptpl" "$T/pother"
printf '<r>{{#rows}}{{>item}}{{/rows}}</r>\n' > "$T/ptpl/main.mustache"; printf '<v>{{v}}</v>' > "$T/ptpl/item.mustache"
ln -f "$T/ptpl/item.mustache" "$T/pother/log.json"
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/ptpl/main.mustache" -o "$T/ok.xml" --mem-log "$T/pother/log.json"
expect "--mem-log a hard link to a partial the template read: exit 2" 2 "--mem-log $T/pother/log.json is the same file as a partial of --template $T/ptpl/item.mustache"
ok "... the partial untouched" sh -c "[ \"\$(cat '$T/ptpl/item.mustache')\" = '<v>{{v}}</v>' ]"
ln -sf ../ptpl/item.mustache "$T/pother/feed.xml"
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/ptpl/main.mustache" -o "$T/ok.xml" --census-fifo "$T/pother/feed.xml"
expect "--census-fifo a symlink to a partial: exit 2" 2 "--census-fifo $T/pother/feed.xml is the same file as a partial"
printf 'SELECT 2 AS v\n' > "$T/v.sql"
run "$SF" render --db "$T/db2.db" --template "$T/v.mustache" -o "$T/v.sql"
expect "-o naming the template's own query (NAME.sql): exit 2" 2 "-o $T/v.sql is the same file as the query of --template"
rm -f "$T/v.sql"
printf 'SELECT 1 AS v\n' > "$T/q.sql"
run "$SF" "${Q[@]}" -o "$T/ok.xml" --census-fifo "$T/ok.xml"
expect "--census-fifo naming the feed: exit 2" 2 "--census-fifo $T/ok.xml is the same file as -o"
run "$SF" "${Q[@]}" -o "$T/ok.xml" --census-fifo "$T/log" --mem-log "$T/log"
expect "--census-fifo and --mem-log naming one file: exit 2" 2 "is the same file as"
run "$SF" "${Q[@]}" -o - --mem-log /dev/stdout
expect "-o - with --mem-log /dev/stdout (one descriptor): exit 2" 2 "--mem-log /dev/stdout is the same file as -o -"
run "$SF" "${Q[@]}" -o /dev/null --mem-log /dev/null
ok "-o /dev/null --mem-log /dev/null: allowed (a device, not a file)" test $rc = 0
ok "no identity check leaves a temporary file" no_temp "$T"

# ---- every signal that would end the process -----------------------------------
# No job control: background jobs start with SIGINT and SIGQUIT ignored by
# the shell, and sqlfeed still handles those two.
SIGS="HUP INT QUIT ALRM TERM USR2 VTALRM PROF IO XCPU PWR STKFLT SYS TRAP RTMIN RTMIN+5 RTMAX-1 RTMAX SEGV BUS ABRT FPE ILL"
for sig in $SIGS; do
    previous "$T/keep.xml"
    "$SF" render --db "$DB" --query "$ENDLESS" --template "$T/v.mustache" -o "$T/keep.xml" 2>"$T/err" &
    pid=$!
    for _ in $(seq 200); do
        [ -n "$(find "$T" -maxdepth 1 -name '.keep.xml.sqlfeed-*' -size +1k)" ] && break
        sleep 0.02
    done
    kill -s $sig $pid; wait $pid 2>/dev/null; rc=$? # (bash's "Killed ..." notice: not ours)
    n=$(kill -l $sig 2>/dev/null || echo 0)
    [ "$n" = 0 ] && n=$(kill -l "SIG$sig")
    want=$((128 + n))
    if [ "${SANITIZED:-0}" = 1 ] && [[ " SEGV BUS FPE ILL ABRT " == *" $sig "* ]]; then
        ok "SIG$sig mid-render (ASan's handler reports it): stopped, temporary file removed, previous feed kept" \
            sh -c "[ $rc != 0 ] && is_previous() { [ \"\$(cat '$T/keep.xml')\" = 'previous feed' ]; }; is_previous && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"
        continue
    fi
    ok "SIG$sig mid-render: exit $want, temporary file removed, previous feed kept" \
        sh -c "[ $rc = $want ] && [ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"
    [ $rc = $want ] || echo "  ($sig: exit $rc; $(head -c 200 "$T/err"))"
    find "$T" -maxdepth 1 -name '.keep.xml.sqlfeed-*' -delete # what a broken run left
done
# A signal during publication (tests/inject.c slows an fsync down and marks
# when it starts): during the temporary file's fsync, before the rename,
# nothing is published (exit 143); during the directory's, after the rename,
# the feed is published and the run finishes (exit 0), saying so.
INJ=$B/tests/inject.so
if [ -f "$INJ" ]; then
    for on in file dir; do
        previous "$T/keep.xml"; rm -f "$T/mark"
        SQLFEED_INJECT_FSYNC_DELAY_MS=1500 SQLFEED_INJECT_FSYNC_DELAY_ON=$on SQLFEED_INJECT_FSYNC_MARK="$T/mark" \
            LD_PRELOAD=$INJ "$SF" "${R[@]}" -o "$T/keep.xml" 2>"$T/err" & pid=$!
        for _ in $(seq 500); do [ -e "$T/mark" ] && break; sleep 0.02; done
        [ -e "$T/mark" ] || fail "SIGTERM during the $on fsync" "the delay never began"
        kill -TERM $pid; wait $pid; rc=$?
        if [ $on = file ]; then
            expect "SIGTERM during the temporary file's fsync (before the rename): exit 143, nothing published" 143 "stopped by signal 15.*left as it was"
            ok "... previous feed kept, temporary file removed" sh -c "[ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"
        else
            expect "SIGTERM during the directory's fsync (after the rename): exit 0, the signal noted" 0 "signal 15 \(Terminated\) arrived after $T/keep.xml was published; finished normally"
            ok "... the feed published, no temporary file" sh -c "cmp -s '$T/keep.xml' '$T/ref.xml' && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"
        fi
    done
else
    fail "a signal during publication" "$INJ not built"
fi

# A signal ignored when sqlfeed starts (nohup) stays ignored.
(trap '' HUP; exec "$SF" "${R[@]}" -o "$T/nohup.xml") & pid=$!
sleep 0.05; kill -HUP $pid 2>/dev/null; wait $pid; rc=$?
ok "SIGHUP ignored by the parent (nohup) stays ignored" sh -c "[ $rc = 0 ] && cmp -s '$T/nohup.xml' '$T/ref.xml'"

# ---- a file-size limit --------------------------------------------------------
previous "$T/keep.xml"
run bash -c 'ulimit -f 200; exec "$@"' _ "$SF" "${R[@]}" -o "$T/keep.xml"
expect "ulimit -f: an output error (exit 5), EFBIG named" 5 "File too large"
ok "ulimit -f: previous feed kept, temporary file removed" sh -c "[ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"

# ---- names up to NAME_MAX ---------------------------------------------------------
for n in 232 233 237 238 250 255; do
    name=$(printf 'f%.0s' $(seq $n))
    run "$SF" "${R[@]}" -o "$T/$name"
    ok "a target name of $n bytes is published" sh -c "[ $rc = 0 ] && cmp -s '$T/$name' '$T/ref.xml'"
    rm -f "$T/$name"
done
name="$(printf '\xc3\xa9%.0s' $(seq 127))a" # 255 bytes, 128 characters
run "$SF" "${R[@]}" -o "$T/$name"
ok "a 255-byte UTF-8 name is published" sh -c "[ $rc = 0 ] && cmp -s '$T/$name' '$T/ref.xml'"
rm -f "$T/$name"
ok "long names: no temporary file left" no_temp "$T"
name=$(printf 'f%.0s' $(seq 256))
run timeout 20 "$SF" render --db "$DB" --query "$ENDLESS" --template "$T/v.mustache" -o "$T/$name"
expect "a name of 256 bytes: exit 5 when the output is opened (an endless query never starts), the refusal named" 5 "is 256 bytes, more than the 255 .*File name too long"

# ---- demo-db publishes like a feed --------------------------------------------------
cp "$DB" "$T/demo.db"
# (demo-db -o /dev/null is tried in the sandbox above: a broken demo-db
# renames its file over the device.)
mkfifo "$T/demo.fifo"
run timeout 5 "$SF" demo-db --rows 10 -o "$T/demo.fifo"
expect "demo-db -o FIFO: refused at once (exit 2), no wait for a reader" 2 "is a FIFO"
for n in 240 255; do
    name=$(printf 'd%.0s' $(seq $n))
    run "$SF" demo-db --rows 10 -o "$T/$name"
    ok "demo-db -o a $n-byte name: written" sh -c "[ $rc = 0 ] && [ \"\$(sqlite3 '$T/$name' 'SELECT count(*) FROM jobs')\" = 10 ]"
    rm -f "$T/$name"
done
for sig in TERM QUIT USR2 ALRM; do
    "$SF" demo-db --rows 5000000 -o "$T/demo.db" 2>"$T/err" & pid=$!
    for _ in $(seq 300); do
        [ -n "$(find "$T" -maxdepth 1 -name '.demo.db.sqlfeed-*' -size +100k)" ] && break
        sleep 0.02
    done
    kill -s $sig $pid; wait $pid 2>/dev/null; rc=$?
    want=$((128 + $(kill -l $sig)))
    ok "demo-db SIG$sig mid-build: exit $want, temporary file removed, previous database kept" \
        sh -c "[ $rc = $want ] && cmp -s '$DB' '$T/demo.db' && ! ls -A '$T' | grep -q '^\.demo.db.sqlfeed-'"
    find "$T" -maxdepth 1 -name '.demo.db.sqlfeed-*' -delete
done
(trap '' QUIT; exec "$SF" demo-db --rows 5000000 -o "$T/demo.db" 2>"$T/err") & pid=$!
for _ in $(seq 300); do [ -n "$(find "$T" -maxdepth 1 -name '.demo.db.sqlfeed-*' -size +100k)" ] && break; sleep 0.02; done
kill -QUIT $pid; wait $pid 2>/dev/null; rc=$?
ok "demo-db with SIGQUIT ignored by the parent: still stopped by it (exit 131), nothing left" \
    sh -c "[ $rc = 131 ] && cmp -s '$DB' '$T/demo.db' && ! ls -A '$T' | grep -q '^\.demo.db.sqlfeed-'"
find "$T" -maxdepth 1 -name '.demo.db.sqlfeed-*' -delete
run bash -c 'ulimit -f 500; exec "$@"' _ "$SF" demo-db --rows 100000 -o "$T/demo.db"
expect "demo-db under ulimit -f: an output error (exit 5)" 5 "nothing published"
ok "... previous database kept, no temporary file" sh -c "cmp -s '$DB' '$T/demo.db' && ! ls -A '$T' | grep -q '^\.demo.db.sqlfeed-'"
if [ -f "$INJ" ]; then
    run env LD_PRELOAD="$INJ" SQLFEED_INJECT_RENAME_FAIL=1 "$SF" demo-db --rows 100 -o "$T/demo.db"
    expect "demo-db with the rename failing: exit 5" 5 "rename"
    ok "... previous database kept, no temporary file" sh -c "cmp -s '$DB' '$T/demo.db' && ! ls -A '$T' | grep -q '^\.demo.db.sqlfeed-'"
fi

# ---- an allocation failure at every point of the library ----------------------------
if [ -x "$B/tests/publish_alloc_test" ]; then
    mkdir -p "$T/alloc"
    run "$B/tests/publish_alloc_test" "$DB" "$T/alloc"
    cat "$T/out"
    [ $rc = 0 ] || fail "allocation failure at every point" "exit $rc: $(tail -c 400 "$T/err")"
else
    fail "allocation failure at every point" "$B/tests/publish_alloc_test not built"
fi

# ---- template names: one rule ----------------------------------------------------
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/nosuch.mustache" -o "$T/x.xml"
expect "a --template file that does not exist: exit 2, like an unknown built-in" 2 "no built-in template or readable file named '$T/nosuch.mustache'.*No such file"
mkdir -p "$T/tdir"
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/tdir" -o "$T/x.xml"
expect "a --template that is a directory: exit 2" 2 "no built-in template or readable file named '$T/tdir'.*directory"

# ---- the summary says nothing it does not know ------------------------------------
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/small.xml"
ok "a small run's summary has no 'memory unknown'" sh -c "[ $rc = 0 ] && ! grep -q unknown '$T/err' && grep -qE 'peak RSS [0-9.]+ MiB -> $T/small.xml\$' '$T/err'"

# ---- the memory budget -------------------------------------------------------------
# Peak RSS is this process's own: a big parent that execs sqlfeed does not count.
run $PY -c 'import os, sys
big = bytearray(os.urandom(1 << 20)) * 300   # 300 MiB, resident
os.execv(sys.argv[1], sys.argv[1:])' "$SF" render --db "$DB" --template simplyhired -o "$T/big.xml" --max-memory 64M
ok "--max-memory 64M exec'd from a 300 MiB process: renders (exit 0)" sh -c "[ $rc = 0 ] && cmp -s '$T/big.xml' '$T/ref.xml'"
ok "... and reports its own peak RSS, not the parent's" sh -c "grep -qE 'peak RSS ([0-9]|[1-5][0-9])\.[0-9] MiB' '$T/err'"
# One row holding 100 MB of text: the budget stops it while the row is read.
sqlite3 "$T/huge.db" "CREATE TABLE t(v); INSERT INTO t SELECT replace(hex(zeroblob(50000000)), '0', 'x');" 2>/dev/null
previous "$T/keep.xml"
/usr/bin/time -f %M -o "$T/rss" "$SF" render --db "$T/huge.db" --query 'SELECT v FROM t' --template "$T/v.mustache" \
    -o "$T/keep.xml" --max-memory 64M 2>"$T/err"; rc=$?
expect "a 100 MB row with --max-memory 64M: exit 6, the budget named" 6 "memory budget exceeded: .*--max-memory 64.0 MiB"
ok "... not reported as 'out of memory'" sh -c "! grep -qi 'out of memory' '$T/err'"
ok "... previous feed kept, no temporary file" sh -c "[ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -A '$T' | grep -q '^\.keep.xml.sqlfeed-'"
if [ "${SANITIZED:-0}" = 1 ]; then
    skip "a 100 MB row: peak RSS within the budget" "not measured under sanitizers"
else
    kib=$(tail -1 "$T/rss")
    if [ "$kib" -le $((72 * 1024)) ]; then pass "a 100 MB row: peak RSS $kib KiB stays within 64 MiB + 8 MiB"
    else fail "a 100 MB row: peak RSS within the budget" "$kib KiB > 72 MiB"; fi
fi
