#!/bin/bash
# cli9_test.sh BUILD: the command side of issue 9, points 3 and 4: header
# values from the data ({{#first}} in the head, {{row_count}} in the tail,
# in split parts too), row checks ({{! sqlfeed-check: ... }}: required, max,
# enum, unique), --on-invalid fail|skip (exit 9, the previous feed kept;
# skipped rows counted in --summary-json and listed by --reject-log), and
# their usage errors.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: cli9_test.sh BUILD}
SF=$B/sqlfeed
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-cli9.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
export SOURCE_DATE_EPOCH=1767225600

. "$(dirname "$0")/lib.sh"

DB=$T/jobs.db
"$SF" demo-db --rows 20 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
R="$SF render --db $DB"
# The rows the checks read: id 3's city NULL, id 5's blank, id 7's job_type
# odd, id 9's title long, id 11's reference repeating id 10's.
Q="SELECT reference AS ref, id,
   CASE WHEN id = 3 THEN NULL WHEN id = 5 THEN '  ' ELSE 'Berlin' END AS city,
   CASE WHEN id = 7 THEN 'gig' ELSE 'full-time' END AS job_type,
   CASE WHEN id = 9 THEN 'Pâtissière à Montréal, équipe de nuit' ELSE 'Cook' END AS title,
   CASE WHEN id = 11 THEN 'R10' ELSE 'R' || id END AS code,
   posted_at FROM jobs ORDER BY id"
usage() {
    local name=$1 re=$2; shift 2
    run $R "$@"
    if [ "$rc" = 2 ] && grep -qE -- "$re" "$T/err" && one_line; then pass "usage: $name"
    else fail "usage: $name" "exit $rc (want 2, one line /$re/); stderr: $(head -c 400 "$T/err")"; fi
}
# exact NAME RC LINE: the last run exited RC and its stderr is exactly LINE
exact() {
    if [ "$rc" = "$2" ] && [ "$(cat "$T/err")" = "$3" ]; then pass "$1"
    else fail "$1" "exit $rc (want $2); stderr: $(head -c 600 "$T/err") (want: $3)"; fi
}

# ---- help and documentation ---------------------------------------------------
run "$SF" render --help
ok "--help: --on-invalid and --reject-log" sh -c "grep -q -- '--on-invalid fail|skip' '$T/out' && grep -q -- '--reject-log FILE' '$T/out'"
ok "--help: exit 9" grep -q "9 a row failed a check or a formatter" "$T/out"
MAN=$(dirname "$0")/../docs/sqlfeed.1
ok "man page: exit 9, --on-invalid, --reject-log" sh -c "grep -qx '.B 9' '$MAN' && grep -qF 'on\\-invalid' '$MAN' && grep -qF 'reject\\-log' '$MAN'"

# ---- an index's lastmod: dates compared as instants -------------------------------
# 10:00+02:00 is 08:00Z, before 09:00Z, though its text sorts after it.
LQ="SELECT 'https://x.example/1' AS url, '2026-01-31T10:00:00+02:00' AS lastmod
    UNION ALL SELECT 'https://x.example/2', '2026-01-31T09:00:00Z'
    UNION ALL SELECT 'https://x.example/3', '2026-01-31 08:30:00'"
printf '<urlset>{{#rows}}<u>{{url}}</u>{{/rows}}</urlset>\n' > "$T/lm.mustache"
printf '<i>{{#rows}}<s>{{lastmod}}</s>{{/rows}}</i>\n' > "$T/lmi.mustache"
run $R --query "$LQ" -t "$T/lm.mustache" --parts "$T/lm-%r-%d.xml" --split-rows 10 \
    --index "$T/lmi.mustache" -o "$T/lmi.xml" --base-url https://x.example/ --lastmod lastmod -q
ok "index lastmod: the latest instant, not the largest text" \
    sh -c "[ $rc = 0 ] && grep -q '<s>2026-01-31T09:00:00Z</s>' '$T/lmi.xml'"

# ---- rules on the value as written: a rule's name may carry the template's formatters --
printf '{{! sqlfeed-check: required d.text; max u.url 10 }}\n<r>{{#rows}}<i>{{d.text}} {{u.url}}</i>{{/rows}}</r>\n' > "$T/rf.mustache"
RQ="SELECT 1 AS id, '<p>x</p>' AS d, 'a' AS u UNION ALL SELECT 2, '<p>&nbsp;</p><img src=x>', 'b'
    UNION ALL SELECT 3, 'y', 'ééé é'"
previous "$T/rf.xml"
run $R --query "$RQ" -t "$T/rf.mustache" -o "$T/rf.xml"
exact "required d.text: HTML that writes no text is empty" 9 \
    "sqlfeed: row 2: column d: required, is empty (as d.text) (rule at $T/rf.mustache:1:29); nothing published, $T/rf.xml left as it was"
ok "... the previous feed kept" is_previous "$T/rf.xml"
run $R --query "$RQ" -t "$T/rf.mustache" -o "$T/rf.xml" --on-invalid skip --reject-log "$T/rf.tsv" -q
ok "max u.url 10: the percent-encoded URL is counted (5 characters, 27 written)" \
    sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/rf.xml')\" = '<r><i>x a</i></r>' ] && grep -q \"\$(printf '^3\t3\t.*rf.xml\tu\tmax 10 characters, has 27 (as u.url)$')\" '$T/rf.tsv'"
