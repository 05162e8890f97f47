#!/bin/bash
# cli8_test.sh BUILD: the command side of issue 8: compression (by suffix or
# --compress, --level), split outputs and their index, several outputs from
# one scan, the safety rails (--min-rows, --max-drop: exit 7), the lock
# (exit 8), stale temporary files, --summary-json, and every option's usage
# errors (exit 2).
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: cli8_test.sh BUILD}
SF=$B/sqlfeed
INJECT=$(cd "$B" && pwd)/tests/inject.so
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-cli8.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
export SOURCE_DATE_EPOCH=1767225600 # the same generated_at in every run: runs compare

. "$(dirname "$0")/lib.sh"
has_temp() { ! no_temp "$1"; }

DB=$T/jobs.db
"$SF" demo-db --rows 3000 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
R="$SF render --db $DB"
# usage NAME REGEX ARGS...: a render with ARGS exits 2, one line matching REGEX
usage() {
    local name=$1 re=$2; shift 2
    run $R "$@"
    if [ "$rc" = 2 ] && grep -qE -- "$re" "$T/err" && one_line; then pass "usage: $name"
    else fail "usage: $name" "exit $rc (want 2, one line /$re/); stderr: $(head -c 400 "$T/err")"; fi
}

# ---- help and documentation ---------------------------------------------------
run "$SF" render --help
ok "--help: compression chosen by suffix" grep -q ".gz gzip, .zst zstd" "$T/out"
ok "--help: an unknown suffix stays plain" grep -q "any other suffix" "$T/out"
ok "--help: exit 7 and 8" sh -c "grep -q '7 refused by --min-rows' '$T/out' && grep -q '8 another run' '$T/out'"
run "$SF" --help
ok "sqlfeed --help: exit 7 and 8" sh -c "grep -q '^ *7  refused' '$T/out' && grep -q '8  another sqlfeed run' '$T/out'"
MAN=$(dirname "$0")/../docs/sqlfeed.1
ok "man page: exit 7 and 8 documented" sh -c "grep -qx '.B 7' '$MAN' && grep -qx '.B 8' '$MAN' && grep -q 'another sqlfeed run holds' '$MAN'"
if command -v man >/dev/null 2>&1; then
    ok "man page renders (man -l) with the output options" \
        sh -c "MANWIDTH=80 man -l '$MAN' 2>/dev/null | grep -q -- '--split-rows'"
else
    skip "man page renders" "no man(1)"
fi

