#!/bin/bash
# bench.sh [N]: time sqlfeed against the reference programs on the same data.
#
# Usage (from the project root; `make bench` runs it with SQLFEED=build/sqlfeed):
#   bench/bench.sh [N]
#
# Environment:
#   ROWS=200000    rows in the generated jobs table (the first argument wins)
#   RUNS=3         timed runs per program; the medians are reported
#   SQLFEED=...    the sqlfeed binary to time (default: $BUILD/sqlfeed)
#   BUILD=build    build dir; the C baselines are compiled into $BUILD/bench/
#   SHARED=...     the shared reference tree (default: <this dir>/../../shared)
#   ALL=1          also time django_cached (keeps every row in memory: the hog)
#   PG=0           skip the PostgreSQL part (sqlfeed and Django on a throwaway
#                  server started by tests/servers.sh)
#   CENSUS_RUNS=5  interleaved runs of sqlfeed with the census off, default, and on
#                  with --census --mem-log
#   KEEP=1         keep the scratch dir under /tmp (outputs, logs, times)
#   PIPELINE=0     skip the issue 8 bars (bench/pipeline.sh, run last; its own
#                  variables SMALL, BIG, BIG_RUNS, BEST... pass through)
#
# The database is /tmp/jobsbench/jobs-N.db, made once by the shared
# make_jobs_db.py (jobs_db in programs.sh). First sqlfeed's document is checked
# against python_sax's with xml_equal.py; then each program runs RUNS times
# under /usr/bin/time (sync before each run, output removed between runs).
# Prints a Markdown table and the bar checks of the project's issue, then runs
# bench/pipeline.sh (issue 8's bars: durable, compressed, threaded renders).
# Without the shared tree (SHARED), it says so and runs bench/pipeline.sh alone.
# Exit status: 0 when everything ran, even if a bar is missed (this reports
# figures, it is not a test); 1 when a program fails, the documents differ or
# the setup is broken; 2 on a usage error.
set -eu

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
case ${1:-} in -h|--help) usage ;; esac
[ $# -le 1 ] || usage

N=${1:-${ROWS:-200000}}
RUNS=${RUNS:-3}
BUILD=${BUILD:-build}
SQLFEED=${SQLFEED:-$BUILD/sqlfeed}
SHARED=${SHARED:-$(dirname "$0")/../../shared}
WANT_DJANGO_CACHED=${ALL:-0}    # programs.sh sets its own ALL: read ours first
KEEP=${KEEP:-0}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

case $N in ''|*[!0-9]*|0) echo "bench: N must be a positive integer, not '$N'" >&2; usage ;; esac
case $RUNS in ''|*[!0-9]*|0) echo "bench: RUNS must be a positive integer, not '$RUNS'" >&2; usage ;; esac

PIPELINE=${PIPELINE:-1}
# pipeline: the bars of issue 8 (bench/pipeline.sh), on the same N rows
pipeline() {
  [ "$PIPELINE" != 0 ] || { note "PIPELINE=0: the issue 8 bars (bench/pipeline.sh) skipped"; return 0; }
  ROWS=$N RUNS=$RUNS BUILD=$BUILD SQLFEED=$SQLFEED SHARED=$SHARED KEEP=$KEEP \
    "$(dirname "$0")/pipeline.sh"
}
if [ ! -f "$SHARED/bench/programs.sh" ]; then
  note "the reference programs are not part of this repository and are not at $SHARED/bench/ (no programs.sh there): no comparison with them; set SHARED=DIR to the tree that holds bench/programs.sh (make bench SHARED=DIR) for it; make check does not need them"
  note "running the issue 8 bars alone, on databases from sqlfeed demo-db"
  pipeline
  exit
fi
SHARED=$(cd "$SHARED" && pwd)
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
[ -x "$SQLFEED" ] || die "no executable sqlfeed at '$SQLFEED' (run make first, or set SQLFEED=)"

# programs.sh gives: BL (baselines dir), PY (/usr/bin/python3), cmd, jobs_db
# shellcheck source=/dev/null  # it lives outside the project
. "$SHARED/bench/programs.sh"
[ -x "$PY" ] || die "$PY is missing: the Python baselines need Debian's python3"
# The Python baselines live in $SHARED, which may be read-only: no __pycache__.
export PYTHONDONTWRITEBYTECODE=1

