#!/bin/bash
# census_test.sh BUILD: the memory census of a running render (SIGUSR1, the
# census FIFO, --census), the mem-log and its chart, the flatness verdict, the
# memory budget, and the progress line with and without a terminal.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: census_test.sh BUILD}
SF=$B/sqlfeed
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-census.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
unset SOURCE_DATE_EPOCH

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }
ok() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_for FILE REGEX MS: until FILE matches REGEX, at most MS milliseconds
wait_for() {
    local end=$(( $(ms) + $3 ))
    while [ "$(ms)" -lt $end ]; do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.005; done
    return 1
}
# census_adds_up FILE: in every census of FILE the type rows sum to the total
census_adds_up() {
    awk '/^sqlfeed: census at/ {inb = 1; n = 0; c = 0; next}
         inb && /^  type / {next}
         inb && /^  tracked total/ {if ($3 != c || $4 != n) bad = 1; seen++; inb = 0; next}
         inb {c += $(NF-3); n += $(NF-2)}
         END {exit !(seen > 0 && !bad)}' "$1"
}

DB=$T/jobs.db
"$SF" demo-db --rows 20000 -o "$DB" 2>/dev/null || { fail "demo-db" "cannot make $DB"; exit 1; }
printf '<r>{{#rows}}<v>{{v}}</v>{{/rows}}</r>\n' > "$T/v.mustache"

# ---- SIGUSR1 while the database works (no row yet): answered within 200 ms --------
SORT="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000)
      SELECT x AS v FROM c ORDER BY random() LIMIT 3"
"$SF" render --db "$DB" --query "$SORT" --template "$T/v.mustache" -o "$T/sort.xml" 2>"$T/err1" &
pid=$!
for _ in $(seq 200); do
    [ -n "$(find "$T" -maxdepth 1 -name '.sort.xml.sqlfeed-*')" ] && break
    sleep 0.01
done
sleep 0.2
t0=$(ms); kill -USR1 $pid
if wait_for "$T/err1" "^sqlfeed: census at .* row 0 \(SIGUSR1\)" 1000; then
    dt=$(( $(ms) - t0 ))
    if [ $dt -le 200 ]; then pass "SIGUSR1 while the query sorts: census in $dt ms"
    else fail "SIGUSR1 while the query sorts" "census took $dt ms (limit 200)"; fi
else
    fail "SIGUSR1 while the query sorts" "no census: $(head -c 300 "$T/err1")"
fi
wait $pid; rc=$?
ok "SIGUSR1 does not stop the render" test $rc = 0
ok "census while sorting: type rows add up to the tracked total" census_adds_up "$T/err1"
ok "census names heap, RSS and the untracked remainder" \
    grep -qE "heap in use \(mallinfo2\)(:| [0-9]+ .* untracked) .*RSS [0-9]+" <(tr '\n' ' ' < "$T/err1")

# ---- SIGUSR1 during a long render: the output is unaffected ---------------------
LONG="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) SELECT x AS v FROM c"
"$SF" render --db "$DB" --query "$LONG" --template "$T/v.mustache" -o "$T/quiet.xml" -q
"$SF" render --db "$DB" --query "$LONG" --template "$T/v.mustache" -o "$T/usr1.xml" 2>"$T/err2" &
pid=$!
# Only once it runs: before main() blocks SIGUSR1 its default action kills.
for _ in $(seq 200); do
    [ -n "$(find "$T" -maxdepth 1 -name '.usr1.xml.sqlfeed-*')" ] && break
    sleep 0.01
done
sent=0
for _ in $(seq 40); do
    kill -USR1 $pid 2>/dev/null || break
    sent=$((sent + 1))
    sleep 0.05
done
wait $pid; rc=$?
n=$(grep -c '^sqlfeed: census at' "$T/err2")
ok "censuses during a render: $n printed for $sent signals, exit 0" test $rc = 0 -a "$n" -ge 1
ok "censuses during a render add up" census_adds_up "$T/err2"
ok "censuses show a growing row count" \
    sh -c "grep -oE '^sqlfeed: census at [0-9.]+ s, row [0-9]+' '$T/err2' | awk '{print \$7}' | sort -n -c"
