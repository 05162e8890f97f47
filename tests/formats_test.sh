#!/bin/bash
# formats_test.sh BUILD: the built-in formats (templates/, docs/formats.md) checked by
# their real consumers, on SQLite and on the PostgreSQL and MariaDB test servers with the
# demo data: the same template and query (google-merchant: its query for that backend)
# give byte-identical output on all three; sitemap parts and index valid against
# sitemap.xsd / siteindex.xsd, RSS against rss-2_0.xsd, Atom against atom.rng (xmllint),
# RSS and Atom read by Python feedparser with no bozo and every date parsed (and what it
# forgives: check_feedparser.py), sitemaps, Merchant, Jooble and Indeed by checkers of their
# documented rules (tests/ref/check_*.py). Each check is shown to fail once on a broken copy
# of its feed, with its reason. Also the built-ins' row
# checks, the format defaults (split, gzip, index) and `sqlfeed templates`.
# Starts throwaway servers with tests/servers.sh unless SQLFEED_PG_URL (and
# SQLFEED_MY_URL) are set. Prints PASS/FAIL/SKIP lines.
set -u
B=${1:?usage: formats_test.sh BUILD}
SF=$B/sqlfeed
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$HERE/ref
SCH=$HERE/data/schemas
TPL=$HERE/../templates
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-formats.XXXXXX)
STARTED=""
cleanup() {
    [ -z "$STARTED" ] || "$HERE/servers.sh" stop "$STARTED" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
export SOURCE_DATE_EPOCH=1700000000 # lastBuildDate and the like: the same on every run

. "$HERE/lib.sh"
# okq NAME CMD...: ok, with CMD's output kept out of the log unless it fails
okq() {
    local name=$1; shift
    if "$@" >"$T/why" 2>&1; then pass "$name"
    else fail "$name" "$* failed: $(head -c 600 "$T/why" | tr '\n' ' ')"; fi
}
# have FILE NAME: FILE was rendered (else one FAIL stands for the checks of NAME)
have() {
    [ -s "$1" ] && return 0
    fail "$2: the checks of its feed" "$1 was not rendered"
    return 1
}

DB=$T/demo.db
"$SF" demo-db --rows 2000 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
NPROD=$(sqlite3 "$DB" 'SELECT count(*) FROM products')

# The child tables come from PRNG streams of their own: jobs and companies are what they
# were before them (the hash of a 500-row, seed-7 database made by the issue 8 build).
"$SF" demo-db --rows 500 --seed 7 -o "$T/g.db" 2>/dev/null
okq "demo-db: jobs and companies unchanged by the new tables" test \
    "$(sqlite3 "$T/g.db" 'SELECT * FROM jobs ORDER BY id; SELECT * FROM companies ORDER BY id' | md5sum)" \
    = "f8fe84de61f12a1dc28cf3b911147c6f  -"
okq "demo-db: 1-3 locations per job, every one with a city" test "$(sqlite3 "$T/g.db" \
    "SELECT min(n) || max(n) FROM (SELECT count(*) n FROM jobs j JOIN locations l ON l.job_id = j.id
     WHERE l.city <> '' GROUP BY j.id)")" = 13
okq "demo-db: 100 products (at least 100), 0-12 images each" test "$(sqlite3 "$T/g.db" \
    "SELECT count(*), min(n), max(n) FROM (SELECT p.id, count(i.pos) n FROM products p
     LEFT JOIN images i ON i.product_id = p.id GROUP BY p.id)")" = "100|0|12"

# ---- the servers ----------------------------------------------------------------------
backends=""
if [ -z "${SQLFEED_PG_URL:-}" ]; then
    if out=$("$HERE/servers.sh" start 2>"$T/servers.err"); then
        eval "$out"
        STARTED=$SQLFEED_SERVERS_DIR
    else
        fail "start the test servers" "$(tail -3 "$T/servers.err")"
    fi
fi
url() { case $1 in sqlite) echo "$DB" ;; pg) echo "$SQLFEED_PG_URL" ;; my) echo "$SQLFEED_MY_URL" ;; esac; }
for k in pg my; do
    [ $k = pg ] && [ -z "${SQLFEED_PG_URL:-}" ] && continue
    [ $k = my ] && [ -z "${SQLFEED_MY_URL:-}" ] && continue
    run "$SF" render --db "$(url $k)" --query 'SELECT 1 AS v' --template simplyhired -o "$T/x.xml"
    if grep -q "no backend for" "$T/err"; then skip "$k source" "not in this build"; continue; fi
    if "$REF/load_demo.sh" "$DB" "$(url $k)" >"$T/load.log" 2>&1; then
        pass "$k: the demo database loads (tests/ref/load_demo.sh)"
        backends="$backends $k"
    else
        fail "$k: the demo database loads (tests/ref/load_demo.sh)" "$(tail -3 "$T/load.log")"
    fi
done