# ---- usage errors: every option, alone and in conflict ----------------------------
O=$T/u.xml
usage "--compress bogus" "--compress takes auto, none, gzip or zstd, got 'bzip2'" -t simplyhired -o "$O" --compress bzip2
usage "--compress twice, different" "--compress given twice: 'gzip' and 'zstd'" -t simplyhired -o "$O" --compress gzip --compress zstd
usage "--compress none on .gz" "names a gzip file but --compress is none" -t simplyhired -o "$T/u.xml.gz" --compress none
usage "--compress gzip on .zst" "names a zstd file but --compress is gzip" -t simplyhired -o "$T/u.xml.zst" --compress gzip
usage "--level 10 for gzip" "--level 10 is out of range for gzip \(1-9, or best\)" -t simplyhired -o "$T/u.xml.gz" --level 10
usage "--level 20 for zstd" "--level 20 is out of range for zstd \(1-19, or best\)" -t simplyhired -o "$T/u.xml.zst" --level 20
usage "--level 0" "--level 0 is out of range" -t simplyhired -o "$T/u.xml.gz" --level 0
usage "--level x" "--level takes a compression level" -t simplyhired -o "$T/u.xml.gz" --level fast
usage "--level without compression" "--level needs compression" -t simplyhired -o "$O" --level 5
usage "--level with --compress none" "--level needs compression" -t simplyhired -o "$O" --compress none --level best
usage "--split-rows 0" "--split-rows needs a number of rows \(1 or more\), got '0'" -t simplyhired -o "$O" --split-rows 0
usage "--split-rows -5" "--split-rows needs a number of rows" -t simplyhired -o "$O" --split-rows -5
usage "--split-bytes 5X" "--split-bytes needs a size like 50M" -t simplyhired -o "$O" --split-bytes 5X
usage "--parts without a split" "--parts needs --split-rows or --split-bytes" -t simplyhired -o "$O" --parts "$T/p-%d.xml"
usage "a pattern without %d" "the parts' pattern '.*' has no %d or %0Nd" -t simplyhired --split-rows 10 --parts "$T/p.xml"
usage "a pattern with two %d" "has more than one %d" -t simplyhired --split-rows 10 --parts "$T/p-%d-%d.xml"
usage "a pattern with %s" "'%s', which is not %d, %0Nd or %r" -t simplyhired --split-rows 10 --parts "$T/p-%s-%d.xml"
usage "a pattern numbering its directory" "a % in its directory" -t simplyhired --split-rows 10 --parts "$T/d%d/p-%d.xml"
usage "%r without an index" "%r, the run's tag, which only a set with --index has" -t simplyhired --split-rows 10 --parts "$T/p-%r-%d.xml"
usage "-o and --parts without an index" "without --index, -o and --parts both name the parts" -t simplyhired -o "$O" --split-rows 10 --parts "$T/p-%d.xml"
usage "--output PATH and parts= without index=" "without index=, PATH names the parts" -t simplyhired -o "$O" --output "simplyhired=$T/q.xml,split-rows=9,parts=$T/q-%d.xml"
usage "a split to stdout" "a split output is a set of files, not stdout" -t simplyhired -o - --split-rows 10
usage "--index without a split" "--index needs --split-rows or --split-bytes" -t simplyhired -o "$O" --index simplyhired
usage "--base-url without --index" "--base-url needs --index" -t simplyhired -o "$O" --split-rows 10 --base-url https://x.example/
usage "--lastmod without --index" "--lastmod needs --index" -t simplyhired -o "$O" --split-rows 10 --lastmod posted_at
usage "an index's parts without %r" "no %r for the run's tag" -t simplyhired -o "$O" --split-rows 10 --index simplyhired --parts "$T/p-%04d.xml"
usage "an index on stdout" "split output is a set of files, not stdout" -t simplyhired -o - --split-rows 10 --index simplyhired
usage "--min-rows x" "--min-rows needs a number of rows, got 'x'" -t simplyhired -o "$O" --min-rows x
usage "--max-drop 101" "--max-drop needs a percentage from 0 to 100, got '101'" -t simplyhired -o "$O" --max-drop 101
usage "--max-drop -1" "--max-drop needs a percentage" -t simplyhired -o "$O" --max-drop -1
usage "--threads maybe" "--threads takes on or off" -t simplyhired -o "$O" --threads maybe
usage "--output without =" "--output #2 needs TEMPLATE=PATH" -t simplyhired -o "$O" --output "$T/x.xml"
usage "--output without a path" "no PATH in" -t simplyhired -o "$O" --output "simplyhired="
usage "--output unknown key" "unknown key 'colour'" -t simplyhired -o "$O" --output "simplyhired=$T/x.xml,colour=red"
usage "--output key without value" "'compress' needs key=value" -t simplyhired -o "$O" --output "simplyhired=$T/x.xml,compress"
usage "--output trailing backslash" "a backslash at the end" -t simplyhired -o "$O" --output "simplyhired=$T/x.xml\\"
usage "--output key checked like its option" "level= of --output #2 is out of range|--level 12 is out of range for gzip" -t simplyhired -o "$O" --output "simplyhired=$T/x.xml.gz,level=12"
usage "--output key twice" "compress= of --output #2 given twice" -t simplyhired -o "$O" --output "simplyhired=$T/x.xml,compress=gzip,compress=zstd"
usage "--compress with only --output" "go with -o and --template" --compress gzip --output "simplyhired=$T/x.xml"
usage "--index without -o" "missing -o" -t simplyhired --split-rows 10 --index simplyhired --parts "$T/p-%r-%d.xml"
usage "two outputs on stdout" "both write to stdout" -t simplyhired -o - --output "simplyhired=-"
# identity: every output and part against the inputs and each other
usage "--output is -o" "is the same file as -o" -t simplyhired -o "$O" --output "indeed=$O"
usage "--output is the database" "is the same file as --db" -t simplyhired -o "$O" --output "indeed=$DB"
usage "parts of two outputs overlap" "can name the same file" -t simplyhired -o "$T/a-%04d.xml" --split-rows 10 --output "simplyhired=$T/a-%d.xml,split-rows=5"
usage "a part can be another output" "can name the same file" -t simplyhired -o "$T/b-%d.xml" --split-rows 10 --output "simplyhired=$T/b-17.xml"
cp "$DB" "$T/jobs-0002.db"
usage "a part can be the database" "a part it names can be --db" --db "$T/jobs-0002.db" -t simplyhired -o "$T/jobs-%04d.db" --split-rows 10
usage "--mem-log is a temporary file's name" "can name the same file" -t simplyhired -o "$O" --mem-log "$T/.u.xml.sqlfeed-state"
usage "--mem-log is the state record" "can name the same file" -t simplyhired -o "$O" --mem-log "$T/.u.xml.sqlfeed.state"
usage "--mem-log is a set's lock" "can name the same file" -t simplyhired -o "$T/p-%04d.xml" --split-rows 10 --mem-log "$T/.p-%04d.xml.sqlfeed.lock"
usage "--mem-log is a part's temporary file" "can name the same file" -t simplyhired -o "$T/p-%04d.xml" --split-rows 10 --mem-log "$T/.p-0003.xml.sqlfeed-0badf00d"
usage "--summary-json is -o" "is the same file as -o" -t simplyhired -o "$O" --summary-json "$O"
ok "a refused --summary-json is not written over -o" test ! -e "$O"
run $R -t simplyhired -o "$T/c-%04d.xml" --split-rows 10 --output "simplyhired=$T/c-%04d.xml.gz,split-rows=10"
ok "parts of .xml and .xml.gz do not overlap (not refused as such)" sh -c "! grep -q 'can name the same file' '$T/err'"
ok "usage errors leave nothing" sh -c "! ls '$T' | grep -q '^u\.\|^p-\|^x\.'"