ok "output with censuses is byte-identical to one without" cmp -s "$T/quiet.xml" "$T/usr1.xml"

# ---- the census FIFO, for supervisors that swallow signals ------------------------
"$SF" render --db "$DB" --query "$SORT" --template "$T/v.mustache" -o "$T/fifo.xml" \
    --census-fifo "$T/census.fifo" 2>"$T/err3" &
pid=$!
for _ in $(seq 100); do [ -p "$T/census.fifo" ] && break; sleep 0.01; done
echo > "$T/census.fifo"
ok "a line written to --census-fifo prints the census" wait_for "$T/err3" "\(census FIFO\)" 1000
wait $pid
ok "--census-fifo: the FIFO it made is removed at the end" test ! -e "$T/census.fifo"
touch "$T/notafifo"
"$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/x.xml" \
    --census-fifo "$T/notafifo" 2>"$T/err"; rc=$?
ok "--census-fifo on a regular file: exit 2" sh -c "[ $rc = 2 ] && grep -q 'is not a FIFO' '$T/err'"

# ---- --census at the end, the verdict, the mem-log and its chart -------------------
"$SF" render --db "$DB" --template simplyhired -o "$T/sh.xml" --census --mem-log "$T/mem.jsonl" 2>"$T/err4"
ok "--census prints one census at the end" test "$(grep -c '(end of run)' "$T/err4")" = 1
ok "--census at the end adds up" census_adds_up "$T/err4"
ok "the census counts SQLite's memory" grep -qE "^  sqlite +[1-9][0-9]* +[1-9]" "$T/err4"
cat > "$T/check_log.py" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) >= 2, "fewer than 2 lines"
assert lines[-1]["final"] is True and not any(l["final"] for l in lines[:-1]), "final flags"
for a, b in zip(lines, lines[1:-1]):
    assert b["t"] - a["t"] >= 0.09, f"lines {b['t'] - a['t']:.3f} s apart (more than 10/s)"
for l in lines:
    assert l["tracked"] == sum(l["types"].values()), "types do not add up to tracked"
    assert l["rss"] > 0 and l["heap"] >= 0, "rss or heap missing"
assert lines[-1]["rows"] == int(sys.argv[2]), f"last line rows {lines[-1]['rows']} != {sys.argv[2]}"
EOF
rows=$(grep -c '<job>' <(sed 's/<job>/\n<job>/g' "$T/sh.xml"))
ok "--mem-log: JSON lines, at most 10/s, a final line with every row, types add up" \
    $PY "$T/check_log.py" "$T/mem.jsonl" "$rows"
"$SF" mem-plot "$T/mem.jsonl" -o "$T/mem.svg" 2>"$T/err"
ok "mem-plot writes a well-formed SVG" xmllint --noout "$T/mem.svg"
ok "mem-plot: two series, labelled axes, a legend" \
    sh -c "[ \$(grep -c '<polyline' '$T/mem.svg') = 2 ] && grep -q 'rows done' '$T/mem.svg' && grep -q 'memory (MiB)' '$T/mem.svg' && grep -q 'tracked by the census' '$T/mem.svg'"
cp "$T/mem.jsonl" "$T/mem-copy.jsonl"
"$SF" mem-plot "$T/mem.jsonl" -o "$T/mem.jsonl" 2>"$T/err"; rc=$?
ok "mem-plot -o naming its own log is refused (exit 2) and the log is kept" \
    sh -c "[ $rc = 2 ] && grep -q 'same file as LOG' '$T/err' && cmp -s '$T/mem.jsonl' '$T/mem-copy.jsonl'"
printf 'not json\n' > "$T/bad.jsonl"
"$SF" mem-plot "$T/bad.jsonl" -o "$T/bad.svg" 2>"$T/err"; rc=$?
ok "mem-plot on a file that is not a mem-log: exit 2, names the line" \
    sh -c "[ $rc = 2 ] && grep -q 'bad.jsonl:1 is not a --mem-log line' '$T/err' && [ ! -e '$T/bad.svg' ]"

