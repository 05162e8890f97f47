#!/bin/bash
# cli_test.sh BUILD: the sqlfeed command as a user runs it: options and exit
# statuses, the built-in templates against the reference program, errors that
# publish nothing (SQL error mid-stream, full disk, fsync error, SIGINT,
# SIGTERM), file modes, stdout, and flat memory over rows.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
# Environment: SANITIZED=1 under ASan (skips the RSS test). The reference
# programs and checker are in tests/ref/.
set -u
B=${1:?usage: cli_test.sh BUILD}
SF=$B/sqlfeed
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
unset SOURCE_DATE_EPOCH

. "$(dirname "$0")/lib.sh"

DB=$T/jobs.db
"$SF" demo-db --rows 3000 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
DQ=$(cat "$(dirname "$0")/../templates/simplyhired.sql")

# ---- options and exit statuses ---------------------------------------------
run "$SF" --help;                 ok "--help exits 0 and lists exit statuses" grep -q "exit status" "$T/out"
run "$SF" --version;              ok "--version" grep -qE '^sqlfeed [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"
run "$SF" render --help;          ok "render --help" grep -q -- "--param NAME=VALUE" "$T/out"
run "$SF";                        expect "no command: exit 2" 2 "no command given"
run "$SF" frobnicate;             expect "unknown command: exit 2" 2 "unknown command 'frobnicate' \(see 'sqlfeed --help'\)"
ok "unknown command: one line" one_line
run "$SF" render --bogus;         expect "unknown option: exit 2" 2 "unknown or ambiguous option '--bogus' \(see 'sqlfeed render --help'\)"
ok "unknown option: one line" one_line
run "$SF" render --db;            expect "missing value: exit 2" 2 "option '--db' needs a value"
ok "missing value: one line" one_line
run "$SF" render -x;              expect "unknown short option: exit 2" 2 "unknown option '-x'"
run "$SF" render --quiet=1;       expect "a value for a flag: exit 2" 2 "option '--quiet' takes no value"
run "$SF" render --q;             expect "ambiguous abbreviation: exit 2" 2 "unknown or ambiguous option '--q'"
run "$SF" render --template simplyhired -o "$T/x.xml"; expect "missing --db: exit 2" 2 "missing --db"
run "$SF" render --db "$DB" --template simplyhired -o "$T/x.xml" --query 'SELECT 1' --query-file /dev/null
expect "--query and --query-file: exit 2" 2 "not both"
run "$SF" render --db "$DB" --template simplyhired -o "$T/x.xml" --param novalue
expect "--param without =: exit 2" 2 "NAME=VALUE"
run "$SF" render --db "$DB" --template nosuchtemplate -o "$T/x.xml"
expect "unknown template: exit 2" 2 "no built-in template or readable file named 'nosuchtemplate'"
run "$SF" demo-db --rows x -o "$T/d.db"; expect "demo-db bad --rows: exit 2" 2 "whole number"

run "$SF" templates
ok "templates lists simplyhired with its columns" grep -q "columns: title, reference, url, category, description" "$T/out"
ok "templates lists indeed with its parameters" grep -q "parameters: publisher, publisherurl" "$T/out"

# ---- demo data ----------------------------------------------------------------
"$SF" demo-db --rows 500 --seed 7 -o "$T/a.db" 2>/dev/null
"$SF" demo-db --rows 500 --seed 7 -o "$T/b.db" 2>/dev/null
ok "demo-db is deterministic" cmp -s "$T/a.db" "$T/b.db"
ok "demo-db has the rows" test "$(sqlite3 "$T/a.db" 'SELECT count(*) FROM jobs')" = 500