# ---- compression ------------------------------------------------------------
run $R -t simplyhired -o "$T/plain.xml" -q
ok "plain render" test "$rc" = 0
for z in gz zst; do
    tool=gzip; [ $z = zst ] && tool=zstd
    run $R -t simplyhired -o "$T/f.xml.$z" -q
    ok ".$z by suffix: exit 0" test "$rc" = 0
    ok ".$z: $tool -t" $tool -tq "$T/f.xml.$z"
    ok ".$z: decompresses to the plain render byte for byte" sh -c "$tool -dc '$T/f.xml.$z' | cmp -s - '$T/plain.xml'"
    run $R -t simplyhired -o "$T/best.xml.$z" -q --level best
    ok ".$z --level best: $tool -t and the same document" sh -c "$tool -dc '$T/best.xml.$z' | cmp -s - '$T/plain.xml'"
    ok ".$z --level best is smaller than the default" test "$(stat -c %s "$T/best.xml.$z")" -lt "$(stat -c %s "$T/f.xml.$z")"
    run $R -t simplyhired -o "$T/f-threads-off.xml.$z" -q --threads off
    ok ".$z --threads off: the same document" sh -c "$tool -dc '$T/f-threads-off.xml.$z' | cmp -s - '$T/plain.xml'"
    ok ".$z: no temporary file" no_temp "$T"
done
run $R -t simplyhired -o "$T/forced.xml" -q --compress gzip --level 6
ok "--compress gzip on a plain name: gzip -t" gzip -tq "$T/forced.xml"
run $R -t simplyhired -o "$T/u.xml.bz2" -q
ok "an unknown suffix stays plain" cmp -s "$T/u.xml.bz2" "$T/plain.xml"
run $R -t simplyhired -o - -q --compress zstd
ok "-o - --compress zstd: a zstd stream on stdout" sh -c "zstd -dc < '$T/out' | cmp -s - '$T/plain.xml'"
run $R -t simplyhired -o "$T/f.xml.gz"
expect "the summary line names the compressed size" 0 "bytes \([0-9.]+ MB, [0-9.]+ MB gzip\) in .* -> $T/f.xml.gz$"

# ---- split ------------------------------------------------------------------
ROWS=$(sqlite3 "$DB" "SELECT count(*) FROM jobs j JOIN companies c ON c.id = j.company_id WHERE j.site = 'justjobs' AND j.is_active = TRUE")
mkdir -p "$T/s"
run $R -t simplyhired -o "$T/s/feed.xml.gz" --split-rows 1000
expect "--split-rows: exit 0, summary names the parts" 0 "-> $T/s/feed-%04d.xml.gz \(3 parts\)$"
ok "--split-rows: parts named from -o (feed-0001.xml.gz ...)" \
    sh -c "cd '$T/s' && [ \"\$(ls feed-*.xml.gz | tr '\n' ' ')\" = 'feed-0001.xml.gz feed-0002.xml.gz feed-0003.xml.gz ' ]"
ok "--split-rows: nothing at -o itself" test ! -e "$T/s/feed.xml.gz"
allwf=1; total=0
for p in "$T"/s/feed-*.xml.gz; do
    gzip -dc "$p" > "$p.xml" && xmllint --noout "$p.xml" 2>/dev/null || allwf=0
    n=$(grep -o '<job>' "$p.xml" | wc -l); total=$((total + n)); [ "$n" -le 1000 ] || allwf=0