# The parameters each built-in reads (names and URLs with characters to escape).
params() {
    case $1 in
    rss) P=(--param "channel_title=Just Jobs & Co" --param channel_link=https://www.justjobs.example/
            --param "channel_description=The newest jobs" --param "feed_url=https://www.justjobs.example/feeds/jobs.rss") ;;
    atom) P=(--param "feed_id=tag:justjobs.example,2026:jobs" --param "feed_title=Just Jobs & Co"
             --param site_url=https://www.justjobs.example/ --param "feed_url=https://www.justjobs.example/feeds/jobs.atom") ;;
    google-merchant) P=(--param "channel_title=Shop & Co" --param channel_link=https://shop.example/
                        --param "channel_description=Every product") ;;
    indeed) P=(--param "publisher=Just Jobs & Co" --param "publisherurl=https://www.justjobs.example/?a=1&b=2") ;;
    *) P=() ;;
    esac
}

# ---- every built-in, on every database: byte-identical ----------------------------------
FORMATS="rss atom google-merchant jooble indeed simplyhired"
for f in $FORMATS; do
    params $f
    run "$SF" render --db "$DB" -t $f -o "$T/sqlite-$f.xml" "${P[@]}"
    okq "$f: renders on SQLite" test "$rc" = 0
    [ "$rc" = 0 ] || sed 's/^/    /' "$T/err" | head -3
    for k in $backends; do
        run "$SF" render --db "$(url $k)" -t $f -o "$T/$k-$f.xml" "${P[@]}"
        okq "$f: renders on $k" test "$rc" = 0
        okq "$f: $k gives the same bytes as SQLite" cmp -s "$T/$k-$f.xml" "$T/sqlite-$f.xml"
    done
done

# ---- RSS 2.0 ------------------------------------------------------------------------------
F=$T/sqlite-rss.xml
if have "$F" rss; then
okq "rss: valid against rss-2_0.xsd" xmllint --noout --schema "$SCH/rss-2_0.xsd" "$F"
okq "rss: feedparser: no bozo, 100 entries, every date parsed" $PY "$REF/check_feedparser.py" "$F" 100
okq "rss: atom:link rel=self names the feed" grep -q '<atom:link href="https://www.justjobs.example/feeds/jobs.rss" rel="self"' "$F"
okq "rss: lastBuildDate is the run's time (SOURCE_DATE_EPOCH)" \
    grep -q '<lastBuildDate>Tue, 14 Nov 2023 22:13:20 +0000</lastBuildDate>' "$F"
sed '0,/<pubDate>[^<]*</s//<pubDate>2024-01-05</' "$F" > "$T/bad.xml"
okq "rss: the xsd refuses a pubDate that is not RFC 822 (the check can fail)" \
    sh -c "! xmllint --noout --schema '$SCH/rss-2_0.xsd' '$T/bad.xml' 2>/dev/null"
sed '0,/<pubDate>[^<]*</s//<pubDate>yesterday</' "$F" > "$T/bad.xml"
okq "rss: feedparser refuses an unparsable date (the check can fail)" \
    sh -c "! $PY '$REF/check_feedparser.py' '$T/bad.xml' 2>/dev/null"
head -c 5000 "$F" > "$T/bad.xml"
okq "rss: feedparser reports a cut feed as bozo (the check can fail)" \
    sh -c "! $PY '$REF/check_feedparser.py' '$T/bad.xml' 2>/dev/null"
# What feedparser and the xsd forgive, check_feedparser reads from the XML itself.
g=$(grep -o '<guid isPermaLink="false">[^<]*</guid>' "$F" | head -1)
awk -v g="$g" '/<item>/ && ++n == 2 { sub(/<guid isPermaLink="false">[^<]*<\/guid>/, g) } { print }' "$F" > "$T/bad.xml"
okq "rss: check_feedparser refuses a repeated guid (rss-2_0.xsd passes it)" \
    sh -c "xmllint --noout --schema '$SCH/rss-2_0.xsd' '$T/bad.xml' 2>/dev/null &&
           ! $PY '$REF/check_feedparser.py' '$T/bad.xml' 2>'$T/why2' && grep -q 'guid .* repeats item 1' '$T/why2'"
# 28 Dec 2024 is a Saturday: the weekday is computed, not read
sed '0,/<pubDate>[^<]*</s//<pubDate>Mon, 28 Dec 2024 10:00:00 +0000</' "$F" > "$T/bad.xml"
okq "rss: check_feedparser refuses a pubDate whose weekday is not the date's" \
    sh -c "xmllint --noout --schema '$SCH/rss-2_0.xsd' '$T/bad.xml' 2>/dev/null &&
           ! $PY '$REF/check_feedparser.py' '$T/bad.xml' 2>'$T/why2' && grep -q 'is a Sat, not a Mon' '$T/why2'"