# ---- the built-in templates ------------------------------------------------
run "$SF" render --db "$DB" --template simplyhired -o "$T/sh.xml"
expect "render simplyhired prints the summary" 0 "^sqlfeed: [0-9]+ rows, [0-9]+ bytes .* in [0-9.]+ s, [0-9]+ rows/s, peak RSS [0-9.]+ MiB(, memory [a-z]+ .*)? -> $T/sh.xml$"
REF=$(cd "$(dirname "$0")" && pwd)/ref # reference program and checker (tests/ref/README.md)
$PY "$REF/python_sax_write_feed.py" "$DB" "$T/ref.xml"
ok "simplyhired is byte-identical to python_sax (demo data)" cmp -s "$T/sh.xml" "$T/ref.xml"
ok "simplyhired: xml_equal says equal (demo data)" \
    sh -c "$PY '$REF/xml_equal.py' '$T/sh.xml' '$T/ref.xml' | grep -q '^equal'"
$PY "$REF/make_jobs_db.py" --rows 3000 --out "$T/ref.db" >/dev/null 2>&1
$PY "$REF/python_sax_write_feed.py" "$T/ref.db" "$T/ref2.xml"
run "$SF" render --db "$T/ref.db" --template simplyhired -o "$T/sh2.xml" --query "$DQ"
ok "simplyhired: xml_equal says equal (DATASET.md data, DATASET.md query)" \
    sh -c "$PY '$REF/xml_equal.py' '$T/sh2.xml' '$T/ref2.xml' | grep -q '^equal'"
run "$SF" render --db "$DB" --template simplyhired -o - --quiet
ok "-o - writes the same document to stdout" cmp -s "$T/out" "$T/sh.xml"
ok "--quiet prints nothing" test ! -s "$T/err"

run "$SF" render --db "$DB" --template indeed -o "$T/in.xml"
expect "indeed without its parameters: exit 3, names them" 3 "publisher .*publisherurl"
ok "indeed without parameters: nothing written" test ! -e "$T/in.xml"
run "$SF" render --db "$DB" --template indeed -o "$T/in.xml" --param publisher='Just Jobs & Co' \
    --param publisherurl='https://justjobs.example/?a=1&b=2'
ok "indeed renders" test "$rc" = 0
ok "indeed is well-formed (xmllint)" xmllint --noout "$T/in.xml"
ok "indeed keeps HTML literal inside CDATA" grep -q '<description><!\[CDATA\[<p>' "$T/in.xml"
cat > "$T/check_indeed.py" <<'EOF'
import sqlite3, sys, xml.etree.ElementTree as ET
db, feed, query = sys.argv[1], sys.argv[2], sys.argv[3]
rows = sqlite3.connect(db).execute(query)
cols = [d[0] for d in rows.description]
jobs = ET.parse(feed).getroot().findall("job")
n = 0
for job, row in zip(jobs, rows):
    r = dict(zip(cols, row))
    r["referencenumber"] = f"{r['reference']}-{r['location_id']}"  # one job per location
    for el, col in (("title", "title"), ("description", "description"), ("company", "company"),
                    ("referencenumber", "referencenumber"), ("url", "url"), ("city", "city")):
        want = r[col] or ""
        got = job.findtext(el) or ""
        if got != want:
            sys.exit(f"job {n}: <{el}> {got[:60]!r} != {want[:60]!r}")
    if (job.find("salary") is None) != (r["salary"] is None):
        sys.exit(f"job {n}: salary present iff not NULL")
    n += 1
if n != len(jobs) or next(rows, None) is not None:
    sys.exit("job count differs from the query's rows")
EOF
ok "indeed: every job's values equal the database's" $PY "$T/check_indeed.py" "$DB" "$T/in.xml" \
    "$(cat "$(dirname "$0")/../templates/indeed.sql")"

# ---- template errors --------------------------------------------------------
previous "$T/keep.xml"
printf '<jobs>\n{{#rows}}<t>{{title}}</t><x>{{nosuch}}</x>{{/rows}}{{alsomissing}}</jobs>\n' > "$T/missing.mustache"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/missing.mustache" -o "$T/keep.xml"
expect "names no column provides: exit 3, listed with file:line:col" 3 \
    "nosuch \($T/missing.mustache:2:29\), alsomissing \($T/missing.mustache:2:52\)"