done
ok "--split-rows: every part a well-formed document of at most 1000 rows" test $allwf = 1
ok "--split-rows: the parts hold every row ($ROWS)" test "$total" = "$ROWS"
mkdir -p "$T/sb"
run $R -t simplyhired -o "$T/sb/feed-%03d.xml" --split-bytes 2M -q
ok "--split-bytes 2M with -o as the pattern: exit 0" test "$rc" = 0
big=0; n=0
for p in "$T"/sb/feed-*.xml; do
    n=$((n + 1)); [ "$(stat -c %s "$p")" -le 2097152 ] || big=1; xmllint --noout "$p" 2>/dev/null || big=1
done
ok "--split-bytes: several parts, each well-formed and at most 2 MiB" sh -c "[ $big = 0 ] && [ $n -ge 3 ]"
run $R -t simplyhired -o "$T/sb/one.xml" --split-bytes 2K -q
expect "--split-bytes smaller than a row: exit 5, names the row" 5 "row [0-9]+ .*split"
ok "--split-bytes smaller than a row: nothing published" sh -c "! ls '$T/sb' | grep -q '^one'"

# ---- split + index (a sitemap) --------------------------------------------------
cat > "$T/urls.mustache" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{{#rows}}<url><loc>{{url}}</loc><lastmod>{{posted_at}}</lastmod></url>
{{/rows}}</urlset>
EOF
cat > "$T/index.mustache" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{{#rows}}<sitemap><loc>{{url}}</loc><lastmod>{{lastmod}}</lastmod><bytes>{{bytes}}</bytes><part>{{part}}</part><name>{{name}}</name></sitemap>
{{/rows}}</sitemapindex>
EOF
UQ="SELECT url, posted_at FROM jobs ORDER BY id"
mkdir -p "$T/sm"
sitemap() { run $R --query "$UQ" -t "$T/urls.mustache" -o "$T/sm/sitemap.xml" --compress gzip \
                --index "$T/index.mustache" --base-url https://jobs.example/sitemaps/ \
                --lastmod posted_at --summary-json "$T/sm.json" "$@"; }
cat > "$T/check_index.py" <<'EOF'
import gzip, os, re, sys, xml.etree.ElementTree as ET
d, base, want_rows, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
idx = ET.parse(os.path.join(d, "sitemap.xml")).getroot()
names, total = [], 0
for sm in idx.findall("s:sitemap", ns):
    name, loc = sm.findtext("s:name", None, ns), sm.findtext("s:loc", None, ns)
    if loc != base + name: sys.exit(f"url {loc!r} is not base + {name!r}")
    if not re.fullmatch(r"sitemap-[0-9a-f]{8}-[0-9]{4}\.xml\.gz", name): sys.exit(f"name {name!r}")
    doc = gzip.open(os.path.join(d, name)).read()
    part = ET.fromstring(doc)
    urls = part.findall("s:url", ns)
    if len(doc) != int(sm.findtext("s:bytes", None, ns)): sys.exit(f"{name}: bytes differ")
    if int(sm.findtext("s:part", None, ns)) != len(names) + 1: sys.exit(f"{name}: part number")
    if len(urls) > per: sys.exit(f"{name}: {len(urls)} rows > {per}")
    mx = max(u.findtext("s:lastmod", "", ns) for u in urls)
    if sm.findtext("s:lastmod", None, ns) != mx: sys.exit(f"{name}: lastmod is not the part's largest")
    names.append(name); total += len(urls)
if total != want_rows: sys.exit(f"{total} rows in the parts, want {want_rows}")
on_disk = sorted(f for f in os.listdir(d) if f.startswith("sitemap-"))
if on_disk != sorted(names): sys.exit(f"files {on_disk} != the index's {names}")
print(len(names))
EOF
sitemap --split-rows 700
ok "sitemap: exit 0" test "$rc" = 0
ok "sitemap: the index is well-formed" xmllint --noout "$T/sm/sitemap.xml"
ok "sitemap: parts listed, URLs = base + name, rows, lastmod, every row, no other file" \
    sh -c "$PY '$T/check_index.py' '$T/sm' https://jobs.example/sitemaps/ 3000 700 > '$T/nparts' && [ \$(cat '$T/nparts') = 5 ]"
ok "sitemap: parts are gzip (-t)" sh -c "gzip -tq '$T'/sm/sitemap-*.xml.gz"
sitemap --split-rows 2000
ok "sitemap rerun with fewer parts: the old parts are gone, the index names every file" \
    sh -c "$PY '$T/check_index.py' '$T/sm' https://jobs.example/sitemaps/ 3000 2000 > '$T/nparts' && [ \$(cat '$T/nparts') = 2 ]"
ok "sitemap: no temporary file" no_temp "$T/sm"
# sqlfeed.h: the index's rows carry part, name, url, row_count, bytes, lastmod
sed 's|<bytes>{{bytes}}</bytes>|<n>{{row_count}}</n>|' "$T/index.mustache" > "$T/index-rows.mustache"
mkdir -p "$T/smr"
run $R --query "$UQ" -t "$T/urls.mustache" -o "$T/smr/sitemap.xml" --split-rows 1000 --index "$T/index-rows.mustache" --base-url https://jobs.example/sitemaps/ -q
ok "the index reads each part's rows ({{row_count}}, as sqlfeed.h documents)" \
    sh -c "[ $rc = 0 ] && [ \"\$(grep -o '<n>[0-9]*</n>' '$T/smr/sitemap.xml' | tr -d '<>n/' | tr '\n' ' ')\" = '1000 1000 1000 ' ]"
# An index URL: a "/" after a base that lacks one, the name percent-encoded
mkdir -p "$T/smu"
run $R --query "$UQ" -t "$T/urls.mustache" -o "$T/smu/sitemap.xml" --split-rows 2000 -q \
    --parts "$T/smu/my maps&é-%r-%d.xml" --index "$T/index.mustache" --base-url https://ex.example/maps
ok "index url: base without a slash gets one, the name percent-encoded (RFC 3986)" \
    sh -c "[ $rc = 0 ] && grep -Eq '<loc>https://ex\.example/maps/my%20maps%26%C3%A9-[0-9a-f]{8}-1\.xml</loc>' '$T/smu/sitemap.xml'"
# Past the first rename, a failure of one output does not hold the others
# back: the second rename (a.xml's state record) fails, b.xml is still
# published, exit 5 naming what failed.
mkdir -p "$T/two"; previous "$T/two/a.xml"; previous "$T/two/b.xml"
run env LD_PRELOAD="$INJECT" SQLFEED_INJECT_FAIL_AT=rename:2 \
    $R -t simplyhired -o "$T/two/a.xml" --output "simplyhired=$T/two/b.xml"
ok "a failure after the first rename: exit 5, every document still published" \
    sh -c "[ $rc = 5 ] && ! grep -q 'previous feed' '$T/two/a.xml' && ! grep -q 'previous feed' '$T/two/b.xml'"
ok "... and the message says all are published" grep -q "published after .*a.xml, .*b.xml; but" "$T/err"
cat > "$T/check_json.py" <<'EOF'
import json, os, sys
j = json.load(open(sys.argv[1]))
want = sys.argv[2]
for k in ("sqlfeed", "exit", "status", "signal", "error", "rows", "seconds", "peak_rss", "memory", "published", "outputs"):
    if k not in j: sys.exit(f"no {k!r}")
if want == "sitemap":
    o = j["outputs"][0]
    assert j["exit"] == 0 and j["status"] == "ok" and j["published"] is True, j
    assert o["index"]["path"].endswith("sitemap.xml") and o["index"]["published"], o
    assert len(o["parts"]) == 2 and sum(p["rows"] for p in o["parts"]) == j["rows"] == o["items"] == 3000, o
    for p in o["parts"]:
        assert os.path.exists(p["path"]), p
    assert o["bytes_in"] == sum(p["bytes"] for p in o["parts"]), o
    assert o["bytes_out"] == sum(os.path.getsize(p["path"]) for p in o["parts"]), o
    assert o["compress"] == "gzip" and o["bytes_out"] < o["bytes_in"], o
elif want == "two":
    a, b = j["outputs"]
    assert j["exit"] == 0 and len(j["outputs"]) == 2, j
    assert a["items"] == b["items"] == j["rows"], j
    assert a["bytes_in"] == a["bytes_out"] == os.path.getsize(a["path"]), a
    assert b["compress"] == "zstd" and b["bytes_out"] == os.path.getsize(b["path"]), b
    assert j["memory"] in ("flat", "grows", "unknown", "not watched"), j
    assert j["peak_rss"] > 0 and j["seconds"] >= 0, j
else:
    code, status = want.split(":")
    assert j["exit"] == int(code) and j["status"] == status and j["published"] is False, j
    assert j["error"], j
EOF
ok "--summary-json of the sitemap: parsed by python json, figures match the files" $PY "$T/check_json.py" "$T/sm.json" sitemap

# ---- several outputs from one scan ------------------------------------------------
IP=(--param publisher='Just Jobs' --param publisherurl=https://justjobs.example/)
# One query for both: indeed's built-in reads a job per location (location_id, its city).
BOTH="SELECT j.id, j.reference, l.id AS location_id, j.title, j.url, l.city, l.state, l.postal_code,
             l.country, j.category, j.job_type, j.salary, j.description, j.posted_at,
             c.name AS company, c.url AS company_url
      FROM jobs j JOIN companies c ON c.id = j.company_id JOIN locations l ON l.job_id = j.id
      WHERE j.site = 'justjobs' AND j.is_active = TRUE ORDER BY j.id, l.id"
mkdir -p "$T/two" "$T/sep"
run $R -t simplyhired -o "$T/two/sh.xml" --output "indeed=$T/two/in.xml.zst" "${IP[@]}" --query "$BOTH" \
    --summary-json "$T/two.json"
expect "two outputs from one scan: exit 0, a line per output" 0 "-> 2 outputs"
run $R -t simplyhired -o "$T/sep/sh.xml" -q --query "$BOTH"
run $R -t indeed -o "$T/sep/in.xml" -q "${IP[@]}" --query "$BOTH"
ok "output 1 equals its separate run" cmp -s "$T/two/sh.xml" "$T/sep/sh.xml"
ok "output 2 (zstd) equals its separate run" sh -c "zstd -dc '$T/two/in.xml.zst' | cmp -s - '$T/sep/in.xml'"
ok "--summary-json of two outputs: parsed, items and bytes per output" $PY "$T/check_json.py" "$T/two.json" two
mkdir -p "$T/esc,dir"
run $R -t simplyhired -o "$T/e1.xml" -q --output "simplyhired=$T/esc\\,dir/a\\=b.xml"
ok "--output: \\, and \\= in a path" cmp -s "$T/esc,dir/a=b.xml" "$T/plain.xml"
previous "$T/two/sh.xml"; previous "$T/two/keep2.xml"
run $R -t simplyhired -o "$T/two/sh.xml" --output "simplyhired=$T/two/keep2.xml" \
    --output "indeed=$T/two/in2.xml"
expect "one output failing (names missing): exit 3" 3 "publisher"
ok "one output failing: no output published" sh -c "is_previous() { [ \"\$(cat \"\$1\")\" = 'previous feed' ]; }; is_previous '$T/two/sh.xml' && is_previous '$T/two/keep2.xml' && [ ! -e '$T/two/in2.xml' ]"
SQLFEED_INJECT_RENAME_FAIL=1 LD_PRELOAD=$INJECT run $R -t simplyhired -o "$T/two/sh.xml" \
    --output "simplyhired=$T/two/keep2.xml.gz"
ok "a rename failing: exit 5, nothing published" sh -c "[ $rc = 5 ] && [ \"\$(cat '$T/two/sh.xml')\" = 'previous feed' ] && [ ! -e '$T/two/keep2.xml.gz' ]"
ok "two outputs: no temporary file after failures" no_temp "$T/two"

# ---- safety rails -------------------------------------------------------------
mkdir -p "$T/rail"
run $R -t simplyhired -o "$T/rail/feed.xml" -q --min-rows 100
ok "--min-rows below the count: published" test "$rc" = 0
cp "$T/rail/feed.xml" "$T/rail/before.xml"
run $R -t simplyhired -o "$T/rail/feed.xml" --min-rows 100000 --summary-json "$T/rail.json"
expect "--min-rows above the count: exit 7, both counts named" 7 "$ROWS.*100000|100000.*$ROWS"
ok "--min-rows refusal: one line" one_line
ok "--min-rows refusal: previous feed byte-identical" cmp -s "$T/rail/feed.xml" "$T/rail/before.xml"
ok "--min-rows refusal: no temporary file" no_temp "$T/rail"
ok "--min-rows refusal: --summary-json says refused, exit 7" $PY "$T/check_json.py" "$T/rail.json" 7:refused
FEW="SELECT j.id, j.reference, j.title, j.url, j.city, j.state, j.postal_code, j.country, j.category, j.job_type, j.salary, j.description, j.posted_at, c.name AS company, c.url AS company_url FROM jobs j JOIN companies c ON c.id = j.company_id WHERE j.id <= 300"
FEWROWS=$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE id <= 300")
run $R -t simplyhired -o "$T/rail/feed.xml" --query "$FEW" --max-drop 50
expect "--max-drop: a 90 % drop refused, exit 7, both counts named" 7 "(^|[^0-9])$ROWS([^0-9].*[^0-9]|[^0-9])$FEWROWS([^0-9]|$)|(^|[^0-9])$FEWROWS([^0-9].*[^0-9]|[^0-9])$ROWS([^0-9]|$)"
ok "--max-drop refusal: previous feed byte-identical" cmp -s "$T/rail/feed.xml" "$T/rail/before.xml"
ok "--max-drop refusal: no temporary file" no_temp "$T/rail"
run $R -t simplyhired -o "$T/rail/feed.xml" --query "$FEW" --max-drop 95 -q
ok "--max-drop: a drop within the limit publishes" sh -c "[ $rc = 0 ] && ! cmp -s '$T/rail/feed.xml' '$T/rail/before.xml'"
run $R -t simplyhired -o - --min-rows 1
expect "--min-rows with stdout: exit 2 (what is written cannot be held back)" 2 "stdout is written as it goes"
ok "--min-rows with stdout: nothing written" test ! -s "$T/out"
run $R -t simplyhired -o "$T/rail/fresh.xml" --max-drop 1 -q
ok "--max-drop with no previous run: published" test "$rc" = 0
run $R -t simplyhired -o "$T/rail/e.xml" --query "$FEW AND 0" --min-rows 1
expect "an empty result with --min-rows 1: exit 7" 7 "0.*1"
ok "an empty result refused: nothing written" test ! -e "$T/rail/e.xml"

# ---- the lock and stale temporary files ----------------------------------------
mkdir -p "$T/lock"
SLOW=(env LD_PRELOAD="$INJECT" SQLFEED_INJECT_FSYNC_DELAY_MS=2500 SQLFEED_INJECT_FSYNC_MARK="$T/lock/mark")
"${SLOW[@]}" $R -t simplyhired -o "$T/lock/feed.xml" -q 2>"$T/lock/first.err" &
first=$!
for _ in $(seq 100); do [ -e "$T/lock/mark" ] && break; sleep 0.05; done
run $R -t simplyhired -o "$T/lock/feed.xml" --summary-json "$T/lock.json"
expect "a second run on the same output: exit 8, names the other run" 8 "another sqlfeed run \(PID $first\)"
wait $first; frc=$?
ok "the first run finishes and publishes" sh -c "[ $frc = 0 ] && cmp -s '$T/lock/feed.xml' '$T/plain.xml'"
ok "the refused run's --summary-json says busy, exit 8" $PY "$T/check_json.py" "$T/lock.json" 8:busy
rm -f "$T/lock/mark"
"${SLOW[@]}" $R -t simplyhired -o "$T/lock/feed.xml" -q --output "simplyhired=$T/lock/b.xml.gz" 2>/dev/null &
victim=$!
for _ in $(seq 100); do [ -e "$T/lock/mark" ] && break; sleep 0.05; done
kill -KILL $victim; wait $victim 2>/dev/null
ok "SIGKILL mid-commit leaves temporary files (the premise)" has_temp "$T/lock"
echo junk > "$T/lock/.feed.xml.sqlfeed-0badf00d"
run $R -t simplyhired -o "$T/lock/feed.xml" -q --output "simplyhired=$T/lock/b.xml.gz"
ok "the next run removes what the killed run left" sh -c "[ $rc = 0 ] && [ -z \"\$(find '$T/lock' -maxdepth 1 -name '.*.sqlfeed-*')\" ]"
ok "after SIGKILL: the feed is whole" cmp -s "$T/lock/feed.xml" "$T/plain.xml"

# ---- signals: every output cancelled ------------------------------------------------
mkdir -p "$T/sig"
previous "$T/sig/a.xml"; previous "$T/sig/b.xml"
rm -f "$T/sig/mark"
env LD_PRELOAD="$INJECT" SQLFEED_INJECT_FSYNC_DELAY_MS=1500 SQLFEED_INJECT_FSYNC_MARK="$T/sig/mark" \
    $R -t simplyhired -o "$T/sig/a.xml" --output "simplyhired=$T/sig/b.xml" 2>"$T/sig/err" &
pid=$!
for _ in $(seq 100); do [ -e "$T/sig/mark" ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid; src=$?
ok "SIGTERM before the first rename: exit 143" test "$src" = 143
ok "SIGTERM: neither output published" sh -c "[ \"\$(cat '$T/sig/a.xml')\" = 'previous feed' ] && [ \"\$(cat '$T/sig/b.xml')\" = 'previous feed' ]"
ok "SIGTERM: no temporary file" no_temp "$T/sig"
rm -f "$T/sig/mark"
env LD_PRELOAD="$INJECT" SQLFEED_INJECT_FSYNC_DELAY_MS=1500 SQLFEED_INJECT_FSYNC_DELAY_ON=dir \
    SQLFEED_INJECT_FSYNC_MARK="$T/sig/mark" \
    $R -t simplyhired -o "$T/sig/a.xml" --output "simplyhired=$T/sig/b.xml" 2>"$T/sig/err" &
pid=$!
for _ in $(seq 100); do [ -e "$T/sig/mark" ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid; src=$?
ok "SIGTERM after the first rename: the set is published, exit 0, said" \
    sh -c "[ $src = 0 ] && cmp -s '$T/sig/a.xml' '$T/plain.xml' && cmp -s '$T/sig/b.xml' '$T/plain.xml' && grep -q 'arrived after the outputs were published' '$T/sig/err'"
ok "SIGTERM after the first rename: no temporary file" no_temp "$T/sig"

rm -f "$T/sig/mark"
env LD_PRELOAD="$INJECT" SQLFEED_INJECT_FSYNC_DELAY_MS=1500 SQLFEED_INJECT_FSYNC_MARK="$T/sig/mark" \
    $R -t simplyhired -o "$T/sig/c.xml" --output "simplyhired=$T/sig/d.xml.gz" 2>"$T/sig/err" &
pid=$!
for _ in $(seq 100); do [ -e "$T/sig/mark" ] && break; sleep 0.05; done
# Under ASan a SIGSEGV is the sanitizer's (it reports and exits 1): SIGABRT there.
if [ "${SANITIZED:-0}" = 1 ]; then crash=ABRT; crash_rc=134; else crash=SEGV; crash_rc=139; fi
kill -$crash $pid; wait $pid 2>/dev/null; src=$?
ok "a crash (SIG$crash) mid-commit: dies by it, removes every temporary and lock file" \
    sh -c "[ $src = $crash_rc ] && [ -z \"\$(find '$T/sig' -maxdepth 1 -name '.c.xml.sqlfeed*' -o -maxdepth 1 -name '.d.xml.gz.sqlfeed*')\" ] && grep -q 'temporary files removed' '$T/sig/err'"

# ---- --summary-json: odd names, stdout, a usage failure, never a new file under /dev ----
ODD="$T/odd\"q\\$(printf '\001\377').xml"
run $R -t simplyhired -o "$ODD" -q --summary-json -
ok "--summary-json -: JSON on stdout, a name with a quote, a backslash, a control byte and a non-UTF-8 byte" \
    $PY -c "import json,sys; j=json.load(open(sys.argv[1], encoding='utf-8')); p=j['outputs'][0]['path']; assert j['exit']==0 and '\"q\\\\\x01\ufffd' in p, p" "$T/out"

run $R -t simplyhired -o "$T/u.xml" --index simplyhired --summary-json "$T/usage.json"
ok "--summary-json written for a usage error (exit 2)" $PY "$T/check_json.py" "$T/usage.json" 2:usage
if unshare --mount --propagation private true 2>/dev/null; then
    SF=$SF T=$T DB=$DB unshare --mount --propagation private bash -c '
        mount -t tmpfs -o mode=755 sqlfeed-test-dev /dev || exit 99
        mknod -m 666 /dev/null c 1 3
        "$SF" render --db "$DB" -t simplyhired -o "$T/d.xml" -q --summary-json /dev/new.json 2>"$T/sandbox.err"
        echo "rc=$?"; ls -A /dev' > "$T/sandbox.out" 2>&1
    ok "--summary-json /dev/NEW: exit 5, no file created in /dev" sh -c "grep -qx 'rc=5' '$T/sandbox.out' && ! grep -q new.json '$T/sandbox.out'"
    ok "--summary-json /dev/NEW: the message says why" grep -q "no file is created in /dev" "$T/sandbox.err"
    ok "--summary-json /dev/NEW: nothing published either" test ! -e "$T/d.xml"
else
    skip "--summary-json /dev/NEW" "no unshare --mount: not run against the real /dev"
fi

# ---- --sqlite-cache: SQLite's page cache, as the census counts it --------------
usage "--sqlite-cache below 64K" "--sqlite-cache needs a size from 64K to 1G" \
    -t simplyhired -o "$T/sc.xml" --sqlite-cache 32K
usage "--sqlite-cache not a size" "--sqlite-cache needs a size" \
    -t simplyhired -o "$T/sc.xml" --sqlite-cache lots
# sqlite_bytes ARGS...: SQLite's live bytes at the end of a render (--census)
sqlite_bytes() {
    $R -t simplyhired -o "$T/sc.xml" -q --census "$@" 2>&1 | awk '$1 == "sqlite" {print $3}'
}
small=$(sqlite_bytes --sqlite-cache 256K)
dflt=$(sqlite_bytes)
if [ -n "$small" ] && [ -n "$dflt" ] && [ "$small" -lt 1048576 ] && [ "$dflt" -gt 3145728 ]; then
    pass "--sqlite-cache 256K: SQLite holds under 1 MiB at the end; the default (4M) over 3 MiB"
else
    fail "--sqlite-cache" "sqlite bytes ${small:-?} with 256K, ${dflt:-?} by default"
fi
exit 0
