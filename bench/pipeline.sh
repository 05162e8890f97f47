#!/bin/bash
# pipeline.sh: the bars of issue 8 (durable, compressed and threaded renders), in one run.
#
# Usage (from the project root; `make bench` runs it after bench.sh's tables,
# `make bench-pipeline` runs it alone):
#   bench/pipeline.sh
#
# Environment:
#   ROWS=200000     rows of the reference database (the ratios are taken there)
#   SMALL=10000     rows of the small database (RSS flatness; feature checks)
#   BIG=1000000     rows of the big database (RSS flatness, time per row); 0 skips it
#   RUNS=3          interleaved rounds of the timed renders; medians are reported
#   BIG_RUNS=3      rounds of the durable render on the big database
#   CENSUS_RUNS=9   interleaved runs each of census off / on for the threaded path
#                   (as bench.sh: with 5 the wall medians spread over 10 %)
#   BEST=1          time one render each at --level best (gzip, zstd); 0 skips them
#   BEST_TIMEOUT=300  seconds a --level best render may take before it is stopped
#   SQLFEED=...     the binary (default: $BUILD/sqlfeed); BUILD=build
#   SHARED=...      the shared reference tree (default: <this dir>/../../shared)
#   KEEP=1          keep the scratch dir
#
# Databases: with SHARED/bench/programs.sh present, /tmp/jobsbench/jobs-N.db
# made once by its make_jobs_db.py (the reference data set) and floor_c built
# from it; without it, /tmp/jobsbench/demo-N.db made once by `sqlfeed demo-db`,
# said on stderr and in the report, and the floor_c bar is n/a.
# A feature the binary lacks (--compress, --level, a .gz output that is not
# gzip) makes its bars "n/a (feature missing: ...)", never a failure, so the
# script runs against any build. Every render has SOURCE_DATE_EPOCH fixed, so
# each compressed output must decompress to exactly the plain render.
# Exit status: 0 when everything that exists ran, even if a bar is MISSED;
# 1 when a render fails, a compressed output differs from the plain render
# or the setup is broken; 2 on a usage error.
. "$(dirname "$0")/common.sh"

SMALL=${SMALL:-10000}
BIG=${BIG:-1000000}
RUNS=${RUNS:-3}
BIG_RUNS=${BIG_RUNS:-3}
CRUNS=${CENSUS_RUNS:-9}
BEST=${BEST:-1}
BEST_TIMEOUT=${BEST_TIMEOUT:-300}
SHARED=${SHARED:-$(dirname "$0")/../../shared}
KEEP=${KEEP:-0}
export SOURCE_DATE_EPOCH=1767225600   # 2026-01-01: identical bytes in every render

die() { echo "pipeline: $*" >&2; exit 1; }
note() { echo "pipeline: $*" >&2; }
for v in N SMALL RUNS BIG_RUNS CRUNS BEST_TIMEOUT; do
  case ${!v} in ''|*[!0-9]*|0) echo "pipeline: $v must be a positive integer, not '${!v}'" >&2; usage ;; esac
done
case $BIG in ''|*[!0-9]*) echo "pipeline: BIG must be a number (0 skips it), not '$BIG'" >&2; usage ;; esac

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
[ -x "$SQLFEED" ] || die "no executable sqlfeed at '$SQLFEED' (run make first, or set SQLFEED=)"
for t in gzip zstd pigz cmp; do
  command -v $t >/dev/null || die "$t is missing (Debian packages: gzip, zstd, pigz, diffutils)"
done
SQLFEED=$(cd "$(dirname "$SQLFEED")" && pwd)/$(basename "$SQLFEED")
START=$(date +%s)

# --- databases and the scan floor ---------------------------------------------
FLOOR=""
if [ -f "$SHARED/bench/programs.sh" ]; then
  SHARED=$(cd "$SHARED" && pwd)
  # shellcheck source=/dev/null  # it lives outside the project
  . "$SHARED/bench/programs.sh"
  DATA="the reference data set ($SHARED/bench/make_jobs_db.py)"
  mkdb() {
    if [ ! -s "/tmp/jobsbench/jobs-$1.db" ] || [ "$GEN" -nt "/tmp/jobsbench/jobs-$1.db" ]; then
      note "making the $1-row database /tmp/jobsbench/jobs-$1.db (once; 1,000,000 rows: ~40 s, 3.5 GB)"
    fi
    jobs_db "$1"
  }
  mkdir -p "$BUILD/bench"
  FLOOR=$BUILD/bench/floor
  if [ ! -x "$FLOOR" ] || [ "$BL/floor_c/floor.c" -nt "$FLOOR" ]; then
    note "building $FLOOR"
    cc -O2 -Wall -Wextra -o "$FLOOR" "$BL/floor_c/floor.c" -lsqlite3 ||
      die "cannot build floor_c (needs libsqlite3-dev)"
  fi
