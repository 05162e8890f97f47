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
# output publishing none.
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
exit 0
