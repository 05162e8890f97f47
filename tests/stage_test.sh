#!/bin/bash
# stage_test.sh BUILD: compressed outputs through the command, checked with
# the standard tools: -o NAME.gz / NAME.zst (compression chosen by suffix)
# pass gzip -t / zstd -t and decompress to exactly the plain render, for an
# empty result, one row and 3,000 rows; an unknown suffix stays plain.
set -u
B=${1:?usage: stage_test.sh BUILD}
T=$(mktemp -d /tmp/sqlfeed-stage.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"

for tool in gzip zstd; do
    command -v $tool >/dev/null || { skip "$tool checks" "$tool not installed"; exit 0; }
done

for rows in 0 1 3000; do
    db=$T/jobs-$rows.db
    if ! "$B/sqlfeed" demo-db --rows $rows -o "$db" >"$T/err" 2>&1; then
        fail "demo-db --rows $rows" "$(cat "$T/err")"; continue
    fi
    if ! "$B/sqlfeed" render --db "$db" --template simplyhired -o "$T/plain.xml" --quiet 2>"$T/err"; then
        fail "plain render, $rows rows" "$(cat "$T/err")"; continue
    fi
    for c in gz zst; do
        out=$T/feed-$rows.xml.$c
        if ! "$B/sqlfeed" render --db "$db" --template simplyhired -o "$out" --quiet 2>"$T/err"; then
            fail "$c render, $rows rows" "$(cat "$T/err")"; continue
        fi
        if [ $c = gz ]; then tool=gzip; else tool=zstd; fi
        if $tool -t "$out" 2>"$T/err"; then pass "$rows rows: $tool -t accepts $(basename "$out")"
        else fail "$rows rows: $tool -t" "$(cat "$T/err")"; fi
        if $tool -dc "$out" 2>/dev/null | cmp -s - "$T/plain.xml"; then
            pass "$rows rows: $(basename "$out") decompresses to exactly the plain render"
        else fail "$rows rows: $(basename "$out")" "differs from the plain render"; fi
    done
    if find "$T" -maxdepth 1 -name '.*.sqlfeed-*' | grep -q .; then
        fail "$rows rows: no temporary file left" "$(ls -a "$T")"
    fi
done

# gzip -1's ratio at least, on a larger feed (ISA-L level 1 by default).
"$B/sqlfeed" demo-db --rows 20000 -o "$T/big.db" >/dev/null 2>&1
"$B/sqlfeed" render --db "$T/big.db" --template simplyhired -o "$T/big.xml" --quiet &&
"$B/sqlfeed" render --db "$T/big.db" --template simplyhired -o "$T/big.xml.gz" --quiet &&
"$B/sqlfeed" render --db "$T/big.db" --template simplyhired -o "$T/big.xml.zst" --quiet
ours=$(stat -c %s "$T/big.xml.gz"); theirs=$(gzip -1 -c "$T/big.xml" | wc -c)
if [ "$ours" -le "$theirs" ]; then pass "gzip default level: $ours bytes, gzip -1 $theirs"
else fail "gzip default level no larger than gzip -1" "$ours > $theirs"; fi
# zstd: on the 506 MB reference feed ours is 1.3 % smaller than zstd -3's;
# on this demo feed within 0.2 % either way (docs/sink.md): 1 % is the bound.
ours=$(stat -c %s "$T/big.xml.zst"); theirs=$(zstd -3 -c "$T/big.xml" | wc -c)
if [ "$ours" -le $((theirs + theirs / 100)) ]; then pass "zstd default level: $ours bytes, zstd -3 $theirs"
else fail "zstd default level within 1 % of zstd -3" "$ours > $theirs"; fi

# An unknown suffix stays plain.
"$B/sqlfeed" render --db "$T/jobs-1.db" --template simplyhired -o "$T/plain.xml" --quiet
"$B/sqlfeed" render --db "$T/jobs-1.db" --template simplyhired -o "$T/feed.xml.bz2" --quiet
if cmp -s "$T/feed.xml.bz2" "$T/plain.xml"; then pass "an unknown suffix (.bz2) is written plain"
else fail "an unknown suffix (.bz2) is written plain" "it is not the plain render"; fi