else
  DATA="sqlfeed demo-db (../shared/bench is not present at $SHARED: no reference data set, no floor_c)"
  note "$SHARED/bench/programs.sh is not present: databases from sqlfeed demo-db, the floor_c bar is n/a"
  mkdb() {
    local db=/tmp/jobsbench/demo-$1.db
    mkdir -p /tmp/jobsbench
    if [ ! -s "$db" ]; then
      note "making the $1-row database $db (once)"
      "$SQLFEED" demo-db --rows "$1" -o "$db" >&2 || return 1
    fi
    echo "$db"
  }
fi
DB=$(mkdb "$N") || die "cannot make the $N-row database"
DBS=$(mkdb "$SMALL") || die "cannot make the $SMALL-row database"
DBB=""
[ "$BIG" = 0 ] || DBB=$(mkdb "$BIG") || die "cannot make the $BIG-row database"

T=$(mktemp -d /tmp/sqlfeed-pipeline.XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { if [ "$KEEP" = 1 ]; then note "scratch kept in $T"; else rm -rf "$T"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
show_log() { sed -e 's/^/  | /' "$1" | tail -n 20 >&2; }

render() { "$SQLFEED" render --template simplyhired --quiet "$@"; }

# --- which features this build has ----------------------------------------------
# A flag the CLI does not know is a usage error (exit 2) on the small database;
# a .gz output must really be gzip. Each check leaves the reason in MISSING_x.
HELP=$("$SQLFEED" render --help 2>&1 || true)
declare -A HAS MISSING
feature() { # NAME REASON-IF-MISSING CMD...: HAS[NAME]=1 when CMD succeeds
  local name=$1 why=$2; shift 2
  if "$@" >"$T/feature.log" 2>&1; then HAS[$name]=1
  else HAS[$name]=0; MISSING[$name]="n/a (feature missing: $why)"; fi
}
render --db "$DBS" -o "$T/small.xml" || die "sqlfeed cannot render the $SMALL-row database"
# try OUT TEST-TOOL [ARGS...]: render the small database to OUT with ARGS, test OUT
# shellcheck disable=SC2317  # called through feature
try() { local out=$1 t=$2; shift 2; render --db "$DBS" -o "$out" "$@" && $t "$out"; }
feature gz "-o FILE.xml.gz does not write gzip" try "$T/small.xml.gz" "gzip -t"
feature zst "-o FILE.xml.zst does not write zstd" try "$T/small.xml.zst" "zstd -q -t"
feature compress "--compress is unknown" try "$T/small.gzip" "gzip -t" --compress gzip
feature best_gz "--level best is unknown or fails on .xml.gz" \
  try "$T/small-best.xml.gz" "gzip -t" --level best
feature best_zst "--level best is unknown or fails on .xml.zst" \
  try "$T/small-best.xml.zst" "zstd -q -t" --level best
case $HELP in *--no-writer-thread*) HAS[nowriter]=1 ;; *) HAS[nowriter]=0 ;; esac
for f in gz zst; do
  [ "${HAS[$f]}" = 1 ] || continue
  case $f in gz) un=(gzip -dc) ;; zst) un=(zstd -qdc) ;; esac
  "${un[@]}" "$T/small.xml.$f" | cmp -s - "$T/small.xml" ||
    die "the $SMALL-row .xml.$f render does not decompress to the plain render (KEEP=1 keeps both in $T)"
done
rm -f "$T"/small*
note "features: .xml.gz=${HAS[gz]} .xml.zst=${HAS[zst]} --compress=${HAS[compress]} --level best: gz=${HAS[best_gz]} zst=${HAS[best_zst]} --no-writer-thread=${HAS[nowriter]}"