# --- the C baselines, built into $BUILD/bench (never in $SHARED) -------------
BIN=$BUILD/bench
mkdir -p "$BIN"
FLOOR=$BIN/floor
FEED_LIBXML2=$BIN/feed_libxml2
if [ ! -x "$FLOOR" ] || [ "$BL/floor_c/floor.c" -nt "$FLOOR" ]; then
  note "building $FLOOR"
  cc -O2 -Wall -Wextra -o "$FLOOR" "$BL/floor_c/floor.c" -lsqlite3 ||
    die "cannot build floor_c (needs libsqlite3-dev)"
fi
if [ ! -x "$FEED_LIBXML2" ] || [ "$BL/libxml2_c/feed_libxml2.c" -nt "$FEED_LIBXML2" ]; then
  command -v xml2-config >/dev/null || die "xml2-config is missing (Debian package: libxml2-dev)"
  note "building $FEED_LIBXML2"
  # shellcheck disable=SC2046  # xml2-config prints several words on purpose
  cc -O2 -Wall -Wextra $(xml2-config --cflags) -o "$FEED_LIBXML2" \
    "$BL/libxml2_c/feed_libxml2.c" $(xml2-config --libs) -lsqlite3 ||
    die "cannot build libxml2_c (needs libxml2-dev, libsqlite3-dev)"
fi

# --- which programs ---------------------------------------------------------
PROGS="sqlfeed floor_c libxml2_c python_sax"
if "$PY" -c 'import lxml.etree' 2>/dev/null; then PROGS="$PROGS lxml"
else note "skipping lxml: $PY cannot import lxml (Debian package: python3-lxml)"; fi
if "$PY" -c 'import django' 2>/dev/null; then
  PROGS="$PROGS django_iterator"
  if [ "$WANT_DJANGO_CACHED" = 1 ]; then PROGS="$PROGS django_cached"
  else note "skipping django_cached (memory hog): set ALL=1 to time it"; fi
else
  note "skipping django_iterator and django_cached: $PY cannot import django (Debian package: python3-django)"
fi

# argv NAME DB OUT: set the array CMD to the command line of one program.
# The C baselines are ours; the Python ones come from programs.sh's cmd, whose
# output is split on blanks (its paths must have none, as programs.sh says).
argv() {
  case $1 in
    sqlfeed)   CMD=("$SQLFEED" render --db "$2" --template simplyhired -o "$3" --quiet) ;;
    floor_c)   CMD=("$FLOOR" "$2" "$3") ;;
    libxml2_c) CMD=("$FEED_LIBXML2" "$2" "$3") ;;
    *)
      local line
      line=$(cmd "$1" "$2" "$3") || return 1
      read -r -a CMD <<< "$line"
      ;;
  esac
}
case $BL in *[[:space:]]*) die "the shared tree's path has blanks, which programs.sh cannot pass: $BL" ;; esac

# --- scratch dir and database -----------------------------------------------
T=$(mktemp -d /tmp/sqlfeed-bench.XXXXXX)
SERVERS_DIR=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [ -z "$SERVERS_DIR" ] || "$(dirname "$0")/../tests/servers.sh" stop "$SERVERS_DIR" >/dev/null 2>&1 || true
  if [ "$KEEP" = 1 ]; then note "scratch kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -s "/tmp/jobsbench/jobs-$N.db" ] || [ "$GEN" -nt "/tmp/jobsbench/jobs-$N.db" ]; then
  note "making the $N-row database /tmp/jobsbench/jobs-$N.db (once; this can take a while)"
