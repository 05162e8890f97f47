#!/bin/bash
# source_test.sh BUILD: the source layer through the command, without servers:
# why a SQLite --db cannot be opened (in the system's words), parameters named
# _x, --count of queries ending in ';', blanks and comments, and a conninfo
# password with an escaped quote kept out of messages and /proc/PID/cmdline. Prints PASS/FAIL/SKIP lines.
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
