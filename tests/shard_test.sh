#!/bin/bash
# shard_test.sh BUILD: sharded renders (docs/shards.md). `render --shard K/N`
# parts joined by `publish` equal the one-process render byte for byte
# (plain, gzip, zstd; 1 to 7 shards; NULL keys; more shards than rows; no
# rows), on SQLite, PostgreSQL and MariaDB; publish refuses a missing,
# stray, damaged or disagreeing shard (exit 7, the previous feed kept, no
# temporary file left), is idempotent, and a shared PostgreSQL snapshot
# keeps the shards consistent while the data changes.
# Starts throwaway servers with tests/servers.sh unless SQLFEED_PG_URL (and
# SQLFEED_MY_URL) are set; without PostgreSQL/MariaDB their part is skipped.
set -u
B=$(cd "${1:?usage: shard_test.sh BUILD}" && pwd)
SF=$B/sqlfeed
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$HERE/ref
T=$(mktemp -d /tmp/sqlfeed-shard.XXXXXX)
STARTED=""
cleanup() {
    exec 7>&- 2>/dev/null
    kill $(jobs -p) 2>/dev/null
    wait 2>/dev/null
    [ -z "$STARTED" ] || "$HERE/servers.sh" stop "$STARTED" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
. "$HERE/lib.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
export SOURCE_DATE_EPOCH=1700000000
cd "$T" || exit 1

if ! "$SF" demo-db --rows 1200 -o "$T/jobs.db" >"$T/err" 2>&1; then
    fail "shard: demo-db" "$(cat "$T/err")"; exit 0
fi
P=(--param channel_title=Jobs --param channel_link=https://jobs.example/
   --param channel_description=All --param feed_url=https://jobs.example/feed.xml
   --param site=justjobs)
Q="SELECT j.id, j.reference, j.title, j.url, j.category, j.description, j.posted_at
   FROM jobs j WHERE j.site = :site ORDER BY j.id;"
# cat_any FILE: the document, decompressed by its suffix
cat_any() { case $1 in *.gz) zcat "$1" ;; *.zst) zstdcat -q "$1" ;; *) cat "$1" ;; esac; }
# sharded DB FEED N [KEY [QUERY]]: renders shards 1..N of FEED then publishes; rc
sharded() {
    local db=$1 feed=$2 n=$3 key=${4:-id} q=${5:-$Q} k
    for k in $(seq "$n"); do
        "$SF" render --db "$db" -t rss "${P[@]}" --query "$q" -o "$feed" --shard "$k/$n" \
            --shard-key "$key" -q 2>"$T/err" || { rc=$?; return; }
    done
    "$SF" publish -t rss "${P[@]}" -o "$feed" --shards "$n" -q 2>"$T/err"
    rc=$?
}
same_doc() { cmp -s <(cat_any "$1") <(cat_any "$2"); }

# ---- the joined feed is the one-process render ------------------------------
for ext in xml xml.gz xml.zst; do
    "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o "one.$ext" -q
    for n in 1 2 3 5; do
        rm -rf "f$n.$ext" "f$n.$ext.shards"
        sharded jobs.db "f$n.$ext" $n
        if [ "$rc" = 0 ] && same_doc "f$n.$ext" "one.$ext"; then
            pass "shard: $n shards of .$ext joined = the one-process render"
        else fail "shard: $n shards of .$ext" "exit $rc, $(head -c 300 "$T/err")"; fi
    done