# --- timed runs ----------------------------------------------------------------------
# cmdline MODE DB OUT: set CMD to MODE's command line (one word list; a pipeline
# or a redirection goes through bash -c)
cmdline() {
  local s=("$SQLFEED" render --template simplyhired --quiet --db "$2")
  local q="$SQLFEED render --template simplyhired --quiet --db $2"
  case $1 in
    durable)     CMD=("${s[@]}" -o "$3") ;;
    stdout)      CMD=(bash -c "$q -o - >$3") ;;
    devnull)     CMD=("${s[@]}" -o /dev/null) ;;
    scan)        CMD=(bash -c "$FLOOR --scan $2 >/dev/null") ;;
    gz)          CMD=("${s[@]}" -o "$3.gz") ;;
    pigz)        CMD=(bash -c "set -o pipefail; $q -o - | pigz -p2 -1 >$3.gz") ;;
    zst)         CMD=("${s[@]}" -o "$3.zst") ;;
    best_gz)     CMD=(timeout "$BEST_TIMEOUT" "${s[@]}" -o "$3.gz" --level best) ;;
    best_zst)    CMD=(timeout "$BEST_TIMEOUT" "${s[@]}" -o "$3.zst" --level best) ;;
    nowriter)    CMD=("${s[@]}" -o "$3" --no-writer-thread) ;;
    zst_off)     CMD=(env SQLFEED_CENSUS=off "${s[@]}" -o "$3.zst") ;;
    zst_on)      CMD=("${s[@]}" -o "$3.zst" --census --mem-log "$T/mem.jsonl") ;;
    durable_off) CMD=(env SQLFEED_CENSUS=off "${s[@]}" -o "$3") ;;
    durable_on)  CMD=("${s[@]}" -o "$3" --census --mem-log "$T/mem.jsonl") ;;
  esac
}
case "$SQLFEED$T$DB$DBB$DBS$FLOOR" in *[[:space:]]*) die "a path has blanks: $SQLFEED $T $DB" ;; esac

# timed MODE DB KEY: run once under /usr/bin/time (after sync; outputs removed
# before), append "wall user sys maxrss_kib out_bytes" to $T/KEY.times
timed() {
  local out=$T/o.xml
  rm -f "$out" "$out.gz" "$out.zst" "$T/mem.jsonl"; sync
  cmdline "$1" "$2" "$out"
  if ! /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" "${CMD[@]}" >"$T/run.log" 2>&1; then
    show_log "$T/run.log"; tail -n 1 "$T/time.1" >&2 || true
    die "$1 FAILED: ${CMD[*]}"
  fi
  local f=$out bytes=0
  case $1 in gz|pigz|best_gz) f=$out.gz ;; zst|best_zst|zst_*) f=$out.zst ;; esac
  [ ! -f "$f" ] || bytes=$(stat -c %s "$f")
  echo "$(tail -n 1 "$T/time.1") $bytes" >>"$T/$3.times"
  LAST=$f
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
# med KEY COLUMN: median of one column of KEY's runs ("" when it did not run)
med() { [ -s "$T/$1.times" ] && awk -v c="$2" '{print $c}' "$T/$1.times" | median || echo ""; }

MODES="durable stdout devnull"
[ -z "$FLOOR" ] || MODES="$MODES scan"
[ "${HAS[gz]}" = 0 ] || MODES="$MODES gz pigz"
[ "${HAS[zst]}" = 0 ] || MODES="$MODES zst"
[ "${HAS[nowriter]}" = 0 ] || MODES="$MODES nowriter"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
note "$N rows: $RUNS interleaved rounds of: $MODES (load average $LOAD0)"
render --db "$DB" -o /dev/null || die "sqlfeed cannot render $DB"   # warms the page cache
for _ in $(seq "$RUNS"); do
  for m in $MODES; do timed "$m" "$DB" "$m"; done
done
# the plain render and the compressed ones of the last round, compared
timed durable "$DB" plain_ref
cp "$LAST" "$T/plain.xml"
PLAIN=$(stat -c %s "$T/plain.xml")
for f in gz zst; do
  [ "${HAS[$f]}" = 1 ] || continue
  timed "$f" "$DB" "${f}_ref"
  case $f in gz) un=(gzip -dc) ;; zst) un=(zstd -qdc) ;; esac
  "${un[@]}" "$LAST" | cmp -s - "$T/plain.xml" ||
    die "the $N-row .xml.$f render does not decompress to the plain render"