printf '{{! sqlfeed-check: required d.json }}\n<r>{{#rows}}{{/rows}}</r>\n' > "$T/rj.mustache"
run $R --query "$RQ" -t "$T/rj.mustache" -o "$T/rj.xml"
ok "a rule cannot read json (no text): exit 3 at file:line:col" \
    sh -c "[ $rc = 3 ] && grep -q \"rj.mustache:1:1: sqlfeed-check: 'd.json': 'json' is not a formatter a rule can read\" '$T/err'"
printf '{{! sqlfeed-check: max d.rfc9999 3 }}\n<r>{{#rows}}{{/rows}}</r>\n' > "$T/rk.mustache"
run $R --query "$RQ" -t "$T/rk.mustache" -o "$T/rk.xml"
ok "a rule naming an unknown formatter: exit 3" sh -c "[ $rc = 3 ] && grep -q \"'rfc9999' is not a formatter a rule can read\" '$T/err'"

# A head formatter refusing the first row's value: the message names row 1
printf '<f>{{#first}}<u>{{posted_at.rfc3339}}</u>{{/first}}{{#rows}}<i>{{ref}}</i>{{/rows}}</f>\n' > "$T/fr.mustache"
run $R --query "SELECT 'a' AS ref, 'bad' AS posted_at UNION ALL SELECT 'b', '2026-01-01'" -t "$T/fr.mustache" -o "$T/fr.xml" --on-invalid skip
ok "a {{#first}} value a formatter refuses: exit 9, 'row 1, read by {{#first}}'" \
    sh -c "[ $rc = 9 ] && grep -q \"^sqlfeed: row 1, read by {{#first}}: column posted_at: 'bad' is not a date\" '$T/err'"