ok "names missing: one line" one_line
ok "names missing: previous output kept" is_previous "$T/keep.xml"
ok "names missing: no temporary file" no_temp "$T"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/missing.mustache" -o -
ok "names missing: nothing on stdout" test ! -s "$T/out"
printf '<jobs>\n  {{#rows}}<t>{{title}}</t>\n</jobs>\n' > "$T/syntax.mustache"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/syntax.mustache" -o "$T/keep.xml"
expect "syntax error: exit 3 with file:line:col" 3 "$T/syntax.mustache:2:3: section \{\{#rows\}\} is never closed"
printf '<jobs>{{#rows}}<job id={{id}}/>{{/rows}}</jobs>\n' > "$T/ctx.mustache"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/ctx.mustache" -o "$T/keep.xml"
expect "value in markup: exit 3" 3 "ctx.mustache:1:24: \{\{id\}\} sits in markup"
printf '<jobs>{{#rows}}{{>item}}{{/rows}}</jobs>\n' > "$T/part.mustache"
printf '<job id="{{id}}">{{title}}</job>' > "$T/item.mustache"
printf '<jobs>{{>nopart}}</jobs>\n' > "$T/usesmissing.mustache"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/part.mustache" -o "$T/part.xml"
ok "partial from the template's directory" grep -q '^<jobs><job id="[0-9]*">' "$T/part.xml"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/usesmissing.mustache" -o "$T/keep.xml"
expect "missing partial: exit 3, names the file looked for" 3 "usesmissing.mustache:1:7: partial 'nopart' not found \(no $T/nopart.mustache\)"
printf '<r>{{>self}}</r>\n' > "$T/self.mustache"
run "$SF" render --db "$DB" --query "$DQ" --template "$T/self.mustache" -o "$T/keep.xml"
expect "a partial that includes itself forever: exit 3" 3 "nested more than 64 deep|recurse more than 256 deep"
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"
printf 'SELECT 42 AS v\n' > "$T/v.sql"
run "$SF" render --db "$DB" --template "$T/v.mustache" -o "$T/v.xml"
ok "a template file's NAME.sql is its query" grep -q '<v>42</v>' "$T/v.xml"

# ---- parameters -------------------------------------------------------------
EVIL="x' OR '1'='1\"; DROP TABLE jobs; --<&>"
run "$SF" render --db "$DB" --query 'SELECT :v AS v' --template "$T/v.mustache" -o "$T/p.xml" --param "v=$EVIL"
ok "--param is bound, not pasted: value comes back verbatim" \
    sh -c "$PY -c 'import sys,xml.etree.ElementTree as E; sys.exit(E.parse(sys.argv[1]).getroot().findtext(\"v\") != sys.argv[2])' '$T/p.xml' \"\$1\"" _ "$EVIL"
run "$SF" render --db "$DB" --query "SELECT count(*) AS v FROM jobs WHERE site = :site" --template "$T/v.mustache" -o "$T/p.xml" --param site=justjobs
ok "--param site=justjobs binds :site" grep -q "<v>$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE site='justjobs'")</v>" "$T/p.xml"
run "$SF" render --db "$DB" --query 'SELECT :site AS v' --template "$T/v.mustache" -o "$T/keep.xml"
expect "unbound :site: exit 3, says how" 3 "--param site=VALUE"
run "$SF" render --db "$DB" --query 'SELECT ? AS v' --template "$T/v.mustache" -o "$T/keep.xml"
expect "positional ?: exit 4" 4 "positional"
SOURCE_DATE_EPOCH=1700000000 "$SF" render --db "$DB" --query 'SELECT 1 AS v' -o "$T/g.xml" --quiet \
    --template <(printf '<g a="{{generated_at}}" r="{{generated_rfc822}}">{{#rows}}{{v}}{{/rows}}</g>') 2>"$T/err"
ok "SOURCE_DATE_EPOCH fixes generated_*" grep -q '<g a="2023-11-14T22:13:20Z" r="Tue, 14 Nov 2023 22:13:20 +0000">1</g>' "$T/g.xml"