done
note "sizes: gzip -1 and zstd -3 of the $PLAIN-byte plain render"
GZIP1=$(gzip -1 -c "$T/plain.xml" | wc -c)
ZSTD3=$(zstd -q -3 -c "$T/plain.xml" | wc -c)
declare -A BEST_RC
for f in gz zst; do
  [ "$BEST" = 1 ] && [ "${HAS[best_$f]}" = 1 ] || continue
  note "one render at --level best ($f), stopped after $BEST_TIMEOUT s"
  cmdline "best_$f" "$DB" "$T/o.xml"
  rm -f "$T"/o.xml*; sync
  BEST_RC[$f]=0
  /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" "${CMD[@]}" >"$T/run.log" 2>&1 || BEST_RC[$f]=$?
  if [ "${BEST_RC[$f]}" = 0 ]; then
    echo "$(tail -n 1 "$T/time.1") $(stat -c %s "$T/o.xml.$f")" >"$T/best_$f.times"
  elif [ "${BEST_RC[$f]}" = 124 ]; then note "--level best ($f) took longer than $BEST_TIMEOUT s: stopped"
  else show_log "$T/run.log"; die "--level best ($f) FAILED: ${CMD[*]}"; fi
done
rm -f "$T/plain.xml" "$T"/o.xml*

# RSS flat from SMALL to BIG rows; time per row at BIG against N
note "$SMALL rows: one run of each output; RSS"
for m in durable gz zst; do
  [ $m = durable ] || [ "${HAS[$m]}" = 1 ] || continue
  timed $m "$DBS" "small_$m"
done
if [ -n "$DBB" ]; then
  note "$BIG rows: $BIG_RUNS durable runs, one of each compressed output (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  render --db "$DBB" -o /dev/null || die "sqlfeed cannot render $DBB"
  for _ in $(seq "$BIG_RUNS"); do timed durable "$DBB" big_durable; done
  for m in gz zst; do [ "${HAS[$m]}" = 0 ] || timed $m "$DBB" "big_$m"; done
fi

# census cost of the threaded path: off / on interleaved, plain durable and .xml.zst
note "census cost: $CRUNS interleaved runs each of off and on (--census --mem-log)"
CMODES="durable_off durable_on"
[ "${HAS[zst]}" = 0 ] || CMODES="$CMODES zst_off zst_on"
for _ in $(seq "$CRUNS"); do
  for m in $CMODES; do timed "$m" "$DB" "$m"; done
done
rm -f "$T"/o.xml* "$T/mem.jsonl"
# The same comparison in instructions (callgrind, all threads, the small
# database): exact where wall time on two loaded cores moves by more than 3 %.
declare -A CINSN
if command -v valgrind >/dev/null; then
  for m in $CMODES; do
    cmdline "$m" "$DBS" "$T/o.xml"
    e=(SQLFEED_CENSUS=on)   # valgrind runs the binary itself, not env
    [ "${CMD[0]}" != env ] || { e=("${CMD[1]}"); CMD=("${CMD[@]:2}"); }
    env "${e[@]}" valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "${CMD[@]}" \
      >/dev/null 2>"$T/cg.log" ||
      { show_log "$T/cg.log"; die "callgrind run failed ($m)"; }
    CINSN[$m]=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$T/cg.log")
    rm -f "$T"/o.xml* "$T/mem.jsonl" "$T/cg.out"
  done
else
  note "valgrind not installed: no instruction counts for the census's cost"
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------
# rows in the feed: the simplyhired query's WHERE, counted by Python's sqlite3
feed_rows() { /usr/bin/python3 -c '
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM jobs WHERE site = '"'justjobs'"' AND is_active = 1").fetchone()[0])
' "$1"; }
ROWS_N=$(feed_rows "$DB")
ROWS_B=""
[ -z "$DBB" ] || ROWS_B=$(feed_rows "$DBB")
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
  if (a == "" || b == "" || b + 0 <= 0) print "-"; else printf "%.2f\n", a / b }'; }
mib() { awk -v k="${1:-}" 'BEGIN {if (k == "") print "-"; else printf "%.1f\n", k / 1024}'; }