# The template's unique reference: a query giving a job twice (UNION ALL) stops the run.
params rss
q="SELECT * FROM ($(sed 's/LIMIT 100/LIMIT 3/' "$TPL/rss.sql")) AS a UNION ALL SELECT * FROM ($(sed 's/LIMIT 100/LIMIT 3/' "$TPL/rss.sql")) AS b"
run "$SF" render --db "$DB" -t rss --query "$q" -o "$T/rss-dup.xml" "${P[@]}"
expect "rss: a repeated reference (its guid) fails the row (exit 9)" 9 "row 4: column reference: unique, 'JJ-[^']*' came before"
okq "rss: ... and nothing is published" test ! -e "$T/rss-dup.xml"
fi

# ---- Atom ---------------------------------------------------------------------------------
F=$T/sqlite-atom.xml
if have "$F" atom; then
okq "atom: valid against atom.rng" xmllint --noout --relaxng "$SCH/atom.rng" "$F"
okq "atom: feedparser: no bozo, 100 entries, every date parsed" $PY "$REF/check_feedparser.py" "$F" 100
okq "atom: the feed's updated is its newest entry's ({{#first}})" $PY - "$F" <<'EOF'
import sys, feedparser
d = feedparser.parse(sys.argv[1])
sys.exit(d.feed.updated_parsed != max(e.updated_parsed for e in d.entries) or
         d.feed.updated != d.entries[0].updated)
EOF
params atom
run "$SF" render --db "$DB" -t atom -o "$T/atom-empty.xml" "${P[@]}" \
    --query "$(sed "s/'justjobs'/'nosuchsite'/" "$TPL/atom.sql")"
okq "atom: no rows: updated is the run's time, still valid against atom.rng" \
    sh -c "[ $rc = 0 ] && grep -q '^<updated>2023-11-14T22:13:20Z</updated>' '$T/atom-empty.xml' &&
           xmllint --noout --relaxng '$SCH/atom.rng' '$T/atom-empty.xml'"
sed '0,/<updated>[^<]*<\/updated><link rel="alternate"/s//<link rel="alternate"/' "$F" > "$T/bad.xml"
okq "atom: atom.rng refuses an entry without updated (the check can fail)" \
    sh -c "! xmllint --noout --relaxng '$SCH/atom.rng' '$T/bad.xml' 2>/dev/null"
# What atom.rng and feedparser forgive (each copy still valid against atom.rng), read by
# check_feedparser from the XML: a repeated id, an updated without its zone, no author.
i=$(grep -o '<entry><id>[^<]*</id>' "$F" | head -1)
awk -v i="$i" '/<entry>/ && ++n == 2 { sub(/<entry><id>[^<]*<\/id>/, i) } { print }' "$F" > "$T/bad1.xml"
sed -E '0,/<entry>(.*)<updated>([^<Z]*)Z</s//<entry>\1<updated>\2</' "$F" > "$T/bad2.xml"
sed 's/<author><name>[^<]*<\/name><\/author>//' "$F" > "$T/bad3.xml"
n=1
for why in "id .* of entry 2 repeats entry 1" "entry 1 <updated>: .* is not an RFC 3339 date-time with a zone" \
           "no author on the feed, and none on entry 1"; do
    okq "atom: check_feedparser refuses: $why (atom.rng passes it)" \
        sh -c "xmllint --noout --relaxng '$SCH/atom.rng' '$T/bad$n.xml' 2>/dev/null &&
               ! $PY '$REF/check_feedparser.py' '$T/bad$n.xml' 2>'$T/why2' && grep -q '$why' '$T/why2'"
    n=$((n + 1))
done
fi

# ---- Google Merchant ------------------------------------------------------------------------
F=$T/sqlite-google-merchant.xml
if have "$F" google-merchant; then
okq "google-merchant: check_merchant.py passes ($NPROD products)" $PY "$REF/check_merchant.py" "$F"
# The demo's descriptions say "Size &lt;M&gt;", which .text decodes to the text "Size <M>":
# text, not an HTML element (check_merchant knows the elements). The broken copies below
# start from the same feed (FC).
FC=$F
okq "google-merchant: some descriptions hold '<M>' as text, and pass" grep -q 'Size &lt;M&gt;' "$F"
# refused FILE REASON: check_merchant fails on FILE and says REASON (a grep -E pattern)
refused() { ! $PY "$REF/check_merchant.py" "$1" 2>"$T/why2" && grep -qE -- "$2" "$T/why2"; }
okq "google-merchant: one item per product" test "$(grep -c '<item>' "$F")" = "$NPROD"
okq "google-merchant: some products have 10 additional images, none more" $PY - "$F" <<'EOF'
import sys, xml.etree.ElementTree as ET
n = [len(i.findall("{http://base.google.com/ns/1.0}additional_image_link"))
     for i in ET.parse(sys.argv[1]).getroot().iter("item")]
sys.exit(max(n) != 10)
EOF
okq "google-merchant: long titles and descriptions were cut to 150 and 5000" $PY - "$F" <<'EOF'
import sys, xml.etree.ElementTree as ET
items = list(ET.parse(sys.argv[1]).getroot().iter("item"))
sys.exit(not any(len(i.findtext("title")) == 150 for i in items) or
         not any(len(i.findtext("description")) == 5000 for i in items))