# ---- first and row_count ---------------------------------------------------------
cat > "$T/h.mustache" <<'EOF'
<feed>{{#first}}<updated>{{posted_at}}</updated><top>{{ref}}</top>{{/first}}{{^first}}<empty/>{{/first}}
{{#rows}}<j>{{ref}}</j>
{{/rows}}<count>{{row_count}}</count></feed>
EOF
P1=$(sqlite3 "$DB" "SELECT posted_at FROM jobs ORDER BY id LIMIT 1" 2>/dev/null)
run $R --query "$Q" -t "$T/h.mustache" -o "$T/h.xml" -q
ok "first in the head: the first row's values" sh -c "[ $rc = 0 ] && head -1 '$T/h.xml' | grep -q '<feed><updated>$P1</updated><top>JJ-00000001-'"
ok "row_count in the tail: the rows written" grep -q "<count>20</count></feed>" "$T/h.xml"
run $R --query "SELECT * FROM ($Q) WHERE 0" -t "$T/h.mustache" -o "$T/h0.xml" -q
ok "first with no rows: falsy; row_count 0" sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/h0.xml')\" = '<feed><empty/>
<count>0</count></feed>' ]"
mkdir -p "$T/sp"
run $R --query "$Q" -t "$T/h.mustache" --split-rows 7 --parts "$T/sp/p-%d.xml" -q
heads=$(for f in "$T"/sp/p-*.xml; do head -1 "$f"; done | sort -u | wc -l)
counts=$(for i in 1 2 3; do grep -o '<count>[0-9]*</count>' "$T/sp/p-$i.xml"; done | tr -d '\n')
ok "split parts: every head the same first row; row_count per part (7, 7, 6)" \
    sh -c "[ $rc = 0 ] && [ $heads = 1 ] && [ '$counts' = '<count>7</count><count>7</count><count>6</count>' ]"
printf '<f a="{{row_count}}">{{#rows}}{{ref}}{{/rows}}</f>\n' > "$T/rc.mustache"
run $R --query "$Q" -t "$T/rc.mustache" -o "$T/rc.xml"
expect "row_count in the head: exit 3 at file:line:col" 3 "^sqlfeed: $T/rc.mustache:1:7: row_count is known only after the rows: read it after \{\{/rows\}\}"
printf '<f>{{#first}}{{ref}}{{/first}}{{ref}}{{#rows}}{{ref}}{{/rows}}</f>\n' > "$T/fc.mustache"
run $R --query "$Q" -t "$T/fc.mustache" -o "$T/fc.xml"
expect "a column outside {{#first}} and the rows: exit 3" 3 "reads 1 name .*: ref \($T/fc.mustache:1:31: a column, and columns are read inside \{\{#rows\}\} or \{\{#first\}\}\)"
usage "--param first is reserved" "parameter name 'first' is reserved" --query "$Q" -t "$T/h.mustache" -o "$T/u.xml" --param first=x
usage "--param row_count is reserved" "parameter name 'row_count' is reserved" --query "$Q" -t "$T/h.mustache" -o "$T/u.xml" --param row_count=1

# Split by bytes: the tail is measured with row_count at 20 digits, so a
# part whose count is short still stays under the limit.
cat > "$T/sb.mustache" <<'EOF'
<feed>{{#rows}}<j>{{ref}}</j>
{{/rows}}<count>{{row_count}}</count></feed>
EOF
mkdir -p "$T/sb"
run $R --query "$Q" -t "$T/sb.mustache" --split-bytes 150 --parts "$T/sb/p-%d.xml" -q
big=0; sum=0; good=1
for f in "$T"/sb/p-*.xml; do
    sz=$(stat -c %s "$f"); [ "$sz" -le 150 ] || big=1
    n=$(grep -c '<j>' "$f"); sum=$((sum + n))
    grep -q "<count>$n</count></feed>" "$f" || good=0
done
nparts=$(ls "$T"/sb/p-*.xml | wc -l)
ok "split by bytes: every part at most 150 bytes, its row_count its rows, all 20 rows" \
    sh -c "[ $rc = 0 ] && [ $big = 0 ] && [ $good = 1 ] && [ $sum = 20 ] && [ $nparts -gt 2 ]"
# A row is 26 bytes, the head 6, the tail 23 + the count's digits: measured
# at 20 digits (43), 3 rows fit 150 bytes (6 + 78 + 43); with the count's
# real width (24) 4 would have been allowed (6 + 104 + 24 = 134).
ok "split by bytes: the tail counted at its widest (3 rows a part, not 4)" \
    sh -c "[ \$(grep -c '<j>' '$T/sb/p-1.xml') = 3 ] && [ $nparts = 7 ]"

# A tail whose {{^row_count}} body is the longer is measured that way too:
# a part whose rows were all left out would pass the limit otherwise.
printf '{{! sqlfeed-check: required city }}<f>{{#rows}}<j>{{ref}}</j>{{/rows}}{{#row_count}}<n>{{row_count}}</n>{{/row_count}}{{^row_count}}<none>every row of this part was left out by its checks</none>{{/row_count}}</f>\n' > "$T/sz.mustache"
mkdir -p "$T/sz"
run $R --query "SELECT ref, NULL AS city FROM ($Q)" -t "$T/sz.mustache" --split-bytes 60 --parts "$T/sz/p-%d.xml" --on-invalid skip
expect "split by bytes: the tail measured with row_count 0 too" 5 "the head and tail of a part of .* are 70 bytes, more than the split limit of 60"

# ---- rules failing: exit 9, exact messages, the previous feed kept ----------------
rule() { # rule NAME RULE EXPECTED-LINE
    printf '{{! sqlfeed-check: %s }}\n<f>{{#rows}}<j>{{ref}}</j>{{/rows}}</f>\n' "$2" > "$T/k.mustache"
    previous "$T/k.xml"
    run $R --query "$Q" -t "$T/k.mustache" -o "$T/k.xml"
    if [ "$rc" = 9 ] && [ "$(cat "$T/err")" = "$3" ] && is_previous "$T/k.xml" && no_temp "$T"; then
        pass "$1"
    else fail "$1" "exit $rc (want 9); stderr: $(head -c 600 "$T/err") (want: $3)"; fi
}
K=$T/k.mustache
LEFT="nothing published, $T/k.xml left as it was"
rule "required: NULL" "required ref, city" \
    "sqlfeed: row 3: column city: required, is NULL (rule at $K:1:34); $LEFT"
rule "max: too long" "required ref, city; max city 3" \
    "sqlfeed: row 1: column city: max 3 characters, has 6 (rule at $K:1:40); $LEFT"
rule "required: each column at its own position" "required job_type;required  code ; required city" \
    "sqlfeed: row 3: column city: required, is NULL (rule at $K:1:64); $LEFT"
printf '{{! sqlfeed-check: required id }}{{! sqlfeed-check: required city }}\n<f>{{#rows}}{{ref}}{{/rows}}</f>\n' > "$T/k2.mustache"
run $R --query "SELECT * FROM ($Q) WHERE id <> 3" -t "$T/k2.mustache" -o "$T/k2.xml"
exact "required: white space only, two check comments" 9 \
    "sqlfeed: row 4: column city: required, is empty (rule at $T/k2.mustache:1:62); nothing published, $T/k2.xml left as it was"
rule "max: characters, not bytes" "max title 36" \
    "sqlfeed: row 9: column title: max 36 characters, has 37 (rule at $K:1:20); $LEFT"
rule "enum: exact values" "enum job_type full-time | part-time|contract" \
    "sqlfeed: row 7: column job_type: enum full-time|part-time|contract, is 'gig' (rule at $K:1:20); $LEFT"
rule "unique: a repeated value" "unique code" \
    "sqlfeed: row 11: column code: unique, 'R10' came before (rule at $K:1:20); $LEFT"
rule "the first failing rule in the order written" "max title 36; enum job_type full-time" \
    "sqlfeed: row 7: column job_type: enum full-time, is 'gig' (rule at $K:1:34); $LEFT"
printf '{{! sqlfeed-check: max title 40 }}\n<f>{{#rows}}<j>{{ref}}</j>{{/rows}}</f>\n' > "$T/ok.mustache"
run $R --query "$Q" -t "$T/ok.mustache" -o "$T/ok.xml" -q
ok "rules that pass: published, exit 0" sh -c "[ $rc = 0 ] && [ \$(grep -o '<j>' '$T/ok.xml' | wc -l) = 20 ]"
run $R --query "$Q" -t "$T/k.mustache" -o "$T/k.xml" --on-invalid fail
ok "--on-invalid fail is the default's behaviour" test "$rc" = 9

# ---- rules that cannot be checked: exit 3 at file:line:col -------------------------
bad() { # bad NAME RULE REGEX
    printf '<f>\n{{! sqlfeed-check: %s }}{{#rows}}{{ref}}{{/rows}}</f>\n' "$2" > "$T/b.mustache"
    run $R --query "$Q" -t "$T/b.mustache" -o "$T/b.xml"
    expect "$1" 3 "$3"
}
bad "a rule naming a missing column" "required ref; max cty 10" \
    "^sqlfeed: $T/b.mustache:2:34: sqlfeed-check 'max cty 10': 'cty' is not a column of the query"
bad "an unknown rule" "requird ref" "^sqlfeed: $T/b.mustache:2:1: sqlfeed-check: unknown rule 'requird'"
bad "max without a number" "max title many" "$T/b.mustache:2:1: sqlfeed-check: 'max title many': expected max NAME N"
bad "max 0" "max title 0" "$T/b.mustache:2:1: .*expected max NAME N"
bad "enum with an empty value" "enum job_type a||b" "$T/b.mustache:2:1: .*an empty value"
bad "unique with two columns" "unique ref code" "$T/b.mustache:2:1: .*unique takes one column"
bad "a bad column name" "required ref, ci-ty!" "$T/b.mustache:2:1: .*'ci-ty!' is not a column name"
bad "a dotted name's later part must be a formatter" "required ref, ci.ty" "$T/b.mustache:2:1: .*'ty' is not a formatter a rule can read"
bad "no rule" " ; " "$T/b.mustache:2:1: sqlfeed-check: no rule"
printf '{{! sqlfeed-check: required ref }}' > "$T/part.mustache"
printf '<f>{{#rows}}{{>part}}{{ref}}{{/rows}}</f>\n' > "$T/pp.mustache"
run $R --query "$Q" -t "$T/pp.mustache" -o "$T/pp.xml"
expect "a check in a partial is refused" 3 "part.mustache:1:1: sqlfeed-check in a partial"

# ---- skip: counts, the reject log, stderr ---------------------------------------
cat > "$T/s.mustache" <<'EOF'
{{! sqlfeed-check: required city; enum job_type full-time; unique code }}
<f>{{#rows}}<j>{{ref}}</j>{{/rows}}<n>{{row_count}}</n></f>
EOF
run $R --query "$Q" -t "$T/s.mustache" -o "$T/s.xml" --on-invalid skip --reject-log "$T/rej.tsv" \
    --summary-json "$T/s.json" -q
ok "skip: exit 0, the four failing rows left out" sh -c "[ $rc = 0 ] && [ \$(grep -o '<j>' '$T/s.xml' | wc -l) = 16 ] && grep -q '<n>16</n>' '$T/s.xml' && ! grep -q 'JJ-00000003-' '$T/s.xml'"
ok "skip: stderr says how many, and where they are listed" \
    sh -c "[ \"\$(cat '$T/err')\" = 'sqlfeed: skipped 4 of 20 rows in $T/s.xml: see $T/rej.tsv' ]"
K3=$(sqlite3 "$DB" "SELECT reference FROM jobs WHERE id = 3" 2>/dev/null)
K11=$(sqlite3 "$DB" "SELECT reference FROM jobs WHERE id = 11" 2>/dev/null)
ok "the reject log: a header and one TSV line per row left out" sh -c "
    [ \$(wc -l < '$T/rej.tsv') = 5 ] &&
    [ \"\$(head -1 '$T/rej.tsv')\" = \"\$(printf 'row\tkey\toutput\tcolumn\treason')\" ] &&
    grep -qxF \"\$(printf '3\t$K3\t$T/s.xml\tcity\trequired, is NULL')\" '$T/rej.tsv' &&
    grep -qxF \"\$(printf '5\t%s\t$T/s.xml\tcity\trequired, is empty' \$(sqlite3 '$DB' 'SELECT reference FROM jobs WHERE id = 5'))\" '$T/rej.tsv' &&
    grep -qxF \"\$(printf '11\t$K11\t$T/s.xml\tcode\tunique, '\\''R10'\\'' came before')\" '$T/rej.tsv'"
ok "the reject log is published atomically (no temporary or lock left)" no_temp "$T"
cat > "$T/check_json.py" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = [int(x) for x in sys.argv[2].split(",")]
items = [int(x) for x in sys.argv[3].split(",")]
got = [o["rows_skipped"] for o in d["outputs"]]
assert got == want, (got, want)
assert [o["items"] for o in d["outputs"]] == items, d["outputs"]
assert d["rows"] == int(sys.argv[4]), d["rows"]
EOF
ok "--summary-json: rows_skipped per output, items the rows written" $PY "$T/check_json.py" "$T/s.json" 4 16 20
# A key with a tab and a newline is escaped in the log.
run $R --query "SELECT 'a' || char(9) || 'b' || char(10) || 'c\\d' AS ref, 'x' AS city, 'gig' AS job_type, 'R1' AS code" \
    -t "$T/s.mustache" -o "$T/s2.xml" --on-invalid skip --reject-log "$T/rej2.tsv" -q
ok "the reject log escapes tabs, newlines and backslashes" $PY -c '
import sys
line = open(sys.argv[1]).read().split("\n")[1]
want = "1\t" + "a\\tb\\nc\\\\d" + "\t" + sys.argv[2] + "\tjob_type\tenum full-time, is \x27gig\x27"
assert line == want, (line, want)' "$T/rej2.tsv" "$T/s2.xml"
run $R --query "$Q" -t "$T/s.mustache" -o "$T/s3.xml" --on-invalid skip
ok "skip without --reject-log: said on stderr, after the summary" sh -c "[ $rc = 0 ] &&
    [ \"\$(tail -1 '$T/err')\" = 'sqlfeed: skipped 4 of 20 rows in $T/s3.xml (no --reject-log)' ] &&
    head -1 '$T/err' | grep -q '^sqlfeed: 20 rows'"
run $R --query "SELECT * FROM ($Q) WHERE id NOT IN (3, 5, 7, 11)" -t "$T/s.mustache" -o "$T/s4.xml" \
    --on-invalid skip --reject-log "$T/rej4.tsv" -q
ok "no row left out: an empty log (its header), nothing said" \
    sh -c "[ $rc = 0 ] && [ \$(wc -l < '$T/rej4.tsv') = 1 ] && [ ! -s '$T/err' ]"
# unique keeps the values of rows written: a skipped row's value does not
# take it from a later one.
run $R --query "SELECT 'a' AS ref, NULL AS city, 'full-time' AS job_type, 'K' AS code UNION ALL
                SELECT 'b', 'x', 'full-time', 'K' UNION ALL SELECT 'c', 'y', 'full-time', 'K'" \
    -t "$T/s.mustache" -o "$T/s5.xml" --on-invalid skip --reject-log "$T/rej5.tsv" -q
ok "unique: a skipped row's value is not kept; the next one's is" \
    sh -c "[ $rc = 0 ] && grep -q '<j>b</j><n>1</n>' '$T/s5.xml' && [ \"\$(cut -f1,4 '$T/rej5.tsv' | tail -2 | tr '\t\n' ':;')\" = '1:city;3:code;' ]"

# ---- two outputs from one scan: a row fails only one -------------------------------
printf '{{! sqlfeed-check: required city }}\n<a>{{#rows}}<j>{{ref}}</j>{{/rows}}<n>{{row_count}}</n></a>\n' > "$T/a.mustache"
printf '<b>{{#rows}}<j>{{ref}}</j>{{/rows}}<n>{{row_count}}</n></b>\n' > "$T/b2.mustache"
run $R --query "$Q" -t "$T/a.mustache" -o "$T/a.xml" --output "$T/b2.mustache=$T/b.xml" \
    --on-invalid skip --reject-log "$T/rej6.tsv" --summary-json "$T/two.json" -q
ok "two outputs: the failing rows (3: NULL, 5: blank) left out of one only" \
    sh -c "[ $rc = 0 ] && grep -q '<n>18</n>' '$T/a.xml' && grep -q '<n>20</n>' '$T/b.xml' && grep -q 'JJ-00000003-' '$T/b.xml' && ! grep -q 'JJ-00000003-' '$T/a.xml'"
ok "two outputs: rows_skipped 2 and 0" $PY "$T/check_json.py" "$T/two.json" 2,0 18,20 20
ok "two outputs: the log names the output" sh -c "[ \"\$(cut -f1,3,4 '$T/rej6.tsv' | tail -1)\" = \"\$(printf '5\t$T/a.xml\tcity')\" ]"
run $R --query "$Q" -t "$T/a.mustache" -o "$T/a.xml" --output "$T/b2.mustache=$T/b.xml"
ok "two outputs under fail: exit 9, neither published" sh -c "[ $rc = 9 ] && grep -q '<n>18</n>' '$T/a.xml' && grep -q 'row 3: column city: required, is NULL' '$T/err'"

mkdir -p "$T/spl"
run $R --query "$Q" -t "$T/a.mustache" --split-rows 5 --parts "$T/spl/p-%d.xml" --on-invalid skip \
    --reject-log "$T/spl/r.tsv" -q
ok "a split output: the log names the part a row was left out of" \
    sh -c "[ $rc = 0 ] && [ \"\$(cut -f1,3 '$T/spl/r.tsv' | tail -2 | tr '\t\n' ':;')\" = '3:$T/spl/p-1.xml;5:$T/spl/p-1.xml;' ] &&
           [ \$(cat '$T'/spl/p-*.xml | grep -o '<j>' | wc -l) = 18 ]"
run $R --query "$Q" -t "$T/a.mustache" --split-rows 2 --parts "$T/spl/q-%d.xml" --on-invalid skip \
    --reject-log "$T/spl/r2.tsv" -q
# rows 1, 2 in part 1; row 3 left out while part 1 is current; 4 starts part 2
ok "a split output: the part being written when the row was left out" \
    sh -c "[ $rc = 0 ] && [ \"\$(cut -f1,3 '$T/spl/r2.tsv' | tail -2 | tr '\t\n' ':;')\" = '3:$T/spl/q-1.xml;5:$T/spl/q-2.xml;' ]"

# ---- the rails count the rows written ---------------------------------------------
run $R --query "$Q" -t "$T/s.mustache" -o "$T/m.xml" --on-invalid skip --min-rows 17
expect "--min-rows counts the rows written (16 of 20)" 7 "16 rows, fewer than the minimum of 17"
ok "... and the skipped rows are said" grep -q "skipped 4 of 20 rows in $T/m.xml (nothing published)" "$T/err"

# ---- usage ---------------------------------------------------------------------
usage "--on-invalid bogus" "--on-invalid takes fail or skip, got 'drop'" --query "$Q" -t "$T/s.mustache" -o "$T/u.xml" --on-invalid drop
usage "--reject-log without skip" "--reject-log lists the rows --on-invalid skip leaves out" --query "$Q" -t "$T/s.mustache" -o "$T/u.xml" --reject-log "$T/r.tsv"
usage "--reject-log -" "--reject-log needs a file name" --query "$Q" -t "$T/s.mustache" -o "$T/u.xml" --on-invalid skip --reject-log -
usage "--reject-log is -o" "--reject-log .* -o|-o .* --reject-log" --query "$Q" -t "$T/s.mustache" -o "$T/u.xml" --on-invalid skip --reject-log "$T/u.xml"
usage "--reject-log is the template" "--reject-log" --query "$Q" -t "$T/s.mustache" -o "$T/u.xml" --on-invalid skip --reject-log "$T/s.mustache"

# ---- formatters under --on-invalid (once the formatters are in) -------------------
printf '<f>{{#rows}}<j>{{posted_at.date}}</j>{{/rows}}</f>\n' > "$T/fmt.mustache"
run $R --query "SELECT '2026-01-31 09:05:00' AS posted_at" -t "$T/fmt.mustache" -o "$T/fmt.xml" -q
if [ "$rc" != 0 ]; then
    skip "formatters under --on-invalid" "this build has no formatters ({{posted_at.date}}: exit $rc)"
else
    FQ="SELECT 'a' AS ref, '2026-01-31' AS posted_at UNION ALL SELECT 'b', 'yesterday' UNION ALL SELECT 'c', '2026-02-01'"
    printf '<f>{{#rows}}<j>{{ref}} {{posted_at.date}}</j>{{/rows}}</f>\n' > "$T/fmt.mustache"
    previous "$T/fmt.xml"
    run $R --query "$FQ" -t "$T/fmt.mustache" -o "$T/fmt.xml"
    ok "a formatter failing under fail: exit 9, 'row 2: column posted_at:'" \
        sh -c "[ $rc = 9 ] && grep -q '^sqlfeed: row 2: column posted_at: ' '$T/err' && grep -q 'fmt.mustache:1:' '$T/err'"
    ok "... the previous feed kept" is_previous "$T/fmt.xml"
    run $R --query "$FQ" -t "$T/fmt.mustache" -o "$T/fmt.xml" --on-invalid skip --reject-log "$T/rejf.tsv" -q
    ok "a formatter failing under skip: the row written not at all" \
        sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/fmt.xml')\" = '<f><j>a 2026-01-31</j><j>c 2026-02-01</j></f>' ]"
    ok "... and logged with its column" sh -c "[ \"\$(cut -f1,2,4 '$T/rejf.tsv' | tail -1)\" = \"\$(printf '2\tb\tposted_at')\" ]"
fi

# ---- format defaults: only for a file sqlfeed creates (review2 item 9) -------------
# stdout, a descriptor, a device or a FIFO gets one plain document: no split,
# no index, no gzip, whatever the format's sqlfeed-defaults say.
NURL=$(sqlite3 "$DB" "SELECT count(*) FROM ($("$SF" templates --show sitemap.sql))")
# plain_doc FILE: one sitemap urlset, uncompressed, with every row's <url>
plain_doc() {
    "$PY" - "$1" "$NURL" <<'PY'
import sys, xml.dom.minidom as m
data = open(sys.argv[1], 'rb').read()
assert data.startswith(b'<?xml'), data[:20]
d = m.parseString(data)
assert d.documentElement.tagName == 'urlset'
assert len(d.getElementsByTagName('url')) == int(sys.argv[2]), len(d.getElementsByTagName('url'))
PY
}
"$SF" render --db "$DB" -t sitemap -o /dev/stdout -q >"$T/d9.out" 2>"$T/err"; rc=$?
ok "sitemap -o /dev/stdout (a regular file): exit 0, nothing on stderr" sh -c "[ $rc = 0 ] && [ ! -s '$T/err' ]"
ok "... a urlset of every row, uncompressed" plain_doc "$T/d9.out"
"$SF" render --db "$DB" -t sitemap -o /dev/stdout -q 2>"$T/err" | cat >"$T/d9.pipe"; rc=${PIPESTATUS[0]}
ok "sitemap -o /dev/stdout (a pipe): exit 0, one plain document" sh -c "[ $rc = 0 ] && [ ! -s '$T/err' ]"
ok "... a urlset of every row" plain_doc "$T/d9.pipe"
"$SF" render --db "$DB" -t sitemap -o /proc/self/fd/1 -q >"$T/d9.proc" 2>"$T/err"; rc=$?
ok "sitemap -o /proc/self/fd/1: exit 0, one plain document" sh -c "[ $rc = 0 ] && [ ! -s '$T/err' ]"
ok "... a urlset of every row" plain_doc "$T/d9.proc"
run "$SF" render --db "$DB" -t sitemap -o /dev/null
ok "sitemap -o /dev/null: exit 0, its rows written there" \
    sh -c "[ $rc = 0 ] && grep -q '^sqlfeed: $NURL rows, .* -> /dev/null\$' '$T/err'"
mkfifo "$T/d9.fifo"
cat "$T/d9.fifo" >"$T/d9.fifo.out" &
reader=$!
run "$SF" render --db "$DB" -t sitemap -o "$T/d9.fifo" -q
# a render that never opened the FIFO leaves the reader waiting: end it
kill -0 "$reader" 2>/dev/null && timeout 5 sh -c ": > '$T/d9.fifo'"
wait "$reader"
ok "sitemap -o FIFO: exit 0, one plain document" sh -c "[ $rc = 0 ] && [ ! -s '$T/err' ]"
ok "... a urlset of every row" plain_doc "$T/d9.fifo.out"
"$SF" render --db "$DB" -t sitemap -o >(cat >"$T/d9.ps") -q 2>"$T/err"; rc=$?
sleep 0.2
ok "sitemap -o >(...) (a process substitution): exit 0, one plain document" sh -c "[ $rc = 0 ] && [ ! -s '$T/err' ]"
ok "... a urlset of every row" plain_doc "$T/d9.ps"
ok "... and no part, index or temporary file made beside any of them" \
    sh -c "! ls -A '$T' | grep -qE '^\.?d9.*(-[0-9a-f]{8}-|\\.gz\$|sqlfeed)'"
run $R -t sitemap -o "$T/d9/sm.xml"
expect "a regular file still takes the defaults: give --base-url" 2 "sitemap writes its parts with an index of their absolute URLs \(index=sitemap-index, the format's default\): give --base-url URL"
ok "... and the message names --no-defaults" grep -q -- "--no-defaults" "$T/err"

# ---- --base-url: an absolute URL; an index reading url needs it (item 10) -----------
for u in shop.example/maps 'https:/shop.example' 'https://' 'https://u@/x' '1http://a.example' 'mailto:a@b.example'; do
    usage "--base-url '$u': not absolute" "^sqlfeed: -o: --base-url '$u' is not an absolute URL: give a scheme and a host" \
        -t sitemap -o "$T/b10.xml" --base-url "$u"
done
usage "base-url= of an --output: not absolute" "^sqlfeed: --output #2: base-url= 'shop.example' is not an absolute URL" \
    -t sitemap -o "$T/b10.xml" --base-url https://a.example/ --output "sitemap=$T/b10b.xml,base-url=shop.example"
run $R -t sitemap -o "$T/b10.xml" --base-url 'svn+ssh.x-1://user@Shop.example:8080/maps' -q
ok "--base-url with scheme characters + . -, user, port: accepted" \
    sh -c "[ $rc = 0 ] && grep -q '<loc>svn+ssh.x-1://user@Shop.example:8080/maps/b10-[0-9a-f]\{8\}-0001.xml.gz</loc>' '$T/b10.xml'"
run $R -t sitemap -o "$T/b10i.xml" --split-rows 5 --index sitemap-index
usage_line="^sqlfeed: -o: the index template sitemap-index reads url \\(each part's absolute URL\\): give --base-url URL, where the parts will be served"
expect "an explicit --index sitemap-index without --base-url: exit 2" 2 "$usage_line"
ok "... before any file is written" sh -c "! ls -A '$T' | grep -q 'b10i'"
printf '<parts>{{#rows}}<p n="{{part}}">{{name}}</p>{{/rows}}</parts>\n' > "$T/names.mustache"
run $R -t sitemap -o "$T/b10n.xml" --split-rows 5 --index "$T/names.mustache" -q
ok "an index template that does not read url: no --base-url needed" \
    sh -c "[ $rc = 0 ] && grep -q '<p n=\"1\">b10n-[0-9a-f]\{8\}-0001.xml.gz</p>' '$T/b10n.xml'"
run $R -t sitemap -o "$T/b10.xml" --no-defaults --output "sitemap=$T/b10o.xml,split-rows=5,index=sitemap-index"
expect "an --output with index=sitemap-index and no base-url=: exit 2" 2 "^sqlfeed: --output #2: the index template sitemap-index reads url .*: give base-url=URL"

# ---- the user's --parts, --no-defaults, the help (item 11) --------------------------
mkdir -p "$T/p11"
usage "-o sitemap.xml --parts 'pp-%d.xml': the default index wants a %r" \
    "^sqlfeed: -o: sitemap's parts get an index \\(index=sitemap-index, the format's default\\), written to $T/p11/sitemap.xml, and their pattern '$T/p11/pp-%d.xml' has no %r .*; or give --no-defaults" \
    -t sitemap -o "$T/p11/sitemap.xml" --parts "$T/p11/pp-%d.xml" --base-url https://a.example/m
ok "... nothing written" sh -c "[ -z \"\$(ls '$T/p11')\" ]"
run $R -t sitemap -o "$T/p11/sitemap.xml" --parts "$T/p11/pp-%r-%d.xml" --base-url https://a.example/m --split-rows 10 -q
ok "-o sitemap.xml --parts 'pp-%r-%d.xml': the default index over the user's parts" \
    sh -c "[ $rc = 0 ] && [ \$(grep -c '<loc>https://a.example/m/pp-[0-9a-f]\{8\}-[0-9]*.xml</loc>' '$T/p11/sitemap.xml') = \$(( ($NURL + 9) / 10 )) ]"
ok "... the parts plain, as their names say (compress= not taken)" \
    sh -c "for f in '$T'/p11/pp-*.xml; do head -c 5 \"\$f\" | grep -q '<?xml' || exit 1; done"
mkdir -p "$T/n11"
run $R -t sitemap -o "$T/n11/sitemap.xml" --no-defaults -q
ok "--no-defaults: one plain document at -o, exit 0" sh -c "[ $rc = 0 ] && [ \"\$(ls '$T/n11')\" = sitemap.xml ]"
ok "... of every row" plain_doc "$T/n11/sitemap.xml"
run $R -t sitemap -o "$T/n11/s.xml" --no-defaults --split-rows 10 -q
ok "--no-defaults --split-rows 10: plain parts named from -o, no index" \
    sh -c "[ $rc = 0 ] && [ -f '$T/n11/s-0001.xml' ] && [ ! -e '$T/n11/s.xml' ] && head -c 5 '$T/n11/s-0001.xml' | grep -q '<?xml'"
run "$SF" render --help
ok "--help: sqlfeed-defaults, sqlfeed templates lists them, --no-defaults" \
    sh -c "grep -q 'sqlfeed-defaults' '$T/out' && grep -q \"sqlfeed templates\\\` lists each built-in's\" '$T/out' && grep -q -- '--no-defaults  *no output takes its format.s defaults' '$T/out'"
ok "--help: --compress says a format's defaults may choose" grep -q "stays plain, unless the format's defaults choose" "$T/out"
ok "man page and README: --no-defaults" sh -c "grep -qF 'no\\-defaults' '$MAN' && grep -qF -- '--no-defaults' '$(dirname "$0")/../README.md'"

# ---- a template file's query per backend (item 13) -----------------------------------
mkdir -p "$T/q13"
printf '<f>{{#rows}}<r>{{v}}</r>{{/rows}}</f>\n' > "$T/q13/t.mustache"
echo "SELECT 'sqlite' AS v" > "$T/q13/t.sql"
echo "SELECT 'postgresql' AS v" > "$T/q13/t.pg.sql"
echo "SELECT 'mysql' AS v" > "$T/q13/t.my.sql"
run $R -t "$T/q13/t.mustache" -o "$T/q13/out.xml" -q
ok "template file on SQLite: t.sql, not t.pg.sql or t.my.sql" sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/q13/out.xml')\" = '<f><r>sqlite</r></f>' ]"
DEADPG=postgresql://sqlfeed@127.0.0.1:1/none
DEADMY=mysql://sqlfeed@127.0.0.1:1/none
run "$SF" render --db "$DEADPG" -t "$T/q13/t.mustache" -o "$T/q13/t.pg.sql"
expect "a postgresql:// --db: t.pg.sql is the query, an input (refused as -o before connecting)" 2 \
    "^sqlfeed: -o $T/q13/t.pg.sql is the same file as the query of --template $T/q13/t.pg.sql"
run "$SF" render --db "host=127.0.0.1 port=1" -t "$T/q13/t.mustache" -o "$T/q13/t.pg.sql"
expect "... a conninfo --db too" 2 "the query of --template $T/q13/t.pg.sql"
run "$SF" render --db "$DEADPG" -t "$T/q13/t.mustache" -o "$T/q13/t.my.sql"
ok "... and t.my.sql is not (the run goes on to connect, and fails: exit 4)" \
    sh -c "[ $rc = 4 ] && grep -q 'cannot connect to' '$T/err' && [ \"\$(cat '$T/q13/t.my.sql')\" = \"SELECT 'mysql' AS v\" ]"
run "$SF" render --db "$DEADMY" -t "$T/q13/t.mustache" -o "$T/q13/t.my.sql"
expect "a mysql:// --db: t.my.sql is the query, an input" 2 "the query of --template $T/q13/t.my.sql"
run "$SF" render --db "$DEADMY" -t "$T/q13/t.mustache" -o "$T/q13/t.sql"
ok "... and t.sql is not" sh -c "[ $rc = 4 ] && [ \"\$(cat '$T/q13/t.sql')\" = \"SELECT 'sqlite' AS v\" ]"
mv "$T/q13/t.pg.sql" "$T/q13/t.pg.sql.away"
run "$SF" render --db "$DEADPG" -t "$T/q13/t.mustache" -o "$T/q13/t.sql"
expect "no t.pg.sql: a postgresql:// --db takes t.sql (an input)" 2 "the query of --template $T/q13/t.sql"
mv "$T/q13/t.pg.sql.away" "$T/q13/t.pg.sql"
if strace -f -qq -e trace=openat -o "$T/q13.st" true 2>/dev/null; then
    for b in "pg:$DEADPG" "my:$DEADMY"; do
        s=${b%%:*} url=${b#*:}
        strace -f -qq -e trace=openat -o "$T/q13.st" "$SF" render --db "$url" -t "$T/q13/t.mustache" -o "$T/q13/o.xml" -q 2>/dev/null
        read_sql=$(grep -oE "q13/t(\.pg|\.my)?\.sql\"" "$T/q13.st" | tr -d '"' | sort -u | tr '\n' ' ')
        ok "strace: a ${url%%:*} --db reads t.$s.sql only (read: $read_sql)" [ "$read_sql" = "q13/t.$s.sql " ]
    done
else
    skip "strace: the query file a server --db reads" "strace cannot trace here"
fi
if [ -n "${SQLFEED_PG_URL:-}" ] && [ -n "${SQLFEED_MY_URL:-}" ]; then
    for b in "postgresql:$SQLFEED_PG_URL" "mysql:$SQLFEED_MY_URL"; do
        run "$SF" render --db "${b#*:}" -t "$T/q13/t.mustache" -o "$T/q13/srv.xml" -q
        ok "a ${b%%:*} server: the template file's own query for it" \
            sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/q13/srv.xml')\" = '<f><r>${b%%:*}</r></f>' ]"
    done
else
    skip "a template file's query on live servers" "SQLFEED_PG_URL and SQLFEED_MY_URL not set (tests/servers.sh start)"
fi
exit 0