done
ok "shard: the joined .xml.gz passes gzip -t (one member per piece)" gzip -t f5.xml.gz
ok "shard: the joined .xml.zst passes zstd -t (one frame per piece)" zstd -qt f5.xml.zst
members=$(python3 -c 'import sys,zlib
d=open(sys.argv[1],"rb").read(); n=0
while d:
    o=zlib.decompressobj(31); o.decompress(d); d=o.unused_data; n+=1
print(n)' f5.xml.gz 2>/dev/null)
ok "shard: 5 shards of .xml.gz are 7 gzip members (head, 5 parts, tail)" test "$members" = 7
ok "shard: the XML is well-formed" xmllint --noout f3.xml
rows=$(grep -c '<item>' f3.xml)
sum=0; for k in 1 2 3; do sum=$((sum + $(sed -n 's/^"rows": \([0-9]*\),$/\1/p' f3.xml.shards/$k-of-3.json))); done
ok "shard: the manifests' rows add up to the feed's items ($rows)" test "$sum" = "$rows"
ok "shard: a part holds rows only (no XML declaration, no channel)" \
    bash -c "! grep -q '<?xml\|<channel>' f3.xml.shards/2-of-3.part"

# The split rule: the shard's rows are the keys in its range, and each row is
# in exactly one shard.
b=$(sed -n 's/^"bounds": "\(.*\)",$/\1/p' f3.xml.shards/1-of-3.json)
b1=${b%%,*}; b2=${b#*,}
first2=$(grep -o '<guid[^>]*>[^<]*' f3.xml.shards/2-of-3.part | head -1 | sed 's/.*>//')
id2=$(sqlite3 jobs.db "SELECT id FROM jobs WHERE reference = '$first2'")
ok "shard: shard 2 starts at its lower boundary's row ($b1 <= $id2 < $b2)" \
    test "$id2" -ge "$b1" -a "$id2" -lt "$b2"

# NULL keys go to shard 1, first; more shards than rows; no rows at all.
QN="SELECT CASE WHEN j.id % 7 = 0 THEN NULL ELSE j.id END AS k, j.reference, j.title, j.url,
    j.category, j.description, j.posted_at FROM jobs j WHERE j.site = :site ORDER BY k, j.id"
"$SF" render --db jobs.db -t rss "${P[@]}" --query "$QN" -o onen.xml -q
sharded jobs.db fn.xml 4 k "$QN"
nulls=$(sed -n 's/^"null_keys": \([0-9]*\),$/\1/p' fn.xml.shards/1-of-4.json)
ok "shard: the manifest counts the NULL keys ($nulls)" test "${nulls:-0}" -gt 0
guids() { grep -o '<guid[^>]*>[^<]*' "$1" | sed 's/.*>//'; }
# same_nulls_first A B: the first $nulls items are the same set (the order
# among equal keys is the database's), the rest the same in order.
same_nulls_first() {
    [ -n "$nulls" ] && cmp -s <(guids "$1" | head -n "$nulls" | sort) <(guids "$2" | head -n "$nulls" | sort) &&
        cmp -s <(guids "$1" | tail -n +$((nulls + 1))) <(guids "$2" | tail -n +$((nulls + 1)))
}
if [ "$rc" = 0 ] && same_nulls_first fn.xml onen.xml; then pass "shard: NULL keys: shard 1 holds them, first, as SQLite orders them"
else fail "shard: NULL keys" "exit $rc, $(head -c 300 "$T/err")"; fi
Q5="SELECT j.id, j.reference, j.title, j.url, j.category, j.description, j.posted_at
    FROM jobs j WHERE j.site = :site AND j.id <= 12 ORDER BY j.id"
"$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q5" -o one5.xml -q
sharded jobs.db f7.xml 7 id "$Q5"
few=$(grep -c '<item>' one5.xml)
if [ "$rc" = 0 ] && same_doc f7.xml one5.xml; then pass "shard: 7 shards over $few rows (some empty) joined = the one-process render"
else fail "shard: more shards than rows" "exit $rc, $(head -c 300 "$T/err")"; fi
Q0="SELECT j.id, j.reference, j.title, j.url, j.category, j.description, j.posted_at
    FROM jobs j WHERE j.site = :site AND j.id < 0 ORDER BY j.id"
"$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q0" -o one0.xml -q
sharded jobs.db f0.xml 3 id "$Q0"
if [ "$rc" = 0 ] && same_doc f0.xml one0.xml; then pass "shard: no rows: the joined feed is the empty document a render writes"
else fail "shard: no rows" "exit $rc, $(head -c 300 "$T/err")"; fi

# Idempotent: the same bytes again, also without SOURCE_DATE_EPOCH (the
# feed's time is the first shard's).
cp f3.xml f3.before
"$SF" publish -t rss "${P[@]}" -o f3.xml --shards 3 -q
ok "shard: publish twice gives the same file" cmp -s f3.xml f3.before
sed -i 's/^"time": [0-9]*,$/"time": 1800000000,/' f3.xml.shards/1-of-3.json
env -u SOURCE_DATE_EPOCH "$SF" publish -t rss "${P[@]}" -o f3.xml --shards 3 -q
ok "shard: without SOURCE_DATE_EPOCH the feed's time is the first shard's" \
    grep -q 'Fri, 15 Jan 2027 08:00:00 +0000' f3.xml
sed -i 's/^"time": [0-9]*,$/"time": 1700000000,/' f3.xml.shards/1-of-3.json

# --lastmod: the shard's largest value, in its manifest.
"$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o lm.xml --shard 2/2 --shard-key id \
    --lastmod posted_at -q
want=$(sqlite3 jobs.db "SELECT max(posted_at) FROM jobs WHERE site = 'justjobs' AND id >= $(sed -n 's/^"bounds": "\(.*\)",$/\1/p' lm.xml.shards/2-of-2.json)")
ok "shard: --lastmod records the shard's largest value ($want)" \
    grep -q "^\"lastmod\": \"$want\"$" lm.xml.shards/2-of-2.json

# A shard whose re-render fails is missing, never joined from the earlier run
# (its manifest goes first); --run ties shards and publish to one build.
mkdir rr
cp jobs.db rr.db
for k in 1 2 3; do "$SF" render --db rr.db -t rss "${P[@]}" --query "$Q" -o rr/f.xml --shard $k/3 --shard-key id -q; done
"$SF" publish -t rss "${P[@]}" -o rr/f.xml --shards 3 -q
cp rr/f.xml rr.before
sqlite3 rr.db "UPDATE jobs SET title = title || ' (new)'"
for k in 1 2; do "$SF" render --db rr.db -t rss "${P[@]}" --query "$Q" -o rr/f.xml --shard $k/3 --shard-key id -q; done
run "$SF" render --db "$T/nonexistent.db" -t rss "${P[@]}" --query "$Q" -o rr/f.xml --shard 3/3 --shard-key id
run "$SF" publish -t rss "${P[@]}" -o rr/f.xml --shards 3
if [ "$rc" = 7 ] && grep -q "shard 3 of 3 is missing" "$T/err" && cmp -s rr/f.xml rr.before; then
    pass "shard: a shard whose re-render failed is missing (exit 7), not joined from the earlier run"
else fail "shard: a failed re-render" "exit $rc; $(head -c 300 "$T/err")"; fi
for k in 1 2 3; do "$SF" render --db rr.db -t rss "${P[@]}" --query "$Q" -o rr/f.xml --shard $k/3 --shard-key id --run build-7 -q; done
run "$SF" publish -t rss "${P[@]}" -o rr/f.xml --shards 3 --run build-8
expect "shard: publish --run refuses another build's shards (exit 7)" 7 "of run 'build-7', not 'build-8'"
"$SF" render --db rr.db -t rss "${P[@]}" --query "$Q" -o rr/f.xml --shard 2/3 --shard-key id --run build-8 -q
run "$SF" publish -t rss "${P[@]}" -o rr/f.xml --shards 3
expect "shard: shards of different runs are refused (exit 7)" 7 "disagree on the run"

# publish's rails: --min-rows, --max-drop against the published feed's record.
mkdir rl
for k in 1 2; do "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o rl/f.xml --shard $k/2 --shard-key id -q; done
run "$SF" publish -t rss "${P[@]}" -o rl/f.xml --shards 2 --min-rows 100000
if [ "$rc" = 7 ] && grep -q "fewer than the minimum of 100000" "$T/err" && [ ! -e rl/f.xml ]; then
    pass "shard: publish --min-rows refuses (exit 7), nothing published"
else fail "shard: publish --min-rows" "exit $rc; $(head -c 300 "$T/err")"; fi
"$SF" publish -t rss "${P[@]}" -o rl/f.xml --shards 2 -q
cp rl/f.xml rl.before
for k in 1 2; do "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q5" -o rl/f.xml --shard $k/2 --shard-key id -q; done
run "$SF" publish -t rss "${P[@]}" -o rl/f.xml --shards 2 --max-drop 10
if [ "$rc" = 7 ] && grep -q "against [0-9]* in the previous run" "$T/err" && cmp -s rl/f.xml rl.before; then
    pass "shard: publish --max-drop refuses a feed that fell by more (exit 7), the previous feed stays"
else fail "shard: publish --max-drop" "exit $rc; $(head -c 300 "$T/err")"; fi

# ---- publish refuses, and the previous feed stays -------------------------
refused() { # refused NAME REGEX: publish f3.xml; exit 7, message, feed kept
    cp f3.before f3.xml
    run "$SF" publish -t rss "${P[@]}" -o f3.xml --shards 3
    if [ "$rc" = 7 ] && grep -qE -- "$2" "$T/err" && cmp -s f3.xml f3.before && no_temp .; then
        pass "shard: publish refuses $1 (exit 7), the previous feed stays"
    else fail "shard: publish refuses $1" "exit $rc; $(head -c 400 "$T/err")"; fi
}
mv f3.xml.shards/2-of-3.json m2
refused "a missing shard" "shard 2 of 3 is missing"
mv m2 f3.xml.shards/2-of-3.json
mv f3.xml.shards/3-of-3.part p3
refused "a missing part" "shard 3 of 3: its part .*3-of-3.part"
mv p3 f3.xml.shards/3-of-3.part
cp f3.xml.shards/1-of-3.json f3.xml.shards/1-of-2.json
refused "a manifest of another split in the directory" "holds 1-of-2.json, a shard of another split"
rm f3.xml.shards/1-of-2.json
cp f3.xml.shards/2-of-3.part p2
printf 'X' | dd of=f3.xml.shards/2-of-3.part bs=1 seek=100 conv=notrunc 2>/dev/null
refused "a damaged part (CRC-32)" "shard 2 of 3: .* is not the part its manifest describes"
head -c 1000 p2 > f3.xml.shards/2-of-3.part
refused "a truncated part (size)" "shard 2 of 3: .* has 1000 bytes, its manifest says"
mv p2 f3.xml.shards/2-of-3.part
cp f3.xml.shards/3-of-3.json m3
sed -i 's/^"rows": \([0-9]*\),$/"rows": 1,/' f3.xml.shards/3-of-3.json
refused "rows that do not add up to the total" "hold [0-9]+ rows, the query had"
cp m3 f3.xml.shards/3-of-3.json
cp f3.xml.shards/2-of-3.json m2
sed -i 's/^"shard": 2,$/"shard": 3,/' f3.xml.shards/2-of-3.json
refused "a manifest copied under another shard's name" "says it is shard 3 of 3"
cp m2 f3.xml.shards/2-of-3.json
run "$SF" publish -t rss "${P[@]/justjobs/other}" -o f3.xml --shards 3
expect "shard: publish refuses other --param values than the shards' (exit 7)" 7 "other parameters"
run "$SF" publish -t simplyhired "${P[@]}" -o f3.xml --shards 3
expect "shard: publish refuses another template than the shards' (exit 7)" 7 "another template"
# The data changes between shards, no snapshot: the boundaries disagree.
cp jobs.db jobs2.db
"$SF" render --db jobs2.db -t rss "${P[@]}" --query "$Q" -o ch.xml --shard 1/2 --shard-key id -q
sqlite3 jobs2.db "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE site = 'justjobs' ORDER BY id LIMIT 40)"
"$SF" render --db jobs2.db -t rss "${P[@]}" --query "$Q" -o ch.xml --shard 2/2 --shard-key id -q
run "$SF" publish -t rss "${P[@]}" -o ch.xml --shards 2
expect "shard: shards that read different data are refused (exit 7)" 7 "disagree on the (boundaries|total rows)"
ok "shard: ... and nothing was published" test ! -e ch.xml

# Review's cases: a 'unique' rule, row_count under skip, a text key of
# digits, a name that says another codec, the split shards' template.
sqlite3 u.db "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'a'),(4,NULL),(5,'c'),(6,'b');"
printf '{{! sqlfeed-check: required v }}<r>{{#rows}}<v id="{{id}}">{{v}}</v>{{/rows}}<n>{{row_count}}</n></r>\n' > req.mustache
printf '{{! sqlfeed-check: unique v }}<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > uniq.mustache
for k in 1 2 3; do "$SF" render --db u.db -t uniq.mustache --query "SELECT id, v FROM t WHERE v IS NOT NULL ORDER BY id" \
    -o uq.xml --shard $k/3 --shard-key id -q || echo "FAIL: shard: unique: shard $k: exit $?"; done
run "$SF" publish -t uniq.mustache -o uq.xml --shards 3
expect "shard: a 'unique' value in two shards is refused by publish (exit 9), as one process refuses it" 9 "unique v: a value is in shards 1 and 2 of 3"
ok "shard: ... and nothing was published" test ! -e uq.xml
for k in 1 2 3; do "$SF" render --db u.db -t uniq.mustache --query "SELECT id, v FROM t WHERE id IN (1, 2, 5) ORDER BY id" \
    -o uq2.xml --shard $k/3 --shard-key id -q; done
run "$SF" publish -t uniq.mustache -o uq2.xml --shards 3
expect "shard: distinct values across shards publish (unique checked across them)" 0 "rows from 3 shards"
# No value kept at all (the one row's is NULL; shard 2 has no row): nothing to compare.
for k in 1 2; do "$SF" render --db u.db -t uniq.mustache --query "SELECT id, v FROM t WHERE id = 4" \
    -o uq4.xml --shard $k/2 --shard-key id -q || echo "FAIL: shard: unique, no values: shard $k: exit $?"; done
run "$SF" publish -t uniq.mustache -o uq4.xml --shards 2
expect "shard: unique rules with no value in any shard publish" 0 "1 rows from 2 shards"
run "$SF" render --db u.db -t uniq.mustache --query "SELECT id, v FROM t ORDER BY id" -o uq3.xml --shard 1/2 --shard-key id --on-invalid skip
expect "shard: a 'unique' rule with --on-invalid skip cannot be sharded (exit 3)" 3 "'unique' rule .* with on_invalid skip cannot be"
"$SF" render --db u.db -t req.mustache --query "SELECT id, v FROM t ORDER BY id" -o rq1.xml --on-invalid skip -q 2>/dev/null
for k in 1 2 3; do "$SF" render --db u.db -t req.mustache --query "SELECT id, v FROM t ORDER BY id" -o rq.xml \
    --shard $k/3 --shard-key id --on-invalid skip -q 2>/dev/null; done
"$SF" publish -t req.mustache -o rq.xml --shards 3 -q
ok "shard: row_count is the rows written (--on-invalid skip), as one process writes it" \
    bash -c "cmp -s rq.xml rq1.xml && grep -q '<n>5</n>' rq.xml"
sqlite3 tk.db "CREATE TABLE t(k TEXT, v TEXT); INSERT INTO t VALUES('1','a'),('10','b'),('100','c'),('2','d'),('3','e'),('9','f');"
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > tk.mustache
run "$SF" render --db tk.db -t tk.mustache --query "SELECT k, v FROM t" -o tk.xml --shard 1/2 --shard-key k
expect "shard: a text key of digits is refused (exit 4), not split into overlapping ranges" 4 "holds values that are not integers"
run "$SF" publish -t rss "${P[@]}" -o wrong.xml --shard-dir f5.xml.gz.shards --shards 5
expect "shard: publishing gzip parts under a plain name is refused (exit 2)" 2 "says no compression, but the shards' parts are gzip"
run "$SF" publish -t rss "${P[@]}" -o wrong.xml.zst --shard-dir f5.xml.gz.shards --shards 5
expect "shard: ... and under a .zst name" 2 "says zstd, but the shards' parts are gzip"

# A query ending in '; -- comment' or '/* */'; the key named in another case.
QC="SELECT j.id, j.reference, j.title, j.url, j.category, j.description, j.posted_at
    FROM jobs j WHERE j.site = :site ORDER BY j.id; -- the feed's rows"
sharded jobs.db fc.xml 2 ID "$QC"
if [ "$rc" = 0 ] && same_doc fc.xml one.xml; then pass "shard: a query ending in '; -- comment', the key as ID: the same feed"
else fail "shard: trailing comment" "exit $rc, $(head -c 300 "$T/err")"; fi
run "$SF" render --db jobs.db -t rss "${P[@]}" --param unused=1 --query "$Q" -o u.xml --shard 1/2 --shard-key id
expect "shard: an unused --param fails before the plan (exit 3)" 3 "parameter 'unused' is read by neither"

# ---- usage and template errors ----------------------------------------------
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --shard 2/4
expect "shard: --shard without --shard-key is a usage error" 2 "needs --shard-key"
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --shard 5/4 --shard-key id
expect "shard: --shard 5/4 is a usage error" 2 "K/N with 1 <= K <= N"
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --shard 1/2 --shard-key id --index sitemap-index
expect "shard: --shard with --index is a usage error (the index is publish's)" 2 "go to sqlfeed publish"
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o - --shard 1/2 --shard-key id
expect "shard: --shard to stdout is a usage error" 2 "needs -o FEED"
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --shard 1/2 --shard-key idx
expect "shard: a key that is not a column (exit 3)" 3 "shard key 'idx' is not a column the query returns"
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --shard 1/2 --shard-key reference
expect "shard: a key that is not an integer (exit 4)" 4 "shard key 'reference' holds values that are not integers"
ok "shard: ... and its part was not written" test ! -e u.xml.shards/1-of-2.part
run "$SF" render --db jobs.db -t rss "${P[@]}" --query "$Q" -o u.xml --snapshot 00000003-0000001B-1
expect "shard: --snapshot on SQLite is refused (exit 2)" 2 "only PostgreSQL"
printf '<feed>{{#first}}<u>{{title}}</u>{{/first}}{{#rows}}<e>{{title}}</e>{{/rows}}</feed>\n' > first.mustache
"$SF" render --db jobs.db -t first.mustache --query "SELECT id, title FROM jobs" --shard 1/1 \
    --shard-key id -o at.xml -q
run "$SF" publish -t first.mustache -o at.xml --shards 1
expect "shard: a template reading {{#first}} cannot be published from shards (exit 3)" 3 "reads \\{\\{#first\\}\\}"
run "$SF" publish -t rss -o nothere.xml --shards 2
expect "shard: publish without the shards' directory is refused (exit 7)" 7 "nothere.xml.shards"

# ---- split shards: a sitemap in parts from 3 shards, one index ------------
SQ="SELECT p.id, p.link AS loc, p.updated_at AS lastmod FROM products p ORDER BY p.id"
mkdir one sm
"$SF" render --db jobs.db -t sitemap --query "$SQ" -o one/sitemap.xml --split-rows 10 \
    --base-url https://shop.example/maps -q
for k in 1 2 3; do
    "$SF" render --db jobs.db -t sitemap --query "$SQ" -o sm/sitemap.xml --shard $k/3 \
        --shard-key id --split-rows 10 -q || echo "FAIL: shard: sitemap shard $k: exit $?"
done
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3 --base-url https://shop.example/maps
expect "shard: publish makes the split shards one set with its index" 0 "rows in [0-9]+ parts from 3 shards"
# locs FILE...: the <loc>s of sitemaps (.gz), in order
locs() { for f in "$@"; do zcat "$f"; done | grep -o '<loc>[^<]*' | sed 's/<loc>//'; }
parts_of() { grep -o '<loc>[^<]*' "$1" | sed 's|.*/||'; }
ok "shard: the set's URLs, part by part, are the one-process render's" \
    cmp -s <(locs $(parts_of sm/sitemap.xml | sed 's|^|sm/|')) <(locs $(parts_of one/sitemap.xml | sed 's|^|one/|'))
np=0; for k in 1 2 3; do np=$((np + $(sed -n 's/^"parts": \([0-9]*\),$/\1/p' sm/sitemap.xml.shards/$k-of-3.json))); done
ok "shard: the index lists every shard's parts ($np)" test "$(parts_of sm/sitemap.xml | wc -l)" = "$np"
bad=""
for f in $(parts_of sm/sitemap.xml); do
    zcat "sm/$f" | xmllint --noout --schema "$HERE/data/schemas/sitemap.xsd" - 2>/dev/null || bad="$bad $f"
done
ok "shard: every part is a valid sitemap (sitemap.xsd)" test -z "$bad"
ok "shard: the index is a valid sitemap index (siteindex.xsd)" \
    bash -c "xmllint --noout --schema '$HERE/data/schemas/siteindex.xsd' sm/sitemap.xml 2>/dev/null"
lm_ok=$(python3 - sm/sitemap.xml <<'PY'
import gzip, os, re, sys
idx = open(sys.argv[1]).read()
d = os.path.dirname(sys.argv[1])
ok = True
for loc, lm in re.findall(r"<loc>[^<]*/([^<]*)</loc><lastmod>([^<]*)</lastmod>", idx):
    part = gzip.open(os.path.join(d, loc)).read().decode()
    ok = ok and lm == max(re.findall(r"<lastmod>([^<]*)</lastmod>", part))
print("yes" if ok and "<lastmod>" in idx else "no")
PY
)
ok "shard: each index entry's lastmod is its part's largest" test "$lm_ok" = yes
cp sm/sitemap.xml sm.index.before
old_parts=$(parts_of sm/sitemap.xml | tr '\n' ' ')
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3 --base-url https://shop.example/maps
new_parts=$(parts_of sm/sitemap.xml | tr '\n' ' ')
left=0; for f in $old_parts; do [ -e "sm/$f" ] && left=$((left + 1)); done
ok "shard: publishing again makes a new set and removes the old one's parts" \
    test "$rc" = 0 -a "$old_parts" != "$new_parts" -a "$left" = 0 -a "$(ls sm/*.gz | wc -l)" = "$np"
cp sm/sitemap.xml sm.index.before
p2=$(sed -n 's/^"part_2_name": "\(.*\)",$/\1/p' sm/sitemap.xml.shards/2-of-3.json)
cp "sm/sitemap.xml.shards/$p2" p2.keep
printf 'XX' | dd of="sm/sitemap.xml.shards/$p2" bs=1 seek=50 conv=notrunc 2>/dev/null
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3 --base-url https://shop.example/maps
all_there=1; for f in $new_parts; do [ -e "sm/$f" ] || all_there=0; done
if [ "$rc" = 7 ] && grep -q "is not the part its manifest describes" "$T/err" && cmp -s sm/sitemap.xml sm.index.before &&
    [ "$all_there" = 1 ] && [ "$(ls sm/*.gz | wc -l)" = "$np" ] && no_temp sm; then
    pass "shard: a damaged part of a split shard is refused (exit 7): the published set stays whole"
else fail "shard: a damaged split part" "exit $rc; $(head -c 300 "$T/err")"; fi
cp p2.keep "sm/sitemap.xml.shards/$p2"
run "$SF" publish -t rss -o sm/sitemap.xml --shards 3 --base-url https://shop.example/maps --index sitemap-index
expect "shard: split shards published with another -t are refused (exit 7)" 7 "another template"
# More shards than products: the empty shards' parts are left out.
mkdir sm5
SQ3="SELECT p.id, p.link AS loc, p.updated_at AS lastmod FROM products p WHERE p.id <= 3 ORDER BY p.id"
for k in 1 2 3 4 5; do
    "$SF" render --db jobs.db -t sitemap --query "$SQ3" -o sm5/sitemap.xml --shard $k/5 --shard-key id -q
done
"$SF" publish -t sitemap -o sm5/sitemap.xml --shards 5 --base-url https://shop.example/maps -q
bad=""
for f in $(parts_of sm5/sitemap.xml); do
    zcat "sm5/$f" | xmllint --noout --schema "$HERE/data/schemas/sitemap.xsd" - 2>/dev/null || bad="$bad $f"
done
ok "shard: 5 shards over 3 URLs: 3 parts, each a valid sitemap (empty shards left out)" \
    test "$(parts_of sm5/sitemap.xml | wc -l)" = 3 -a -z "$bad"
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3
expect "shard: a sitemap's index needs --base-url (exit 2)" 2 "give --base-url"
cp sm/sitemap.xml sm.index.rails
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3 --base-url https://shop.example/maps --min-rows 100000
if [ "$rc" = 7 ] && grep -q "fewer than the minimum of 100000" "$T/err" && cmp -s sm/sitemap.xml sm.index.rails && no_temp sm; then
    pass "shard: publish --min-rows refuses split shards too (exit 7), the set stays"
else fail "shard: split --min-rows" "exit $rc; $(head -c 300 "$T/err")"; fi
run "$SF" publish -t sitemap -o sm/sitemap.xml --shards 3 --no-defaults
expect "shard: split shards joined as one document are refused (exit 7)" 7 "split into parts"
run "$SF" publish -t rss "${P[@]}" -o f3.xml --shards 3 --index sitemap-index --base-url https://x.example/
expect "shard: one-document shards published with an index are refused (exit 7)" 7 "one document each"

# ---- the servers ---------------------------------------------------------------
if [ -z "${SQLFEED_PG_URL:-}" ]; then
    if out=$("$HERE/servers.sh" start 2>"$T/servers.err"); then
        eval "$out"; STARTED=$SQLFEED_SERVERS_DIR
    else
        skip "shard: servers" "tests/servers.sh start failed: $(tail -2 "$T/servers.err")"; exit 0
    fi
fi
PG=$SQLFEED_PG_URL
MY=${SQLFEED_MY_URL:-}
for url in "$PG" $MY; do
    kind=${url%%:*}
    if ! "$REF/load_demo.sh" "$T/jobs.db" "$url" >"$T/load.log" 2>&1; then
        fail "shard: $kind: load the demo database" "$(tail -3 "$T/load.log")"; continue
    fi
    rm -rf s.xml.gz s.xml.gz.shards
    run "$SF" render --db "$url" -t rss "${P[@]}" --query "$Q" -o u.xml --shard 1/2 --shard-key idx
    expect "shard: $kind: a key that is not a column (exit 3, as on SQLite)" 3 "shard key 'idx' is not a column the query returns"
    sharded "$url" s.xml.gz 3
    if [ "$rc" = 0 ] && same_doc s.xml.gz one.xml.gz; then pass "shard: $kind: 3 shards joined = SQLite's one-process render"
    else fail "shard: $kind: 3 shards" "exit $rc, $(head -c 300 "$T/err")"; fi
    rm -rf sc.xml sc.xml.shards
    sharded "$url" sc.xml 2 id "$QC"
    if [ "$rc" = 0 ] && same_doc sc.xml one.xml; then pass "shard: $kind: a query ending in '; -- comment'"
    else fail "shard: $kind: trailing comment" "exit $rc, $(head -c 300 "$T/err")"; fi
done
mkdir pgsm
for k in 1 2; do
    "$SF" render --db "$PG" -t sitemap --query "$SQ" -o pgsm/sitemap.xml --shard $k/2 \
        --shard-key id --split-rows 10 -q || echo "FAIL: shard: postgresql: sitemap shard $k: exit $?"
done
run "$SF" publish -t sitemap -o pgsm/sitemap.xml --shards 2 --base-url https://shop.example/maps
if [ "$rc" = 0 ] && cmp -s <(locs $(parts_of pgsm/sitemap.xml | sed 's|^|pgsm/|')) <(locs $(parts_of one/sitemap.xml | sed 's|^|one/|')); then
    pass "shard: postgresql: a sitemap in 2 split shards has SQLite's one-process URLs"
else fail "shard: postgresql: split sitemap" "exit $rc; $(head -c 300 "$T/err")"; fi
# NULL keys on PostgreSQL come first too (its own ORDER BY puts them last).
sharded "$PG" pn.xml 4 k "$QN"
if [ "$rc" = 0 ] && same_nulls_first pn.xml onen.xml; then pass "shard: postgresql: NULL keys first, in shard 1, as on SQLite"
else fail "shard: postgresql: NULL keys" "exit $rc, $(head -c 300 "$T/err")"; fi

# A shared snapshot: the data changes after shard 1; shards 2 and 3 read the
# snapshot, so the joined feed is the data as it was.
mkfifo hold
"$SF" snapshot --db "$PG" < hold > snap.id 2> snap.err &
SNAP=$!
exec 7> hold
for _ in $(seq 100); do [ -s snap.id ] && break; sleep 0.05; done
ID=$(cat snap.id)
ok "shard: sqlfeed snapshot prints an exported snapshot id ($ID)" grep -qE '^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$' snap.id
rm -rf ps.xml.gz ps.xml.gz.shards
"$SF" render --db "$PG" -t rss "${P[@]}" --query "$Q" -o ps.xml.gz --shard 1/3 --shard-key id --snapshot "$ID" -q
psql "${SQLFEED_PG_ADMIN_URL:-$PG}" -qAtX -c "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE site = 'justjobs' ORDER BY id DESC LIMIT 30); UPDATE jobs SET title = 'changed' WHERE site = 'justjobs'" >/dev/null
for k in 2 3; do
    "$SF" render --db "$PG" -t rss "${P[@]}" --query "$Q" -o ps.xml.gz --shard $k/3 --shard-key id --snapshot "$ID" -q
done
run "$SF" publish -t rss "${P[@]}" -o ps.xml.gz --shards 3
if [ "$rc" = 0 ] && same_doc ps.xml.gz one.xml.gz; then pass "shard: postgresql: shards sharing a snapshot give the feed as it was, whatever changed meanwhile"
else fail "shard: postgresql: snapshot" "exit $rc; $(head -c 300 "$T/err")"; fi
"$SF" render --db "$PG" -t rss "${P[@]}" --query "$Q" -o ps.xml.gz --shard 3/3 --shard-key id -q
run "$SF" publish -t rss "${P[@]}" -o ps.xml.gz --shards 3
expect "shard: postgresql: a shard read outside the snapshot is refused" 7 "disagree on the (boundaries|total rows|snapshot)"
exec 7>&-
wait $SNAP; src=$?
ok "shard: sqlfeed snapshot exits 0 when its stdin closes" test "$src" = 0
run "$SF" render --db "$PG" -t rss "${P[@]}" --query "$Q" -o ps.xml.gz --shard 3/3 --shard-key id --snapshot "$ID"
expect "shard: postgresql: a snapshot no longer held is a clear error (exit 4)" 4 "invalid snapshot identifier.*must still be held open"
run "$SF" snapshot --db "$T/jobs.db"
expect "shard: sqlfeed snapshot on SQLite is a usage error" 2 "only PostgreSQL"
exit 0