if [ "${SANITIZED:-0}" = 1 ]; then
    skip "200,000-row render is flat" "RSS not judged under sanitizers"
else
    big=$B/testdata/demo-200000.db
    [ -s "$big" ] || { mkdir -p "$B/testdata"; "$SF" demo-db --rows 200000 -o "$big" 2>/dev/null; }
    "$SF" render --db "$big" --template simplyhired -o "$T/big.xml" 2>"$T/err5"
    ok "200,000-row render: the summary's verdict is flat" grep -q ", memory flat (RSS " "$T/err5"
    rm -f "$T/big.xml"
fi

# ---- the memory budget -----------------------------------------------------------
echo "previous feed" > "$T/keep.xml"
"$SF" render --db "$DB" --template simplyhired -o "$T/keep.xml" --max-memory 1M 2>"$T/err6"; rc=$?
ok "--max-memory 1M: exit 6" test $rc = 6
ok "--max-memory 1M: says so, with the type that grew most" \
    grep -qE "^sqlfeed: memory budget exceeded: RSS [0-9.]+ MiB > --max-memory 1.0 MiB after row [0-9]+; grew most: [a-z ]+ \(\+[0-9.]+ [KMG]?i?B since the start\); nothing published" "$T/err6"
ok "--max-memory 1M: prints the census" grep -q "(memory budget exceeded)" "$T/err6"
stopped=$(sed -n 's/^sqlfeed: memory budget exceeded: .* after row \([0-9]*\);.*/\1/p' "$T/err6")
all=$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE site = 'justjobs' AND is_active")
ok "--max-memory 1M: the render stopped early (row ${stopped:-?} of $all)" \
    sh -c "[ -n '$stopped' ] && [ '$stopped' -lt '$all' ]"
ok "--max-memory 1M: previous output kept, no temporary file" \
    sh -c "[ \"\$(cat '$T/keep.xml')\" = 'previous feed' ] && ! ls -a '$T' | grep -q 'sqlfeed-'"
"$SF" render --db "$DB" --template simplyhired -o "$T/ok.xml" --max-memory 1G -q; rc=$?
ok "--max-memory 1G: renders" test $rc = 0
"$SF" render --db "$DB" --template simplyhired -o "$T/ok.xml" --max-memory lots 2>"$T/err"; rc=$?
ok "--max-memory lots: exit 2" sh -c "[ $rc = 2 ] && grep -q 'needs a size like 64M' '$T/err'"

# A spike that comes and goes between two samples still counts (peak RSS).
echo "previous feed" > "$T/keep.xml"
"$SF" render --db "$DB" --query "SELECT hex(randomblob(5000000)) AS v" --template "$T/v.mustache" \
    -o "$T/keep.xml" --max-memory 20M 2>"$T/err"; rc=$?
ok "--max-memory: a short spike is caught (exit 6, nothing published)" \
    sh -c "[ $rc = 6 ] && [ \"\$(cat '$T/keep.xml')\" = 'previous feed' ]"
# The message and the census printed under it count rows alike.
agree() { # agree FILE: "after row N" in the budget message, "rows N" in its census
    local a b
    a=$(sed -n 's/^sqlfeed: memory budget exceeded: .* after row \([0-9]*\);.*/\1/p' "$1")
    b=$(sed -n 's/^  rows \([0-9]*\) (.*/\1/p' "$1" | tail -1)
    [ -n "$a" ] && [ "$a" = "$b" ]
}
ok "--max-memory, a spike in the first row: the message and the census name the same row count" agree "$T/err"
ok "--max-memory 1M: the message and the census name the same row count" agree "$T/err6"
sqlite3 "$T/huge.db" "CREATE TABLE t(v); INSERT INTO t SELECT replace(hex(zeroblob(20000000)), '0', 'x');" 2>/dev/null
"$SF" render --db "$T/huge.db" --query 'SELECT v FROM t' --template "$T/v.mustache" \
    -o "$T/keep.xml" --max-memory 24M 2>"$T/err"; rc=$?