# ---- database errors --------------------------------------------------------
run "$SF" render --db "$T/nosuch.db" --template simplyhired -o "$T/keep.xml"
expect "missing database: exit 4" 4 "cannot open database $T/nosuch.db"
run "$SF" render --db "$T/keep.xml" --template simplyhired -o "$T/other.xml"
expect "not a database: exit 4" 4 "cannot read database $T/keep.xml: file is not a database"
run "$SF" render --db "$DB" --query 'SELEC nonsense' --template simplyhired -o "$T/keep.xml"
expect "SQL syntax error: exit 4 with SQLite's text" 4 'near "SELEC": syntax error'
run "$SF" render --db "$DB" --query 'DELETE FROM jobs' --template "$T/v.mustache" -o "$T/keep.xml"
expect "a write statement is refused: exit 4" 4 "not read-only|returns no columns"
ok "database errors: previous output kept" is_previous "$T/keep.xml"

# A query that fails at row 1001, after output has been written.
MID="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
     SELECT CASE WHEN x = 1001 THEN abs(-9223372036854775807 - 1) ELSE x END AS v FROM c"
run "$SF" render --db "$DB" --query "$MID" --template "$T/v.mustache" -o "$T/keep.xml"
expect "SQL error mid-stream: exit 4, names the row" 4 "query failed at row 1001: sqlite: integer overflow; nothing published, $T/keep.xml left as it was"
ok "SQL error mid-stream: one line" one_line
ok "SQL error mid-stream: previous output kept" is_previous "$T/keep.xml"
ok "SQL error mid-stream: temporary file removed" no_temp "$T"

# ---- output errors ----------------------------------------------------------
INJ=$B/tests/inject.so
run env LD_PRELOAD="$INJ" SQLFEED_INJECT_ENOSPC_AFTER=300000 "$SF" render --db "$DB" --template simplyhired -o "$T/keep.xml"
expect "full disk: exit 5, names the cause, file and row" 5 "output failed after row [0-9]+: write $T/\.keep\.xml\.sqlfeed-[0-9a-f]+: No space left on device; nothing published"
ok "full disk: one line" one_line
ok "full disk: previous output kept" is_previous "$T/keep.xml"
ok "full disk: temporary file removed" no_temp "$T"
run env LD_PRELOAD="$INJ" SQLFEED_INJECT_FSYNC_EIO=1 "$SF" render --db "$DB" --template simplyhired -o "$T/keep.xml"
expect "fsync error: exit 5" 5 "fsync $T/\.keep\.xml\.sqlfeed-[0-9a-f]+: Input/output error"
ok "fsync error: previous output kept" is_previous "$T/keep.xml"
ok "fsync error: temporary file removed" no_temp "$T"
run "$SF" render --db "$DB" --template simplyhired -o "$T/no/such/dir/f.xml"
expect "missing output directory: exit 5" 5 "cannot create a temporary file in $T/no/such/dir"
run "$SF" render --db "$DB" --template simplyhired -o "$T"
expect "output is a directory: exit 5" 5 "is a directory"
cp "$DB" "$T/same.db"
run "$SF" render --db "$T/same.db" --template simplyhired -o "$T/./same.db"
expect "-o naming the database is refused: exit 2" 2 "-o $T/./same.db is the same file as --db $T/same.db, which sqlfeed reads"
ok "-o naming the database: database intact" cmp -s "$DB" "$T/same.db"

mkfifo "$T/out.fifo"
timeout 20 cat "$T/out.fifo" > "$T/from-fifo.xml" &
catpid=$!
run timeout 20 "$SF" render --db "$DB" --template simplyhired -o "$T/out.fifo" -q
wait $catpid
ok "-o on a FIFO writes into it, leaves it a FIFO" sh -c "[ $rc = 0 ] && [ -p '$T/out.fifo' ] && cmp -s '$T/from-fifo.xml' '$T/sh.xml'"
run "$SF" render --db "$DB" --template simplyhired -o /dev/null -q
ok "-o /dev/null writes to the device, never replaces it" sh -c "[ $rc = 0 ] && [ -c /dev/null ]"