EOF
gid=$(grep -o '<g:id>[^<]*</g:id>' "$FC" | head -1)
awk -v id="$gid" '/<item>/ && ++n == 2 { sub(/<g:id>[^<]*<\/g:id>/, id) } { print }' "$FC" > "$T/bad.xml"
okq "google-merchant: check_merchant refuses a repeated g:id (the check can fail)" \
    refused "$T/bad.xml" "item 2: g:id .* repeats item 1"
sed '0,/<g:price>[0-9]*\.[0-9]*/s//<g:price>12.5/' "$FC" > "$T/bad.xml"
okq "google-merchant: check_merchant refuses a price without two decimals" \
    refused "$T/bad.xml" "item 1: g:price '12.5 [A-Z]{3}' is not like"
sed '0,/<link>https:\/\/shop.example\/p\//s//<link>https:\/\/shop.example\/p\/é/' "$FC" > "$T/bad.xml"
okq "google-merchant: check_merchant refuses a link that is not RFC 3986" \
    refused "$T/bad.xml" "item 1: link .*not an absolute RFC 3986"
# markup: a tag of any HTML element, a declaration (awk's sub: & written \\&)
for tag in p blockquote sup /code 'font color="red"' '!DOCTYPE x' 'br/'; do
    awk -v t="$tag" '/<item>/ && !n++ { sub(/<description>/, "<description>\\&lt;" t "\\&gt;") } { print }' "$FC" > "$T/bad.xml"
    okq "google-merchant: check_merchant refuses <$tag> in a description" \
        refused "$T/bad.xml" "item 1: description is not plain text: '<$tag>"
done
awk '/<item>/ && !n++ { sub(/<description>/, "<description>\\&amp;eacute;") } { print }' "$FC" > "$T/bad.xml"
okq "google-merchant: check_merchant refuses an entity left in a description" \
    refused "$T/bad.xml" "item 1: description is not plain text: '&eacute;"
awk '/<item>/ && !n++ { sub(/<g:availability>[^<]*/, "<g:availability>preorder") } { print }' "$FC" > "$T/bad.xml"
okq "google-merchant: check_merchant refuses preorder without a g:availability_date" \
    refused "$T/bad.xml" "item 1: g:availability 'preorder' without a g:availability_date"
# The row checks of the template: an availability outside the enum stops the run.
q=$(sed 's/p\.availability,/'"'in stock'"' AS availability,/' "$TPL/google-merchant.sql")
params google-merchant
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-bad.xml" "${P[@]}"
expect "google-merchant: an availability outside its enum fails the row (exit 9)" 9 \
    "row 1: column availability: .*in stock"
okq "google-merchant: ... and nothing is published" test ! -e "$T/gm-bad.xml"
# preorder and backorder need a g:availability_date the template does not write: not in its enum
q=$(sed 's/p\.availability,/'"'preorder'"' AS availability,/' "$TPL/google-merchant.sql")
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-bad.xml" "${P[@]}"
expect "google-merchant: preorder (no availability_date) fails the row (exit 9)" 9 \
    "row 1: column availability: enum in_stock\|out_of_stock, is 'preorder'"
# The currency: required and at most 3 characters in the template; that it is an upper-case
# ISO 4217 code is the data's to say, and check_merchant's price pattern checks it.
q=$(sed 's/p\.currency,/'"'EURO'"' AS currency,/' "$TPL/google-merchant.sql")
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-bad.xml" "${P[@]}"
expect "google-merchant: a currency of 4 characters fails the row (exit 9)" 9 \
    "row 1: column currency: max 3 characters, has 4"
q=$(sed 's/p\.currency,/NULL AS currency,/' "$TPL/google-merchant.sql")
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-bad.xml" "${P[@]}"
expect "google-merchant: a NULL currency fails the row (exit 9)" 9 "row 1: column currency: required, is NULL"
q=$(sed 's/p\.currency,/lower(p.currency) AS currency,/' "$TPL/google-merchant.sql")
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-lower.xml" "${P[@]}"
okq "google-merchant: a lower-case currency is published (the data's to get right)" \
    sh -c "[ $rc = 0 ] && grep -q '<g:price>[0-9.]* eur</g:price>' '$T/gm-lower.xml'"
okq "google-merchant: ... check_merchant refuses it" refused "$T/gm-lower.xml" "g:price '[0-9.]+ eur' is not like '12.50 EUR'"
# required description.text: the rule judges the description as published, and an HTML
# description that writes no text is refused (the column itself is not empty)
q=$(sed "s|p\.description,|CASE WHEN p.id = 2 THEN '<p>\&nbsp;</p><img src=\"x.jpg\">' ELSE p.description END AS description,|" \
    "$TPL/google-merchant.sql")
run "$SF" render --db "$DB" -t google-merchant --query "$q" -o "$T/gm-bad.xml" "${P[@]}"
expect "google-merchant: a description of <p>&nbsp;</p><img> writes no text: exit 9" 9 \
    "row 2: column description: required, is empty \(as description.text\)"
