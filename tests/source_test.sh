#!/bin/bash
# source_test.sh BUILD: the source layer through the command, without servers:
# why a SQLite --db cannot be opened (in the system's words), parameters named
# _x, --count of queries ending in ';', blanks and comments, and a conninfo
# password with an escaped quote kept out of messages and /proc/PID/cmdline, and a
# signal ending a connect to a host that never answers. Prints PASS/FAIL/SKIP lines.
set -u
B=${1:?usage: source_test.sh BUILD}
SF=$B/sqlfeed
T=$(mktemp -d /tmp/sqlfeed-source.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }
ok() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi; }
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
expect() {
    if [ "$rc" = "$2" ] && grep -qE -- "$3" "$T/err"; then pass "$1"
    else fail "$1" "exit $rc (want $2); stderr: $(head -c 400 "$T/err")"; fi
}

printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"
sqlite3 "$T/a.db" "CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (1), (2), (3);"

# ---- why a database cannot be opened ---------------------------------------------
run "$SF" render --db "$T/missing.db" --query "SELECT 1 AS v" --template "$T/v.mustache" -o "$T/o.xml"
expect "sqlite: a --db file that does not exist: exit 4, 'No such file or directory'" 4 \
    "cannot open database .*missing.db: No such file or directory"
run "$SF" render --db "$T" --query "SELECT 1 AS v" --template "$T/v.mustache" -o "$T/o.xml"
expect "sqlite: a --db that is a directory: exit 4, 'Is a directory'" 4 "cannot open database .*: Is a directory"
cp "$T/a.db" "$T/locked.db"; chmod 000 "$T/locked.db"
as=()
if [ "$(id -u)" = 0 ]; then # root reads anything: try as nobody (needs the build readable by it)
    chmod 755 "$T"; chmod 644 "$T/v.mustache"
    as=(runuser -u nobody --)
    "${as[@]}" test -x "$SF" 2>/dev/null || as=(none)
fi
if [ "${as[0]:-}" = none ]; then
    skip "sqlite: a --db file without read permission" "root, and user nobody cannot run $SF"
else
    run "${as[@]}" "$SF" render --db "$T/locked.db" --query "SELECT 1 AS v" --template "$T/v.mustache" -o "$T/o.xml"
    expect "sqlite: a --db file without read permission: exit 4, 'Permission denied'" 4 \
        "cannot open database .*locked.db: Permission denied"
fi

# ---- parameters named _x ------------------------------------------------------------
run "$SF" render --db "$T/a.db" --query "SELECT v FROM t WHERE v > CAST(:_x AS INTEGER)" \
    --template "$T/v.mustache" -o "$T/o.xml" --param _x=1
ok "sqlite: a parameter named _x binds" sh -c "[ $rc = 0 ] && grep -q '<r><v>2</v><v>3</v></r>' '$T/o.xml'"

# ---- --count of a query ending in ';', blanks and comments ---------------------------
for tail in " ; -- the end" "; /* c */ " " -- c
;" " /* a */ ; /* b */ -- c" ";;"; do
    run "$SF" render --db "$T/a.db" --query "SELECT v FROM t$tail" --template "$T/v.mustache" \
        -o "$T/o.xml" --count --progress=always
    ok "sqlite: --count takes a query ending in '$(tr '\n' ' ' <<< "$tail")'" \
        sh -c "[ $rc = 0 ] && grep -qE '^3 rows, .*100%$' '$T/err'"
done

# ---- a conninfo-looking --db with a password: not in /proc/PID/cmdline ----------------
# (a FIFO as the query file holds the process while its command line is read)
mkfifo "$T/q.fifo"
"$SF" render --db "host=/nonexistent password='x\\' S3cretPw'" --query-file "$T/q.fifo" \
    --template "$T/v.mustache" -o "$T/o.xml" 2>"$T/err" &
pid=$!
for _ in $(seq 50); do [ -r /proc/$pid/cmdline ] && grep -q render /proc/$pid/cmdline 2>/dev/null && break; sleep 0.05; done
sleep 0.2
tr '\0' ' ' < /proc/$pid/cmdline > "$T/cmdline" 2>/dev/null
echo "SELECT 1 AS v" > "$T/q.fifo"
wait $pid
ok "a conninfo password with an escaped quote is not in /proc/PID/cmdline, nor in the message" \
    sh -c "grep -q render '$T/cmdline' && ! grep -q S3cretPw '$T/cmdline' && ! grep -q S3cretPw '$T/err'"

# ---- a signal while connecting to a host that never answers ---------------------------
# A listener that accepts TCP and says nothing holds a connect for connect_timeout
# (10 s) per host; SIGTERM and SIGINT must end the run at once all the same (within
# 2 s here), with 143/130, the previous feed untouched and no temporary file.
PY=/usr/bin/python3
$PY -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
c = []
while True: c.append(s.accept()[0])' > "$T/mute.port" &
mute=$!
for _ in $(seq 50); do [ -s "$T/mute.port" ] && break; sleep 0.1; done
mp=$(cat "$T/mute.port")
ms() { echo $(( $(date +%s%N) / 1000000 )); }
for db in "postgresql://u:Mut3Pw@127.0.0.1:$mp/db" \
          "postgresql://u:Mut3Pw@127.0.0.1:$mp,127.0.0.1:$mp,127.0.0.1:$mp/db" \
          "host=127.0.0.1 port=$mp password=Mut3Pw" \
          "mysql://u:Mut3Pw@127.0.0.1:$mp/db"; do
    what=${db%%:*}; [[ $db == *,* ]] && what="$what (3 hosts)"; [[ $db == host=* ]] && what="postgresql (conninfo)"
    for sig in TERM INT; do
        echo "previous feed" > "$T/keep.xml"
        "$SF" render --db "$db" --query "SELECT 1 AS v" --template "$T/v.mustache" \
            -o "$T/keep.xml" 2>"$T/err" &
        pid=$!
        # connecting: the listener has its connection (or 1 s has passed)
        for _ in $(seq 20); do
            ss -tn 2>/dev/null | grep -q "127.0.0.1:$mp *$" && break
            grep -q ":$(printf '%04X' "$mp") .* 01 " /proc/net/tcp 2>/dev/null && break
            sleep 0.05
        done
        sleep 0.3
        t0=$(ms); kill -$sig $pid
        for _ in $(seq 40); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
        if kill -0 $pid 2>/dev/null; then
            kill -KILL $pid; wait $pid 2>/dev/null
            fail "$what: SIG$sig while connecting to a host that never answers" "still running 2 s later"
            continue
        fi
        wait $pid; rc=$?; dt=$(( $(ms) - t0 ))
        want=143; [ $sig = INT ] && want=130
        ok "$what: SIG$sig while connecting to a host that never answers: exit $want in $dt ms, previous feed kept" \
            sh -c "[ $rc = $want ] && [ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -a '$T' | grep -q 'keep.xml.sqlfeed-' && ! grep -q Mut3Pw '$T/err' && grep -q 'nothing written, $T/keep.xml left as it was' '$T/err'"
    done
done
kill $mute 2>/dev/null; wait $mute 2>/dev/null || : # its 143 is not the suite's status