# ---- signals ----------------------------------------------------------------
ENDLESS="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000000) SELECT x AS v FROM c"
for sig in INT TERM; do
    previous "$T/keep.xml"
    "$SF" render --db "$DB" --query "$ENDLESS" --template "$T/v.mustache" -o "$T/keep.xml" 2>"$T/err" &
    pid=$!
    # Wait until the render is writing (its temporary file has grown).
    for _ in $(seq 100); do
        f=$(find "$T" -maxdepth 1 -name '.keep.xml.sqlfeed-*' -size +1k | head -1)
        [ -n "$f" ] && break
        sleep 0.05
    done
    kill -s $sig $pid
    wait $pid; rc=$?
    want=$((128 + $(kill -l $sig)))
    expect "SIG$sig mid-render: exit $want, message with the row" $want "stopped by signal [0-9]+ .* after row [0-9]+; nothing published, $T/keep.xml left as it was"
    ok "SIG$sig: previous output kept" is_previous "$T/keep.xml"
    ok "SIG$sig: temporary file removed" no_temp "$T"
done

# ---- templates that try to escape their context ------------------------------
# A value after a literal ']' (or '-') in CDATA (or a comment) cannot finish
# the "]]>" ("-->") the template's text began.
printf '<r><a><![CDATA[]{{x}}]]></a><b><![CDATA[]]{{x}}>]]></b><c><!-- a-{{x}}--></c></r>\n' > "$T/edge.mustache"
for x in ']><evil/>' '' '>' ']' '-' '->' ']]>'; do
    run "$SF" render --db "$DB" --query 'SELECT 1 AS n' --template "$T/edge.mustache" -o "$T/edge.xml" --param "x=$x"
    ok "value '$x' after a literal ']', ']]' or '-' stays in its section" \
        $PY -c 'import sys,xml.etree.ElementTree as E
r=E.parse(sys.argv[1]).getroot(); x=sys.argv[2]
sys.exit(r.find("a").text != "]"+x or (r.find("b").text or "") != "]]"+x+">" or len(r.find("a")) or len(r.find("b")))' "$T/edge.xml" "$x"
done
printf '<r><a><![CDATA[]{{x}}]]></a></r>\n' > "$T/edge1.mustache"
run "$SF" render --db "$DB" --query 'SELECT 1 AS n' --template "$T/edge1.mustache" -o "$T/edge1.xml" --param 'x=]><evil/>'
ok "CDATA after ']': the value is text, not markup" \
    $PY -c 'import sys,xml.etree.ElementTree as E; a=E.parse(sys.argv[1]).getroot().find("a"); sys.exit(a.text != "]]><evil/>" or len(a))' "$T/edge1.xml"
printf '<r><![CDATA[]]{{#s}}{{/s}}>]]></r>\n' > "$T/edge2.mustache"
run "$SF" render --db "$DB" --query 'SELECT 1 AS n' --template "$T/edge2.mustache" -o "$T/keep.xml" --param s=1
expect "a section tag splitting ']]>' is refused: exit 3" 3 "edge2.mustache:1:15: a section tag splits the '\]\]>' that ends a CDATA section"
printf '<x>{{>rowsp}}{{>rowsp}}</x>' > "$T/twice.mustache"
printf '{{#rows}}<i>{{n}}</i>{{/rows}}\n' > "$T/rowsp.mustache"
run "$SF" render --db "$DB" --query 'SELECT 1 AS n' --template "$T/twice.mustache" -o "$T/keep.xml"
expect "rows iterated twice through a partial: exit 3" 3 "rowsp.mustache:1:1: \{\{#rows\}\} again \(first at $T/rowsp.mustache:1:1\)"
{ printf '{{#x}}%.0s' $(seq 250); printf 'a{{>deep}}'; printf '{{/x}}%.0s' $(seq 250); } > "$T/deep.mustache"
printf '<r>{{>deep}}</r>\n' > "$T/deeptop.mustache"
run "$SF" render --db "$DB" --query 'SELECT 1 AS n' --template "$T/deeptop.mustache" -o "$T/keep.xml" --param x=1
expect "sections and partials nested without end: exit 3, no crash" 3 "nested more than 1024 deep"
ok "deep nesting: previous output kept, temporary file removed" sh -c "[ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -a '$T' | grep -q sqlfeed-"
run "$SF" render --db "$DB" --template simplyhired -o "$T/keep.xml" --param site=otherjobs
expect "a parameter nothing reads: exit 3" 3 "parameter 'site' is read by neither the query \(:site\) nor the template"
run env SOURCE_DATE_EPOCH=99999999999999 "$SF" render --db "$DB" --template simplyhired -o "$T/keep.xml"
expect "SOURCE_DATE_EPOCH out of range: exit 2" 2 "up to year 9999"