okq "google-merchant: ... and nothing is published" test ! -e "$T/gm-bad.xml"
fi

# ---- Jooble ---------------------------------------------------------------------------------
F=$T/sqlite-jooble.xml
if have "$F" jooble; then
want=$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE site = 'justjobs' AND is_active")
okq "jooble: check_jooble.py passes" $PY "$REF/check_jooble.py" "$F"
okq "jooble: one job per active job ($want)" test "$(grep -c '<job id=' "$F")" = "$want"
sed '0,/<pubdate><!\[CDATA\[[^]]*\]\]>/s//<pubdate><![CDATA[2024-06-22]]>/' "$F" > "$T/bad.xml"
okq "jooble: check_jooble refuses a date that is not DD.MM.YYYY (the check can fail)" \
    sh -c "! $PY '$REF/check_jooble.py' '$T/bad.xml' 2>/dev/null"
sed '0,/<name><!\[CDATA\[\([^]]*\)\]\]>/s//<name>Plain<\/name><x>/' "$F" | sed '0,/<x><\/name>/s///' > "$T/bad.xml"
okq "jooble: check_jooble refuses a value outside CDATA" \
    sh -c "! $PY '$REF/check_jooble.py' '$T/bad.xml' 2>/dev/null"
jid=$(grep -o '<job id="[0-9]*">' "$F" | sed -n 2p)
awk -v id="$jid" '/<job id=/ && !n++ { sub(/<job id="[0-9]*">/, id) } { print }' "$F" > "$T/bad.xml"
okq "jooble: check_jooble refuses a repeated id" \
    sh -c "! $PY '$REF/check_jooble.py' '$T/bad.xml' 2>/dev/null"
fi