ok "--max-memory 24M, one 40 MB row: exit 6, message and census agree on the rows" sh -c "[ $rc = 6 ] && agree() { a=\$(sed -n 's/^sqlfeed: memory budget exceeded: .* after row \([0-9]*\);.*/\1/p' '$T/err'); b=\$(sed -n 's/^  rows \([0-9]*\) (.*/\1/p' '$T/err' | tail -1); [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]; }; agree"
[ $rc = 6 ] || echo "  (exit $rc: $(head -c 300 "$T/err"))"
rm -f "$T/huge.db"
# A census with too few rows sampled says nothing about growth, as the summary.
"$SF" render --db "$DB" --query 'SELECT 1 AS v' --template "$T/v.mustache" -o "$T/ok.xml" --census 2>"$T/err"; rc=$?
ok "--census of a one-row run: no 'memory: unknown' line" sh -c "[ $rc = 0 ] && grep -q '(end of run)' '$T/err' && ! grep -q 'unknown' '$T/err'"
"$SF" render --db "$DB" --template simplyhired -o "$T/ok.xml" --max-memory nan 2>"$T/err"; rc=$?
ok "--max-memory nan: exit 2" test $rc = 2

# ---- while --count counts ----------------------------------------------------------
"$SF" render --db "$DB" --query "$SORT" --template "$T/v.mustache" -o "$T/cnt.xml" --count 2>"$T/err9" &
pid=$!
for _ in $(seq 200); do
    [ -n "$(find "$T" -maxdepth 1 -name '.cnt.xml.sqlfeed-*')" ] && break
    sleep 0.01
done
sleep 0.2
t0=$(ms); kill -USR1 $pid
if wait_for "$T/err9" "\(SIGUSR1\)" 1000; then
    dt=$(( $(ms) - t0 ))
    if [ $dt -le 200 ]; then pass "SIGUSR1 while --count counts: census in $dt ms"
    else fail "SIGUSR1 while --count counts" "census took $dt ms (limit 200)"; fi
else
    fail "SIGUSR1 while --count counts" "no census"
fi
t0=$(ms); kill -INT $pid; wait $pid; rc=$?; dt=$(( $(ms) - t0 ))
ok "SIGINT while --count counts: stops in $dt ms, exit 130" sh -c "[ $rc = 130 ] && [ $dt -lt 1000 ]"
ok "SIGINT while --count counts: no temporary file" sh -c "! ls -a '$T' | grep -q 'cnt.xml.sqlfeed-'"
"$SF" render --db "$DB" --query "$SORT" --template "$T/v.mustache" -o "$T/cnt.xml" --count \
    --mem-log "$T/no/such/dir/m.jsonl" 2>"$T/err"; rc=$?
ok "--mem-log in a missing directory: exit 5, before counting" \
    sh -c "[ $rc = 5 ] && grep -q 'cannot open $T/no/such/dir/m.jsonl' '$T/err'"
"$SF" render --db "$DB" --template simplyhired -o "$T/ok.xml" --mem-log /dev/full 2>"$T/err"; rc=$?
ok "--mem-log on a full disk: a warning, the feed still published" \
    sh -c "[ $rc = 0 ] && grep -q 'warning: --mem-log /dev/full: write failed' '$T/err'"
"$SF" render --db "$DB" --query 'SELECT :nope AS v' --template "$T/v.mustache" -o "$T/ok.xml" --census 2>"$T/err"; rc=$?
ok "--census prints the census of a failed run too" \
    sh -c "[ $rc = 3 ] && grep -q '(end of a failed run)' '$T/err'"
SQLFEED_CENSUS=off "$SF" render --db "$DB" --template simplyhired -o "$T/ok.xml" 2>"$T/err"; rc=$?
ok "SQLFEED_CENSUS=off: renders, says memory was not watched" \
    sh -c "[ $rc = 0 ] && grep -q 'memory not watched (SQLFEED_CENSUS=off)' '$T/err'"