# A render blocked writing to a reader that stopped reading still stops.
mkfifo "$T/fifo"
exec 7<>"$T/fifo"   # holds the FIFO open without reading it
"$SF" render --db "$DB" --template simplyhired -o - >"$T/fifo" 2>"$T/err" &
pid=$!
sleep 0.5
kill -INT $pid
for _ in $(seq 40); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
if kill -0 $pid 2>/dev/null; then
    fail "SIGINT while blocked writing stdout" "still running 2 s later"; kill -KILL $pid
else
    wait $pid; rc=$?
    expect "SIGINT while blocked writing stdout: stops, exit 130" 130 "stopped by signal 2 .*the output is incomplete"
fi
exec 7<&-

# An interrupted demo-db leaves nothing behind.
mkdir -p "$T/demo"
"$SF" demo-db --rows 3000000 -o "$T/demo/big.db" 2>"$T/err" &
pid=$!
for _ in $(seq 100); do
    [ -n "$(find "$T/demo" -name '.big.db.sqlfeed-*' -size +100k)" ] && break
    sleep 0.05
done
kill -TERM $pid; wait $pid; rc=$?
expect "demo-db stopped by SIGTERM: exit 143" 143 "stopped by signal 15"
ok "demo-db stopped: no file, no temporary file" test -z "$(ls -A "$T/demo")"

# ---- file mode --------------------------------------------------------------
rm -f "$T/m1.xml" "$T/m2.xml"
(umask 027 && "$SF" render --db "$DB" --template simplyhired -o "$T/m1.xml" -q)
(umask 022 && "$SF" render --db "$DB" --template simplyhired -o "$T/m2.xml" -q)
ok "new file mode follows the umask (027 -> 640)" test "$(stat -c %a "$T/m1.xml")" = 640
ok "new file mode follows the umask (022 -> 644)" test "$(stat -c %a "$T/m2.xml")" = 644

# ---- the library example ------------------------------------------------------
run "$B/examples/render_feed" "$DB" "$T/ex.xml"
ok "examples/render_feed renders the same feed" cmp -s "$T/ex.xml" "$T/sh.xml"
ok "examples/render_feed prints the census" grep -q "output buffer" "$T/out"

# ---- flat memory ------------------------------------------------------------
if [ "${SANITIZED:-0}" = 1 ]; then
    skip "peak RSS flat over rows" "not measured under sanitizers"
else
    CACHE=$B/testdata
    mkdir -p "$CACHE"
    for n in 10000 200000; do
        [ -s "$CACHE/demo-$n.db" ] || "$SF" demo-db --rows $n -o "$CACHE/demo-$n.db" 2>/dev/null
        /usr/bin/time -f %M -o "$T/rss-$n" "$SF" render --db "$CACHE/demo-$n.db" --template simplyhired -o "$T/big.xml" -q
        rm -f "$T/big.xml"
    done
    a=$(cat "$T/rss-10000"); b=$(cat "$T/rss-200000")
    d=$((b > a ? b - a : a - b))
    if [ $d -lt 2048 ]; then pass "peak RSS flat over rows (10k: $a KiB, 200k: $b KiB)"
    else fail "peak RSS flat over rows" "10k: $a KiB, 200k: $b KiB, differ by $d KiB (limit 2048)"; fi
fi