# ---- Indeed: one job per location -------------------------------------------------------------
F=$T/sqlite-indeed.xml
if have "$F" indeed; then
want=$(sqlite3 "$DB" "SELECT count(*) FROM jobs j JOIN locations l ON l.job_id = j.id
                      WHERE j.site = 'justjobs' AND j.is_active")
okq "indeed: check_indeed.py passes (no empty city, unique referencenumbers)" $PY "$REF/check_indeed.py" "$F"
okq "indeed: one job per job and location ($want)" test "$(grep -c '<job>' "$F")" = "$want"
sed '0,/<city><!\[CDATA\[[^]]*\]\]>/s//<city><![CDATA[]]>/' "$F" > "$T/bad.xml"
okq "indeed: check_indeed refuses an empty city (the check can fail)" \
    sh -c "! $PY '$REF/check_indeed.py' '$T/bad.xml' 2>/dev/null"
ref=$(grep -o '<referencenumber><!\[CDATA\[[^]]*\]\]>' "$F" | head -1)
awk -v r="$ref" '/<job>/ && ++n == 2 { sub(/<referencenumber><!\[CDATA\[[^]]*\]\]>/, r) } { print }' "$F" > "$T/bad.xml"
okq "indeed: check_indeed refuses a repeated referencenumber" \
    sh -c "! $PY '$REF/check_indeed.py' '$T/bad.xml' 2>/dev/null"
sed '0,/<job><title><!\[CDATA\[[^]]*\]\]><\/title>/s//<job>/' "$F" |
    sed '0,/<referencenumber><!\[CDATA\[[^]]*\]\]><\/referencenumber>/s///' > "$T/bad.xml"
okq "indeed: check_indeed refuses a job without title and referencenumber (never a header)" \
    sh -c "! $PY '$REF/check_indeed.py' '$T/bad.xml' 2>'$T/why2' && grep -q 'job 1: <title> is missing' '$T/why2' &&
           grep -q 'job 1: <referencenumber> is missing' '$T/why2'"
params indeed
# url.url in CDATA: a URL with a non-ASCII character and a space is published percent-encoded
q=$(sed "s|j\.url,|'https://www.justjobs.example/jobs/é 1' AS url,|" "$TPL/indeed.sql")
run "$SF" render --db "$DB" -t indeed --query "$q" -o "$T/in-url.xml" "${P[@]}"
okq "indeed: a url with 'é ' is published percent-encoded, and check_indeed passes it" \
    sh -c "[ $rc = 0 ] && grep -q '<url><!\[CDATA\[https://www.justjobs.example/jobs/%C3%A9%201\]\]></url>' '$T/in-url.xml' &&
           $PY '$REF/check_indeed.py' '$T/in-url.xml' >/dev/null"
# referencenumber is reference-location_id: unique only because location_id is unique
# across the feed (the locations table's key). Locations numbered per job (1, 2, 3) repeat,
# though every referencenumber would differ: the rule says what it checks, and refuses them.
q=$(sed "s|l\.id AS location_id|(SELECT count(*) FROM locations l2 WHERE l2.job_id = l.job_id AND l2.id <= l.id) AS location_id|" "$TPL/indeed.sql")
run "$SF" render --db "$DB" -t indeed --query "$q" -o "$T/in-perjob.xml" "${P[@]}"
expect "indeed: location ids numbered per job fail (unique location_id, exit 9)" 9 \
    "row [0-9]+: column location_id: unique, '1' came before"
# The jobs table alone has NULL cities: the template's required city stops the run,
# and --on-invalid skip leaves those rows out.
q="SELECT j.reference, j.id AS location_id, j.title, j.url, j.city, j.state, j.postal_code,
          j.country, j.category, j.job_type, j.salary, j.description, j.posted_at,
          c.name AS company
   FROM jobs j JOIN companies c ON c.id = j.company_id
   WHERE j.site = 'justjobs' AND j.is_active = TRUE ORDER BY j.id"
nulls=$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE site = 'justjobs' AND is_active AND city IS NULL")
params indeed
run "$SF" render --db "$DB" -t indeed --query "$q" -o "$T/in-null.xml" "${P[@]}"
expect "indeed: a NULL city fails its row (exit 9, row and column named)" 9 "row [0-9]+: column city: required"
run "$SF" render --db "$DB" -t indeed --query "$q" -o "$T/in-null.xml" "${P[@]}" --on-invalid skip
okq "indeed: --on-invalid skip leaves the $nulls rows with no city out" \
    sh -c "[ $rc = 0 ] && $PY '$REF/check_indeed.py' '$T/in-null.xml' >/dev/null"
fi

# ---- SimplyHired (kept) -----------------------------------------------------------------------
okq "simplyhired: well-formed" xmllint --noout "$T/sqlite-simplyhired.xml"

# ---- sitemap: parts and index by the format's defaults ----------------------------------------
BASE=https://shop.example/sitemaps/
for k in sqlite $backends; do
    mkdir -p "$T/sm-$k"
    run "$SF" render --db "$(url $k)" -t sitemap -o "$T/sm-$k/sitemap.xml" --split-rows 60 --base-url "$BASE"
    okq "sitemap: $k renders parts and an index" test "$rc" = 0
    [ "$rc" = 0 ] || sed 's/^/    /' "$T/err" | head -3
    # what every database must give alike: the parts' documents in order, and the index
    # with the run's tag in the part names taken out
    for p in $(ls "$T/sm-$k"/sitemap-*.xml.gz 2>/dev/null | sort); do gzip -dc "$p"; done > "$T/sm-$k.parts"
    sed -E 's/sitemap-[^-<]+-([0-9]{4})\.xml\.gz/sitemap-TAG-\1.xml.gz/g' "$T/sm-$k/sitemap.xml" > "$T/sm-$k.index" 2>/dev/null
done
if have "$T/sm-sqlite/sitemap.xml" sitemap; then
parts=$(ls "$T/sm-sqlite"/sitemap-*.xml.gz 2>/dev/null | wc -l)
okq "sitemap: --split-rows 60 over $NPROD products gives $(( (NPROD + 59) / 60 )) gzip parts" \
    test "$parts" = $(( (NPROD + 59) / 60 ))
bad=0
for p in "$T/sm-sqlite"/sitemap-*.xml.gz; do
    gzip -t "$p" 2>/dev/null || bad=1
    gzip -dc "$p" > "$T/part.xml" && xmllint --noout --schema "$SCH/sitemap.xsd" "$T/part.xml" 2>/dev/null || bad=1
done
okq "sitemap: every part is gzip and valid against sitemap.xsd" test "$parts" -gt 0 -a $bad = 0
okq "sitemap: the index is valid against siteindex.xsd" \
    xmllint --noout --schema "$SCH/siteindex.xsd" "$T/sm-sqlite/sitemap.xml"
# index_ok DIR BASE: the index DIR/sitemap.xml names each part under BASE, and its lastmod
# is the instant of the part's newest lastmod, parsed here (not the largest text)
index_ok() {
    $PY - "$1" "$2" "$REF" <<'EOF'
import gzip, os, sys, xml.etree.ElementTree as ET
d, base = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from feedcheck import w3cdtf
N = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
idx = ET.parse(os.path.join(d, "sitemap.xml")).getroot().findall(N + "sitemap")
files = sorted(f for f in os.listdir(d) if f.endswith(".xml.gz"))
assert [s.findtext(N + "loc") for s in idx] == [base + f for f in files], "locs"
for s, f in zip(idx, files):
    urls = ET.parse(gzip.open(os.path.join(d, f))).getroot().findall(N + "url")
    newest = max(w3cdtf(u.findtext(N + "lastmod")) for u in urls)
    assert w3cdtf(s.findtext(N + "lastmod")) == newest, (f, s.findtext(N + "lastmod"), newest)
EOF
}
okq "sitemap: the index names each part under --base-url, with the part's newest lastmod" \
    index_ok "$T/sm-sqlite" "$BASE"
okq "sitemap: check_sitemap passes the parts and the index (locs, W3C-DTF lastmods)" \
    $PY "$REF/check_sitemap.py" "$T/sm-sqlite"/sitemap-*.xml.gz "$T/sm-sqlite/sitemap.xml"
# Zones differ: 10:00+02:00 is 08:00Z, before 09:00Z, though its text sorts after; a date is
# midnight UTC. The index must name each part's newest instant.
mkdir -p "$T/sm-zones"
run "$SF" render --db "$DB" -t sitemap -o "$T/sm-zones/sitemap.xml" --split-rows 3 --base-url "$BASE" --query \
    "SELECT 'https://a.example/1' AS loc, '2026-01-31T10:00:00+02:00' AS lastmod
     UNION ALL SELECT 'https://a.example/2', '2026-01-31 09:00:00'
     UNION ALL SELECT 'https://a.example/3', '2026-01-30'
     UNION ALL SELECT 'https://a.example/4', '2026-01-31T11:59:59+03:00'"
okq "sitemap: lastmods in several zones: the index has each part's newest instant" \
    sh -c "[ $rc = 0 ] && [ \$(grep -c '<lastmod>' '$T/sm-zones/sitemap.xml') = 2 ] &&
           grep -q '<lastmod>2026-01-31T09:00:00Z</lastmod>' '$T/sm-zones/sitemap.xml'"
okq "sitemap: ... and the independent check agrees" index_ok "$T/sm-zones" "$BASE"
# the check can fail: an index whose lastmod is the part's largest text, not its newest instant
sed 's|<lastmod>2026-01-31T09:00:00Z</lastmod>|<lastmod>2026-01-31T10:00:00+02:00</lastmod>|' \
    "$T/sm-zones/sitemap.xml" > "$T/sm-zones/bad.xml" && mv "$T/sm-zones/bad.xml" "$T/sm-zones/sitemap.xml"
if index_ok "$T/sm-zones" "$BASE" 2>/dev/null; then
    fail "sitemap: the index check refuses the largest text as the newest (the check can fail)" "it passed"
else pass "sitemap: the index check refuses the largest text as the newest (the check can fail)"; fi
okq "sitemap: every loc is an absolute RFC 3986 URL (non-ASCII percent-encoded)" \
    $PY - "$T/sm-sqlite.parts" "$REF" <<'EOF'
import re, sys
sys.path.insert(0, sys.argv[2])
from feedcheck import url_problem
locs = re.findall(r"<loc>([^<]*)</loc>", open(sys.argv[1], encoding="utf-8").read())
bad = [u for u in locs if url_problem(u.replace("&amp;", "&"))]
sys.exit(bool(bad) or not any("%C3%A9" in u for u in locs))
EOF
for k in $backends; do
    okq "sitemap: $k parts are the same documents as SQLite's" cmp -s "$T/sm-$k.parts" "$T/sm-sqlite.parts"
    okq "sitemap: $k index is the same as SQLite's (but for the run's tag)" cmp -s "$T/sm-$k.index" "$T/sm-sqlite.index"
done
gzip -dc "$(ls "$T/sm-sqlite"/sitemap-*.xml.gz | head -1)" |
    sed '0,/<lastmod>[^<]*</s//<lastmod>2024-05-01 10:00:00</' > "$T/bad.xml"
okq "sitemap: sitemap.xsd refuses a lastmod that is not W3C-DTF (the check can fail)" \
    sh -c "! xmllint --noout --schema '$SCH/sitemap.xsd' '$T/bad.xml' 2>/dev/null"
# The T form without a zone is an xsd:dateTime, so sitemap.xsd takes it; W3C-DTF does not.
gzip -dc "$(ls "$T/sm-sqlite"/sitemap-*.xml.gz | head -1)" |
    sed '0,/<lastmod>[^<]*</s//<lastmod>2024-05-01T10:00:00</' > "$T/bad.xml"
okq "sitemap: check_sitemap refuses a zone-less 2024-05-01T10:00:00 (sitemap.xsd passes it)" \
    sh -c "xmllint --noout --schema '$SCH/sitemap.xsd' '$T/bad.xml' 2>/dev/null &&
           ! $PY '$REF/check_sitemap.py' '$T/bad.xml' 2>'$T/why2' && grep -q 'is not W3C-DTF' '$T/why2'"
sed '0,/<loc>[^<]*<\/loc>/s///' "$T/sm-sqlite/sitemap.xml" > "$T/bad.xml"
okq "sitemap: siteindex.xsd refuses an entry without loc (the check can fail)" \
    sh -c "! xmllint --noout --schema '$SCH/siteindex.xsd' '$T/bad.xml' 2>/dev/null"
fi
# max loc.url 2048 counts the URL as published: 1,023 'é' are 1,044 characters in the
# database (under 2048) and 6,159 percent-encoded
q="SELECT 'https://shop.example/' || (WITH RECURSIVE r(n, s) AS (SELECT 0, '' UNION ALL
   SELECT n + 1, s || 'é' FROM r WHERE n < 1023) SELECT s FROM r WHERE n = 1023) AS loc, NULL AS lastmod"
