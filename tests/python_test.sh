#!/bin/bash
# python_test.sh BUILD: the Python package (python/) built against BUILD's
# libsqlfeed.a with Debian's /usr/bin/python3 into a scratch directory, then
# tests/python_test.py: a render byte-identical to the command's, errors
# with .status and .message (the previous file stays), the GIL released
# during a render, SIGINT and a progress callback's exception cancelling it
# (nothing published, no temporary file), the run's figures,
# sqlfeed.database_url() on plain Django-style dicts, and outputs=: a split
# sitemap with an index, a split without one and two outputs from one scan,
# each against the command's render of the same options, and a failing
# output publishing none; then examples/django's manage.py render_feed
# (python3-django): the command's bytes, --param, a bad template's exit 1
# and message, and a PostgreSQL alias's password reaching libpq through
# PGPASSWORD only (tests/pg_password_sink.py, a stand-in server).
set -u
B=$(cd "${1:?usage: python_test.sh BUILD}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/sqlfeed-python.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/lib.sh"
PY=/usr/bin/python3

# An ASan build's library cannot be loaded by an uninstrumented interpreter.
if [ "${SANITIZED:-0}" = 1 ]; then skip "python" "SANITIZED=1 (ASan runtime not in python3)"; exit 0; fi
if [ ! -x $PY ] || ! $PY -c 'import setuptools, sysconfig, os; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null; then
    skip "python" "needs python3-dev and python3-setuptools (make deps)"; exit 0
fi
# setup.py writes into its own tree only under --build-base/--build-lib.
if (cd "$HERE/../python" && SQLFEED_BUILD=$B $PY setup.py -q build --build-base "$T/tmp" \
        --build-lib "$T/lib") >"$T/err" 2>&1; then
    pass "python: the extension builds against $B/libsqlfeed.a"
else
    fail "python: build" "$(tail -c 1500 "$T/err")"; exit 0
fi
so=$(ls "$T"/lib/sqlfeed/_sqlfeed*.so)
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')
if [ "$syms" = "PyInit__sqlfeed " ]; then pass "python: the module exports only PyInit__sqlfeed (libsqlfeed.a inside)"
else fail "python: exports" "$syms"; fi
if ! "$B/sqlfeed" demo-db --rows 2000 -o "$T/jobs.db" >"$T/err" 2>&1; then
    fail "python: demo-db" "$(cat "$T/err")"; exit 0
fi
export SOURCE_DATE_EPOCH=1700000000
if ! "$B/sqlfeed" render --db "$T/jobs.db" -t simplyhired -o "$T/cli.xml" --quiet 2>"$T/err"; then
    fail "python: the command's render" "$(cat "$T/err")"; exit 0
fi
"$B/sqlfeed" templates --show simplyhired.sql >"$T/simplyhired.sql"
mkdir "$T/work"
PYTHONPATH=$T/lib $PY "$HERE/python_test.py" "$T/jobs.db" "$T/cli.xml" "$T/simplyhired.sql" "$T/work" \
    "$B/sqlfeed"
rc=$?
[ $rc = 0 ] || fail "python: python_test.py" "exited $rc"
# ---- examples/django: manage.py render_feed, with Debian's python3-django ----
DJ=$HERE/../examples/django/manage.py
if ! $PY -c 'import django' 2>/dev/null; then
    skip "python: django render_feed" "needs python3-django"; exit 0
fi
unset PGPASSWORD MYSQL_PWD # the command's own must be what libpq sees
export PGPASSFILE=/dev/null
dj() { FEEDS_DB=$T/jobs.db PYTHONPATH=$T/lib run $PY "$DJ" render_feed "$@"; }
dj --template simplyhired -o "$T/dj.xml"
if [ "$rc" = 0 ] && cmp -s "$T/dj.xml" "$T/cli.xml" && grep -q "^sqlfeed: [0-9]* rows.* -> $T/dj.xml" "$T/out"; then
    pass "python: manage.py render_feed writes the command's bytes and prints the run"
else fail "python: manage.py render_feed" "exit $rc; $(head -c 300 "$T/out") $(head -c 600 "$T/err")"; fi
# --param, repeated: a value with '=', '&' and markup in it.
params=(--param "channel_title=Jobs & more" --param channel_link=https://jobs.example/
        --param "channel_description=Jobs = work, <b>today</b>"
        --param feed_url=https://jobs.example/rss.xml)
"$B/sqlfeed" render --db "$T/jobs.db" -t rss -o "$T/cli-rss.xml" -q "${params[@]}" 2>"$T/err0"
dj --database default --template rss --output "$T/dj-rss.xml" "${params[@]}"
if [ "$rc" = 0 ] && [ -s "$T/cli-rss.xml" ] && cmp -s "$T/dj-rss.xml" "$T/cli-rss.xml" &&
    grep -q 'Jobs = work, &lt;b&gt;today' "$T/dj-rss.xml"; then
    pass "python: render_feed --param NAME=VALUE...: the command's bytes (rss)"
else fail "python: render_feed --param" "exit $rc; $(head -c 600 "$T/err") $(head -c 300 "$T/err0")"; fi
# A bad template: a CommandError with sqlfeed's message, exit 1, the feed kept.
cp "$T/dj.xml" "$T/dj.before"
dj --template "$T/no-such.mustache" -o "$T/dj.xml"
if [ "$rc" = 1 ] && grep -q "^CommandError: sqlfeed: .*no-such.mustache.*(status 2)" "$T/err" &&
    cmp -s "$T/dj.xml" "$T/dj.before" && no_temp "$T"; then
    pass "python: render_feed with a bad template: exit 1, the message, the feed kept"
else fail "python: render_feed with a bad template" "exit $rc; $(head -c 600 "$T/err")"; fi
printf '<jobs>{{#rows}}<job>{{nope}}</job>{{/rows}}</jobs>\n' >"$T/broken.mustache"
cp "$T/simplyhired.sql" "$T/broken.sql"
dj --template "$T/broken.mustache" -o "$T/dj.xml"
if [ "$rc" = 1 ] && grep -q "^CommandError: sqlfeed: .*: nope (.*broken.mustache:1:[0-9]*) (status 4)" "$T/err" &&
    cmp -s "$T/dj.xml" "$T/dj.before"; then
    pass "python: render_feed with a template naming a missing column: exit 1, file:line:col"
else fail "python: render_feed with a broken template" "exit $rc; $(head -c 600 "$T/err")"; fi
dj --database nosuch --template simplyhired -o "$T/dj.xml"
if [ "$rc" = 1 ] && grep -q "unknown database alias 'nosuch'" "$T/err"; then
    pass "python: render_feed --database with an unknown alias: exit 1"
else fail "python: render_feed --database nosuch" "exit $rc; $(head -c 600 "$T/err")"; fi
# A PostgreSQL alias: the password reaches libpq through PGPASSWORD (a
# stand-in server asks for it in clear and records it), never the command
# line or a message.
$PY "$HERE/pg_password_sink.py" "$T/pgport" "$T/pgpass" 2>"$T/pgerr" &
sink=$!
for _ in $(seq 100); do [ -s "$T/pgport" ] && break; sleep 0.05; done
pw='s3cr3t pw/with:@chars'
if [ ! -s "$T/pgport" ]; then
    kill $sink 2>/dev/null
    fail "python: render_feed --database replica" "the stand-in server did not start: $(cat "$T/pgerr")"
    exit 0
fi
FEEDS_PG_NAME=jobs FEEDS_PG_HOST=127.0.0.1 FEEDS_PG_PORT=$(cat "$T/pgport" 2>/dev/null) \
    FEEDS_PG_USER=feed FEEDS_PG_PASSWORD=$pw PGSSLMODE=disable PGGSSENCMODE=disable \
    dj --database replica --template simplyhired -o "$T/dj.xml"
wait $sink
if [ "$rc" = 1 ] && [ "$(cat "$T/pgpass" 2>/dev/null)" = "$pw" ] &&
    grep -q "^CommandError: sqlfeed: .*postgresql://feed@127.0.0.1:[0-9]*/jobs.*(status 5)" "$T/err" &&
    ! grep -qF "s3cr3t" "$T/err" "$T/out" && cmp -s "$T/dj.xml" "$T/dj.before"; then
    pass "python: render_feed --database replica: the password goes through PGPASSWORD only"
elif grep -q "libpq" "$T/err" && ! [ -s "$T/pgpass" ]; then
    skip "python: render_feed --database replica" "libpq cannot be loaded: $(head -c 200 "$T/err")"
else fail "python: render_feed --database replica" "exit $rc; sent '$(cat "$T/pgpass" 2>/dev/null)'; $(head -c 600 "$T/err") $(cat "$T/pgerr")"; fi
exit 0
