#!/bin/bash
# valgrind_test.sh BUILD: the unit and spec suites and typical renders (a
# success, a template error, a SQL error mid-stream) under valgrind memcheck:
# no invalid access, no uninitialised use, no leak of any kind.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: valgrind_test.sh BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind: not installed"
    exit 0
fi
T=$(mktemp -d /tmp/sqlfeed-vg.XXXXXX)
trap 'rm -rf "$T"' EXIT
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=all"

vg() { # vg NAME WANT_RC CMD...: memcheck-clean and exits WANT_RC
    local name=$1 want=$2; shift 2
    $VG "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc = 99 ] || grep -q '^==[0-9]*==' "$T/err"; then
        echo "FAIL: valgrind $name: $(grep -m3 '^==[0-9]*==' "$T/err" | tr '\n' ' ')"
    elif [ $rc != "$want" ]; then
        echo "FAIL: valgrind $name: exit $rc (want $want): $(head -c 300 "$T/err")"
    else
        echo "PASS: valgrind $name"
    fi
}

mkdir -p "$T/unit"
"$B/sqlfeed" demo-db --rows 300 -o "$T/v.db" 2>/dev/null
vg "unit tests" 0 "$B/tests/unit_test" "$T/unit"
vg "spec tests" 0 "$B/tests/spec_test" "$HERE/data/mustache-spec"
mkdir -p "$T/watch"
vg "watch (the library's sampler, budget, mem-log)" 0 "$B/tests/watch_test" "$T/watch"
vg "render indeed" 0 "$B/sqlfeed" render --db "$T/v.db" --template indeed -o "$T/f.xml" \
    --param publisher=p --param publisherurl=u
vg "render to stdout" 0 "$B/sqlfeed" render --db "$T/v.db" --template simplyhired -o - -q
vg "templates" 0 "$B/sqlfeed" templates
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"
vg "render with census, mem-log, progress, budget" 0 "$B/sqlfeed" render --db "$T/v.db" \
    --template "$T/v.mustache" -o "$T/f.xml" --census --mem-log "$T/m.jsonl" --progress=always \
    --count --max-memory 1G \
    --query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000) SELECT x AS v FROM c"
vg "mem-plot" 0 "$B/sqlfeed" mem-plot "$T/m.jsonl" -o "$T/m.svg"
vg "memory budget exceeded" 6 "$B/sqlfeed" render --db "$T/v.db" --template simplyhired \
    -o "$T/f.xml" --max-memory 1M
printf '<r>{{#rows}}{{nosuch}}{{/rows}}</r>\n' > "$T/bad.mustache"
vg "template names missing" 3 "$B/sqlfeed" render --db "$T/v.db" --template "$T/bad.mustache" \
    --query 'SELECT 1 AS a' -o "$T/f.xml"
vg "SQL error mid-stream" 4 "$B/sqlfeed" render --db "$T/v.db" --template "$T/v.mustache" -o "$T/f.xml" \
    --query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50)
             SELECT CASE WHEN x = 30 THEN abs(-9223372036854775807 - 1) ELSE x END AS v FROM c"
vg "shard 1/2 (.gz)" 0 "$B/sqlfeed" render --db "$T/v.db" --template simplyhired -o "$T/s.xml.gz" \
    --shard 1/2 --shard-key id -q
vg "shard 2/2 (.gz), --lastmod" 0 "$B/sqlfeed" render --db "$T/v.db" --template simplyhired \
    -o "$T/s.xml.gz" --shard 2/2 --shard-key id --lastmod posted_at -q
vg "publish 2 shards" 0 "$B/sqlfeed" publish --template simplyhired -o "$T/s.xml.gz" --shards 2 -q
printf '{{! sqlfeed-check: unique v }}<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/u.mustache"
vg "shard with a unique rule (its values kept past the template)" 0 "$B/sqlfeed" render \
    --db "$T/v.db" --template "$T/u.mustache" --query "SELECT id, reference AS v FROM jobs" \
    -o "$T/u.xml" --shard 1/1 --shard-key id -q
vg "publish checking unique values" 0 "$B/sqlfeed" publish --template "$T/u.mustache" \
    -o "$T/u.xml" --shards 1 -q
vg "publish refused (a missing shard)" 7 "$B/sqlfeed" publish --template simplyhired \
    -o "$T/s.xml.gz" --shards 3 -q
vg "demo-db" 0 "$B/sqlfeed" demo-db --rows 50 -o "$T/d.db"
vg "example" 0 "$B/examples/render_feed" "$T/v.db" "$T/ex.xml"