run "$SF" render --db "$DB" -t sitemap --query "$q" -o -
expect "sitemap: a loc of 1,023 'é' is refused once encoded (max loc.url 2048, exit 9)" 9 \
    "row 1: column loc: max 2048 characters, has 6159 \(as loc.url\)"
run "$SF" render --db "$DB" -t sitemap -o "$T/sm-nobase.xml"
expect "sitemap: its default index needs --base-url (exit 2, says so)" 2 "give --base-url URL"
run "$SF" render --db "$DB" -t sitemap -o -
okq "sitemap: -o - is one plain document (no defaults), valid against sitemap.xsd" \
    sh -c "[ $rc = 0 ] && xmllint --noout --schema '$SCH/sitemap.xsd' '$T/out' 2>/dev/null"
mkdir -p "$T/sm-own"
run "$SF" render --db "$DB" -t sitemap -o "$T/sm-own/s-%d.xml" --split-rows 100
okq "sitemap: parts the user names get neither the default index nor gzip" \
    sh -c "[ $rc = 0 ] && [ -s '$T/sm-own/s-1.xml' ] && ! ls '$T/sm-own' | grep -q -v '^s-[0-9]*\.xml$'"

# A copy of a built-in keeps its defaults; a bad default is the template's error.
"$SF" templates --show sitemap > "$T/my-sitemap.mustache"
mkdir -p "$T/sm-copy"
run "$SF" render --db "$DB" -t "$T/my-sitemap.mustache" --query-file "$TPL/sitemap.sql" \
    -o "$T/sm-copy/sitemap.xml" --base-url "$BASE" --split-rows 150