# ---- mem-plot on logs it must refuse --------------------------------------------
: > "$T/empty.jsonl"
head -n 1 "$T/mem.jsonl" > "$T/one.jsonl"
{ head -n 1 "$T/mem.jsonl"; sed 's/"rows":[0-9]*/"rows":1e309/' "$T/mem.jsonl" | tail -n 1; } > "$T/inf.jsonl"
{ head -n 1 "$T/mem.jsonl"; sed 's/"rss":[0-9]*/"rss":nan/' "$T/mem.jsonl" | tail -n 1; } > "$T/nan.jsonl"
cat "$T/mem.jsonl" "$T/mem.jsonl" > "$T/two.jsonl"
for f in empty one inf nan two; do
    timeout 10 "$SF" mem-plot "$T/$f.jsonl" -o "$T/$f.svg" 2>"$T/err"; rc=$?
    ok "mem-plot refuses a log that is $f: exit 2, no chart" sh -c "[ $rc = 2 ] && [ ! -e '$T/$f.svg' ]"
done
ok "mem-plot on two runs in one log says so" grep -q "rows go back" "$T/err"

# ---- progress --------------------------------------------------------------------
"$SF" render --db "$DB" --template simplyhired -o "$T/p.xml" 2>"$T/err7"
ok "progress auto without a terminal: no escape codes, no carriage returns" \
    sh -c "! grep -q \$(printf '\\033') '$T/err7' && ! grep -q \$(printf '\\r') '$T/err7'"
"$SF" render --db "$DB" --query "$LONG" --template "$T/v.mustache" -o "$T/p.xml" --progress=always --count 2>"$T/err8"
ok "progress always without a terminal: plain lines, final state at 100%" \
    sh -c "! grep -q \$(printf '\\033') '$T/err8' && grep -qE '^3000000 rows, [0-9]+ rows/s, .* written, RSS .*, 100%$' '$T/err8'"
script -qfec "$SF render --db '$DB' --query \"$LONG\" --template '$T/v.mustache' -o '$T/p.xml' --total 3000000" /dev/null > "$T/tty.out" 2>&1
ok "progress on a terminal: redrawn in place, percent and ETA, final state" \
    sh -c "grep -q \$(printf '\\r') '$T/tty.out' && grep -q \$(printf '\\033')'\\[K' '$T/tty.out' && grep -q 'ETA' '$T/tty.out' && grep -q '3000000 rows, .*100%' '$T/tty.out'"
redraws=$(tr '\r' '\n' < "$T/tty.out" | grep -c ' rows/s, ')
secs=$(grep -oE 'in [0-9.]+ s,' "$T/tty.out" | grep -oE '[0-9.]+')
ok "progress redraws at most 10 times a second ($redraws in $secs s)" \
    awk -v n="$redraws" -v s="$secs" 'BEGIN {exit !(n <= 10 * s + 3)}'
script -qfec "stty cols 40; $SF render --db '$DB' --query \"$LONG\" --template '$T/v.mustache' -o '$T/p.xml' --total 3000000" /dev/null > "$T/tty3.out" 2>&1
ok "progress on a 40-column terminal: no line wider than 40" \
    sh -c "tr '\r' '\n' < '$T/tty3.out' | grep ' rows, ' | grep -v 'peak RSS' | sed 's/\x1b\[K//' | awk 'length > 40 {exit 1}'"
script -qfec "$SF render --db '$DB' --template simplyhired -o '$T/p.xml' --progress=never" /dev/null > "$T/tty2.out" 2>&1
ok "--progress=never on a terminal: only the summary" \
    sh -c "! grep -q ' written, RSS ' '$T/tty2.out' && grep -q 'rows/s, peak RSS' '$T/tty2.out'"
"$SF" render --db "$DB" --template simplyhired -o "$T/p.xml" --progress=sometimes 2>"$T/err"; rc=$?
ok "--progress=sometimes: exit 2" test $rc = 2
"$SF" render --db "$DB" --template simplyhired -o "$T/p.xml" --total 5 --count 2>"$T/err"; rc=$?
ok "--total with --count: exit 2" test $rc = 2