echo
echo "## Issue 8 bars (bench/pipeline.sh)"
echo
echo "sqlfeed: $SQLFEED; data: $DATA"
echo "$N rows in the database, $ROWS_N in the feed; medians of $RUNS interleaved rounds;"
echo "load average $LOAD0 at the start, $LOAD1 at the end ($(nproc) cores); $(( $(date +%s) - START )) s in all"
echo
echo "| render ($N rows) | command | wall s | user s | sys s | peak RSS MiB | output bytes |"
echo "|---|---|---:|---:|---:|---:|---:|"
for m in $MODES; do
  cmdline "$m" "\$DB" "OUT.xml"
  c=${CMD[*]}; c=${c//$SQLFEED/sqlfeed}; c=${c//$FLOOR/floor}; c=${c//bash -c /}
  c=${c//render --template simplyhired --quiet --db \$DB/render ...}
  printf '| %s | `%s` | %s | %s | %s | %s | %s |\n' "$m" "$c" "$(med "$m" 1)" "$(med "$m" 2)" \
    "$(med "$m" 3)" "$(mib "$(med "$m" 4)")" "$(med "$m" 5)"
done
echo
echo "sizes: plain $PLAIN bytes; gzip -1 $GZIP1 (ratio $(ratio "$PLAIN" "$GZIP1")); zstd -3 $ZSTD3 (ratio $(ratio "$PLAIN" "$ZSTD3"))"
for f in gz zst; do
  if [ -s "$T/best_$f.times" ]; then
    read -r w u s k b <"$T/best_$f.times"
    echo "--level best ($f): $w s wall, $u user, $s sys, $(mib "$k") MiB, $b bytes (ratio $(ratio "$PLAIN" "$b"))"
  fi
done
echo
echo "| rows | durable RSS MiB | .xml.gz RSS MiB | .xml.zst RSS MiB | durable wall s | user s | sys s |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
echo "| $SMALL | $(mib "$(med small_durable 4)") | $(mib "$(med small_gz 4)") | $(mib "$(med small_zst 4)") | $(med small_durable 1) | $(med small_durable 2) | $(med small_durable 3) |"
echo "| $N | $(mib "$(med durable 4)") | $(mib "$(med gz 4)") | $(mib "$(med zst 4)") | $(med durable 1) | $(med durable 2) | $(med durable 3) |"
[ -z "$DBB" ] ||
echo "| $BIG | $(mib "$(med big_durable 4)") | $(mib "$(med big_gz 4)") | $(mib "$(med big_zst 4)") | $(med big_durable 1) | $(med big_durable 2) | $(med big_durable 3) |"
echo
echo "| census (threaded path) | off wall s ($N rows) | on wall s | on vs off (median of rounds) | off instructions ($SMALL rows) | on | on vs off |"
echo "|---|---:|---:|---:|---:|---:|---:|"
pct() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {if (a == "" || b == "" || b + 0 <= 0) print "-"; else printf "%+.1f\n", (a / b - 1) * 100}'; }
# pairpct ON OFF: the median over rounds of on/off - 1, in %: each on run
# against the off run of its own round, so a drift of the machine's speed
# between rounds cancels (the ratio of the two medians does not)
pairpct() {
  [ -s "$T/$1.times" ] && [ -s "$T/$2.times" ] || { echo "-"; return; }
  paste -d' ' "$T/$1.times" "$T/$2.times" |
    awk '$6 + 0 > 0 {printf "%.6f\n", ($1 / $6 - 1) * 100}' | median |
    awk '{if ($1 == "") print "-"; else printf "%+.1f\n", $1}'
}
for m in durable zst; do
  [ -s "$T/${m}_off.times" ] || continue
  echo "| $m | $(med "${m}_off" 1) | $(med "${m}_on" 1) | $(pairpct "${m}_on" "${m}_off") % | ${CINSN[${m}_off]:--} | ${CINSN[${m}_on]:--} | $(pct "${CINSN[${m}_on]:-}" "${CINSN[${m}_off]:-}") % |"
done
echo

# bar WHAT VALUE OP LIMIT [WHY-NA]: "bar: WHAT (VALUE OP LIMIT) ... PASS|MISSED|n/a"
bar() {
  local verdict
  if [ -n "${5:-}" ]; then verdict=$5
  elif [ "$2" = - ] || [ -z "$2" ]; then verdict="n/a (no figure)"
  elif awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
         exit !((op == ">=" && v + 0 >= l + 0) || (op == "<=" && v + 0 <= l + 0) ||
                (op == "<" && v + 0 < l + 0)) }'; then verdict=PASS
  else verdict=MISSED; fi
  echo "bar: $1 (${2:--} $3 $4) ... $verdict"
}
na() { [ "${HAS[$1]}" = 1 ] || echo "${MISSING[$1]}"; }
W() { med "$1" 1; }
bar "durable plain render / the same render to a redirected stdout" \
  "$(ratio "$(W durable)" "$(W stdout)")" "<=" 1.15
bar "render to /dev/null / floor_c --scan" "$(ratio "$(W devnull)" "$(W scan)")" "<=" 1.15 \
  "$([ -n "$FLOOR" ] || echo "n/a (floor_c is in ../shared/bench, not present)")"
bar ".xml.gz default level durable / plain durable" "$(ratio "$(W gz)" "$(W durable)")" "<=" 1.4 "$(na gz)"
bar "sqlfeed -o - | pigz -p2 -1 > f / .xml.gz durable (times faster)" \
  "$(ratio "$(W pigz)" "$(W gz)")" ">=" 2.5 "$(na gz)"
bar ".xml.gz ratio (plain / compressed) vs gzip -1's $(ratio "$PLAIN" "$GZIP1")" \
  "$(ratio "$PLAIN" "$(med gz_ref 5)")" ">=" "$(ratio "$PLAIN" "$GZIP1")" "$(na gz)"
bar ".xml.zst default level durable / plain durable" "$(ratio "$(W zst)" "$(W durable)")" "<=" 1.8 "$(na zst)"
bar ".xml.zst ratio (plain / compressed) vs zstd -3's $(ratio "$PLAIN" "$ZSTD3")" \
  "$(ratio "$PLAIN" "$(med zst_ref 5)")" ">=" "$(ratio "$PLAIN" "$ZSTD3")" "$(na zst)"
for f in gz zst; do
  why=$(na "best_$f")
  [ -n "$why" ] || [ "$BEST" = 1 ] || why="n/a (BEST=0)"
  [ -n "$why" ] || [ -s "$T/best_$f.times" ] || why="n/a (stopped after $BEST_TIMEOUT s)"
  bar "--level best on .xml.$f: its ratio vs the default level's $(ratio "$PLAIN" "$(med "${f}_ref" 5)")" \
    "$([ -s "$T/best_$f.times" ] && ratio "$PLAIN" "$(awk '{print $5}' "$T/best_$f.times")" || echo -)" \
    ">=" "$(ratio "$PLAIN" "$(med "${f}_ref" 5)")" "$why"
done
for m in durable stdout devnull gz zst best_gz best_zst nowriter; do
  [ -s "$T/$m.times" ] || continue
  bar "peak RSS MiB, $m ($N rows)" "$(mib "$(med "$m" 4)")" "<" 16
done
if [ -n "$DBB" ]; then
  for m in durable gz zst; do
    [ -s "$T/big_$m.times" ] || continue
    lo=$(printf '%s\n' "$(med "small_$m" 4)" "$(med "$m" 4)" "$(med "big_$m" 4)" | sort -g | head -1)
    hi=$(printf '%s\n' "$(med "small_$m" 4)" "$(med "$m" 4)" "$(med "big_$m" 4)" | sort -g | tail -1)
    bar "peak RSS flat, $m: largest - smallest MiB over $SMALL, $N, $BIG rows" \
      "$(awk -v a="$hi" -v b="$lo" 'BEGIN {printf "%.1f", (a - b) / 1024}')" "<=" 1.0
  done
  per() { awk -v t="$1" -v r="$2" 'BEGIN {if (t == "" || r + 0 <= 0) print ""; else printf "%.9f\n", t / r}'; }
  bar "durable time per row, $BIG rows / $N rows (wall)" \
    "$(ratio "$(per "$(med big_durable 1)" "$ROWS_B")" "$(per "$(med durable 1)" "$ROWS_N")")" "<=" 1.2
  echo "     (per row, $BIG / $N rows: user $(ratio "$(per "$(med big_durable 2)" "$ROWS_B")" "$(per "$(med durable 2)" "$ROWS_N")")x, sys $(ratio "$(per "$(med big_durable 3)" "$ROWS_B")" "$(per "$(med durable 3)" "$ROWS_N")")x)"
else
  bar "peak RSS flat from $SMALL to BIG rows" - "<=" 1.0 "n/a (BIG=0)"
  bar "durable time per row, BIG rows / $N rows" - "<=" 1.2 "n/a (BIG=0)"
fi
bar "census cost of the threaded path, durable: on vs off, % (median of $CRUNS rounds)" \
  "$(pairpct durable_on durable_off)" "<" 3
bar "census cost of the threaded path, .xml.zst: on vs off, % (median of $CRUNS rounds)" \
  "$(pairpct zst_on zst_off)" "<" 3 "$(na zst)"
exit 0