okq "sitemap: a copy (--show) keeps its defaults: gzip parts and an index" \
    sh -c "[ $rc = 0 ] && [ \$(ls '$T/sm-copy' | grep -c '^sitemap-.*-000[12]\.xml\.gz\$') = 2 ] &&
           grep -q '<sitemapindex' '$T/sm-copy/sitemap.xml'"
printf '{{! sqlfeed-defaults: split-rows=10 colour=red }}\n<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/bad-defaults.mustache"
run "$SF" render --db "$DB" --query 'SELECT 1 AS v' -t "$T/bad-defaults.mustache" -o "$T/bd.xml"
expect "sqlfeed-defaults: an unknown key is a template error (exit 3)" 3 \
    "bad-defaults.mustache: sqlfeed-defaults: 'colour=red' is not KEY=VALUE"
printf '{{! sqlfeed-defaults: split-rows=2 }}\n<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/two.mustache"
mkdir -p "$T/two"
run "$SF" render --db "$DB" --query 'SELECT id AS v FROM jobs WHERE id <= 5' -t "$T/two.mustache" -o "$T/two/r.xml"
okq "sqlfeed-defaults: split-rows of a template file splits its output" \
    sh -c "[ $rc = 0 ] && ls '$T/two' | grep -q '^r-0003.xml\$' && ! ls '$T/two' | grep -q 0004"
run "$SF" render --db "$DB" --query 'SELECT id AS v FROM jobs WHERE id <= 5' -t "$T/two.mustache" -o "$T/two/s.xml" --split-rows 5
okq "sqlfeed-defaults: the user's own option wins" sh -c "[ $rc = 0 ] && ls '$T/two' | grep -q '^s-0001.xml\$' && ! ls '$T/two' | grep -q '^s-0002'"

# ---- sqlfeed templates ------------------------------------------------------------------------
run "$SF" templates
for f in sitemap sitemap-index rss atom google-merchant jooble indeed simplyhired; do
    okq "templates lists $f" grep -q "^$f\$" "$T/out"
done
okq "templates: the sitemap's checks and defaults" \
    sh -c "grep -q 'checks: required loc; max loc.url 2048' '$T/out' && grep -q 'defaults: split-rows=50000 split-bytes=50M compress=gzip index=sitemap-index' '$T/out'"
okq "templates: atom's head reads posted_at of the first row: a column, not a parameter" \
    sh -c "grep -A3 '^atom\$' '$T/out' | grep -q '^  columns: posted_at, reference' &&
           grep -A3 '^atom\$' '$T/out' | grep -q '^  parameters: feed_id, feed_title, feed_url, site_url\$'"
okq "templates: google-merchant has a query per backend" grep -q "google-merchant.pg.sql, google-merchant.my.sql" "$T/out"
okq "templates: says where the installed copies are" grep -q "^Installed copies (make install): /.*/share/sqlfeed/templates$" "$T/out"
run "$SF" templates --show atom
okq "templates --show atom prints templates/atom.mustache" cmp -s "$T/out" "$TPL/atom.mustache"
run "$SF" templates --show google-merchant.pg.sql
okq "templates --show NAME.pg.sql prints PostgreSQL's query" cmp -s "$T/out" "$TPL/google-merchant.pg.sql"
run "$SF" templates --show rss.my.sql
okq "templates --show NAME.my.sql of a portable query prints NAME.sql" cmp -s "$T/out" "$TPL/rss.sql"
run "$SF" templates --show nosuch
expect "templates --show an unknown name: exit 2" 2 "no built-in template 'nosuch'"