fi
DB=$(jobs_db "$N") || die "cannot make the $N-row database"
FEED_ROWS=$("$PY" -c '
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM jobs WHERE site = '"'justjobs'"' AND is_active = 1").fetchone()[0])
' "$DB") || die "cannot read $DB"

# run NAME OUT LOG: run one program once (stdout and stderr to LOG)
run() {
  argv "$1" "$DB" "$2" || return 1
  "${CMD[@]}" >"$3" 2>&1
}
show_log() { sed -e 's/^/  | /' "$1" | tail -n 20 >&2; }

# --- equality check first (it also warms the page cache) --------------------
note "checking that sqlfeed writes python_sax's document ($FEED_ROWS rows)"
run sqlfeed "$T/sqlfeed.xml" "$T/sqlfeed.log" ||
  { show_log "$T/sqlfeed.log"; die "sqlfeed FAILED on $DB: ${CMD[*]}"; }
run python_sax "$T/python_sax.xml" "$T/python_sax.log" ||
  { show_log "$T/python_sax.log"; die "python_sax FAILED on $DB: ${CMD[*]}"; }
[ -f "$T/sqlfeed.xml" ] || die "sqlfeed exited 0 but wrote no $T/sqlfeed.xml"
if ! "$PY" "$SHARED/bench/xml_equal.py" "$T/sqlfeed.xml" "$T/python_sax.xml" >"$T/equal" 2>&1 ||
   ! grep -q '^equal' "$T/equal"; then
  show_log "$T/equal"
  echo "bench: *** sqlfeed's document is NOT python_sax's document: xml_equal.py said the above ***" >&2
  echo "bench: (KEEP=1 keeps both files in the scratch dir)" >&2
  exit 1
fi
note "$(cat "$T/equal")"
rm -f "$T/sqlfeed.xml" "$T/python_sax.xml"

# --- timing -----------------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
declare -A WALL CPU RSS MB
FAILED=""
for p in $PROGS; do
  out=$T/$p.xml
  : >"$T/$p.times"
  ok=1
  for r in $(seq "$RUNS"); do
    rm -f "$out"; sync
    argv "$p" "$DB" "$out" || { ok=0; break; }
    if ! /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" "${CMD[@]}" >"$T/$p.log" 2>&1; then
      show_log "$T/$p.log"; cat "$T/time.1" >&2 2>/dev/null || true
      echo "bench: $p FAILED (run $r): ${CMD[*]}" >&2
      ok=0; break
    fi
    tail -n 1 "$T/time.1" >>"$T/$p.times"
  done
  if [ $ok = 0 ]; then
    # without sqlfeed's figures no ratio means anything: stop here
    [ "$p" != sqlfeed ] || die "sqlfeed failed while being timed: no figures"
    FAILED="$FAILED $p"; rm -f "$out"; continue
  fi
  WALL[$p]=$(awk '{print $1}' "$T/$p.times" | median)
  CPU[$p]=$(awk '{printf "%.2f\n", $2 + $3}' "$T/$p.times" | median)
  RSS[$p]=$(awk '{printf "%.1f\n", $4 / 1024}' "$T/$p.times" | median)
  MB[$p]=$(stat -c %s "$out" 2>/dev/null | awk '{printf "%.1f", $1 / 1e6}') || true
  MB[$p]=${MB[$p]:-0}
  rm -f "$out"
  note "done $p: $(tr '\n' ';' <"$T/$p.times")"
done

# --- the census's cost ----------------------------------------------------------
# Three ways, runs interleaved (off, default, on, off, ...) so drift in the
# machine hits all alike; medians compared:
#   off      SQLFEED_CENSUS=off: SQLite's own allocator, no monitor thread (the
#            library's own counters stay: they count a few dozen allocations a run)
#   default  the census counts SQLite too; the monitor answers SIGUSR1, samples
#   on       default plus --census and --mem-log
CRUNS=${CENSUS_RUNS:-9}
for mode in off default on; do : >"$T/$mode.times"; done
for r in $(seq "$CRUNS"); do
  for mode in off default on; do
    rm -f "$T/c.xml" "$T/mem.jsonl"; sync
    extra=()
    [ $mode != on ] || extra=(--census --mem-log "$T/mem.jsonl")
    census=on
    [ $mode != off ] || census=off
    SQLFEED_CENSUS=$census /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" "$SQLFEED" render \
      --db "$DB" --template simplyhired -o "$T/c.xml" --quiet "${extra[@]}" >"$T/c.log" 2>&1 ||
      { show_log "$T/c.log"; die "sqlfeed failed in the census-cost runs ($mode)"; }
    tail -n 1 "$T/time.1" >>"$T/$mode.times"
  done
done
rm -f "$T/c.xml"
declare -A CWALL
for mode in off default on; do
  CWALL[$mode]=$(awk '{print $1}' "$T/$mode.times" | median)
  note "census cost runs, $mode: $(tr '\n' ';' <"$T/$mode.times")"
done
C_LINES=$(wc -l <"$T/mem.jsonl")

# The same three, counted in instructions by callgrind on a 20,000-row demo
# database: exact and repeatable, where wall time on a 2-core machine that
# syncs 500 MB moves by several percent from run to run.
declare -A CINSN
if command -v valgrind >/dev/null; then
  "$SQLFEED" demo-db --rows 20000 -o "$T/cg.db" 2>/dev/null
  for mode in off default on; do
    extra=()
    [ $mode != on ] || extra=(--census --mem-log "$T/cg.jsonl")
    census=on
    [ $mode != off ] || census=off
    SQLFEED_CENSUS=$census valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
      "$SQLFEED" render --db "$T/cg.db" --template simplyhired -o "$T/cg.xml" --quiet \
      "${extra[@]}" 2>"$T/cg.log" || { show_log "$T/cg.log"; die "callgrind run failed ($mode)"; }
    CINSN[$mode]=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$T/cg.log")
  done
  rm -f "$T/cg.db" "$T/cg.xml" "$T/cg.out" "$T/cg.jsonl"
else
  note "valgrind not installed: no instruction counts for the census's cost"
fi

# --- PostgreSQL: sqlfeed against Django on the same server ----------------------
# A throwaway server (tests/servers.sh), the same N-row database loaded into it
# (load_dataset.sh), sqlfeed and the Django reference in both modes, RUNS runs
# each. PG=0 skips it.
declare -A PWALL PRSS
PG_NOTE=""
if [ "${PG:-1}" != 0 ] && "$PY" -c 'import django, psycopg2' 2>/dev/null; then
  if srv=$("$(dirname "$0")/../tests/servers.sh" start 2>"$T/servers.err"); then
    eval "$srv"
    SERVERS_DIR=$SQLFEED_SERVERS_DIR
    note "loading the $N-row database into PostgreSQL"
    "$SHARED/bench/load_dataset.sh" "$DB" "$SQLFEED_PG_URL" >"$T/load.log" 2>&1 ||
      { show_log "$T/load.log"; die "cannot load the database into PostgreSQL"; }
    "$SQLFEED" render --db "$SQLFEED_PG_URL" --template simplyhired -o "$T/pg.xml" --quiet ||
      die "sqlfeed failed on PostgreSQL"
    "$SQLFEED" render --db "$DB" --template simplyhired -o "$T/sq.xml" --quiet
    "$PY" "$SHARED/bench/xml_equal.py" "$T/pg.xml" "$T/sq.xml" >"$T/equal" 2>&1 ||
      { cat "$T/equal" >&2; die "the PostgreSQL render differs from the SQLite render"; }
    rm -f "$T/pg.xml" "$T/sq.xml"
    for p in sqlfeed django_iterator django_cached; do
      : >"$T/pg-$p.times"
      for r in $(seq "$RUNS"); do
        rm -f "$T/o.xml"; sync
        case $p in
          sqlfeed) CMD=("$SQLFEED" render --db "$SQLFEED_PG_URL" --template simplyhired -o "$T/o.xml" --quiet) ;;
          *) CMD=("$PY" "$BL/django/manage.py" write_feed --mode "${p#django_}" "$SQLFEED_PG_URL" "$T/o.xml") ;;
        esac
        /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" "${CMD[@]}" >"$T/pg.log" 2>&1 ||
          { show_log "$T/pg.log"; die "$p failed on PostgreSQL"; }
        tail -n 1 "$T/time.1" >>"$T/pg-$p.times"
      done
      PWALL[$p]=$(awk '{print $1}' "$T/pg-$p.times" | median)
      PRSS[$p]=$(awk '{printf "%.1f\n", $4 / 1024}' "$T/pg-$p.times" | median)
      note "done $p on PostgreSQL: $(tr '\n' ';' <"$T/pg-$p.times")"
    done
    rm -f "$T/o.xml"
  else
    PG_NOTE="PostgreSQL: skipped, tests/servers.sh could not start a server: $(tail -1 "$T/servers.err")"
  fi
else
  PG_NOTE="PostgreSQL: skipped (PG=0, or $PY lacks django or psycopg2)"
fi

# --- report -----------------------------------------------------------------
# ratio A B: A / B with two decimals, or "-" when either is missing or B is 0
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
  if (a == "" || b == "" || b + 0 <= 0) print "-"; else printf "%.2f\n", a / b }'; }

S=${WALL[sqlfeed]:-}
echo
echo "sqlfeed: $SQLFEED"
echo "N=$N rows in the database, $FEED_ROWS rows in the feed, median of $RUNS runs (wall/CPU s, RSS from /usr/bin/time)"
echo
echo "| program | wall s | CPU s | peak RSS MiB | output MB | wall / sqlfeed wall |"
echo "|---|---:|---:|---:|---:|---:|"
for p in $PROGS; do
  [ -n "${WALL[$p]:-}" ] || continue
  printf '| %s | %.2f | %.2f | %.1f | %s | %s |\n' "$p" "${WALL[$p]}" "${CPU[$p]}" \
    "${RSS[$p]}" "${MB[$p]}" "$(ratio "${WALL[$p]}" "$S")"
done
echo
echo "sqlfeed wall / floor_c wall: $(ratio "$S" "${WALL[floor_c]:-}")"
[ -z "$FAILED" ] || echo "failed:$FAILED"
echo
echo "census cost, median of $CRUNS interleaved runs each:"
echo
echo "| sqlfeed render | wall s (200k rows) | vs off | instructions (20k rows) | vs off |"
echo "|---|---:|---:|---:|---:|"
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "-"; else printf "%+.2f %%", (a / b - 1) * 100}'; }
echo "| off: SQLFEED_CENSUS=off (SQLite's own allocator, no monitor) | ${CWALL[off]} | | ${CINSN[off]:--} | |"
echo "| default: census counts SQLite, monitor answers SIGUSR1 | ${CWALL[default]} | $(pct "${CWALL[default]}" "${CWALL[off]}") | ${CINSN[default]:--} | $(pct "${CINSN[default]:-}" "${CINSN[off]:-}") |"
echo "| on: default + --census --mem-log ($C_LINES log lines) | ${CWALL[on]} | $(pct "${CWALL[on]}" "${CWALL[off]}") | ${CINSN[on]:--} | $(pct "${CINSN[on]:-}" "${CINSN[off]:-}") |"
C_PCT=$(awk -v a="${CWALL[on]}" -v b="${CWALL[off]}" 'BEGIN {printf "%.1f", (a / b - 1) * 100}')
echo

if [ -n "${PWALL[sqlfeed]:-}" ]; then
  echo "PostgreSQL (throwaway server on loopback, the same $N-row database), median of $RUNS runs:"
  echo
  echo "| program | wall s | peak RSS MiB | wall / sqlfeed wall |"
  echo "|---|---:|---:|---:|"
  for p in sqlfeed django_iterator django_cached; do
    printf '| %s | %.2f | %.1f | %s |\n' "$p" "${PWALL[$p]}" "${PRSS[$p]}" "$(ratio "${PWALL[$p]}" "${PWALL[sqlfeed]}")"
  done
  echo
else
  echo "$PG_NOTE"
  echo
fi

# bar WHAT VALUE OP LIMIT: "bar: WHAT (VALUE OP LIMIT) ... PASS|MISSED|n/a"
bar() {
  local verdict
  if [ "$2" = - ]; then
    verdict="n/a (no figure: a program failed or a wall time rounded to 0; raise ROWS)"
  elif awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
         exit !((op == ">=" && v + 0 >= l + 0) || (op == "<=" && v + 0 <= l + 0) ||
                (op == "<" && v + 0 < l + 0)) }'; then
    verdict=PASS
  else
    verdict=MISSED
  fi
  echo "bar: $1 ($2 $3 $4) ... $verdict"
}
bar "sqlfeed at least 5x faster than python_sax: python_sax wall / sqlfeed wall" \
  "$(ratio "${WALL[python_sax]:-}" "$S")" ">=" 5
bar "sqlfeed at least 1.8x faster than libxml2_c: libxml2_c wall / sqlfeed wall" \
  "$(ratio "${WALL[libxml2_c]:-}" "$S")" ">=" 1.8
bar "sqlfeed within 1.5x of floor_c: sqlfeed wall / floor_c wall" \
  "$(ratio "$S" "${WALL[floor_c]:-}")" "<=" 1.5
bar "sqlfeed peak RSS under 12 MiB: sqlfeed peak RSS MiB" "${RSS[sqlfeed]:--}" "<" 12
bar "census and mem-log cost under 3 %: on vs off, %" "$C_PCT" "<" 3
if [ -n "${PWALL[sqlfeed]:-}" ]; then
  bar "PostgreSQL: sqlfeed at least 5x faster than Django .iterator(): django_iterator wall / sqlfeed wall" \
    "$(ratio "${PWALL[django_iterator]}" "${PWALL[sqlfeed]}")" ">=" 5
  bar "PostgreSQL: sqlfeed peak RSS under 16 MiB" "${PRSS[sqlfeed]}" "<" 16
fi

[ -z "$FAILED" ] || die "FAILED:$FAILED"
pipeline
