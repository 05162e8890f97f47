#!/bin/bash
# formatters.sh: the bar of issue 9 — a feed that formats values on every row
# (dates, URLs, truncation) against the same feed without the formatters, in
# one run, interleaved.
#
# Usage (from the project root; `make bench` runs it after pipeline.sh):
#   bench/formatters.sh
#
# Environment:
#   ROWS=200000   rows of the database
#   RUNS=7        interleaved rounds; medians are reported
#   SMALL=10000   rows of the database the instruction counts (callgrind) use
#   SQLFEED=...   the binary (default: $BUILD/sqlfeed); BUILD=build
#   SHARED=...    the shared reference tree (default: <this dir>/../../shared)
#
# Databases: the reference data set (/tmp/jobsbench/jobs-N.db, made by
# SHARED/bench's make_jobs_db.py) when SHARED/bench/programs.sh is present;
# else `sqlfeed demo-db` (said on stderr and in the report).
# The two templates are the built-in simplyhired feed and the same document
# with posted_at.rfc822, url.url, company_url.url and title.trunc150: every
# row runs four formatters. Both render to /dev/null (the render's own cost,
# which the formatters add to) and to a durable file.
# Exit status: 0 when both renders ran (a MISSED bar included); 1 when one
# fails; 2 on a usage error.
. "$(dirname "$0")/common.sh"
RUNS=${RUNS:-7}
SMALL=${SMALL:-10000}
SHARED=${SHARED:-$(dirname "$0")/../../shared}
export SOURCE_DATE_EPOCH=1767225600
die() { echo "formatters: $*" >&2; exit 1; }
note() { echo "formatters: $*" >&2; }
for v in N RUNS SMALL; do
  case ${!v} in ''|*[!0-9]*|0) echo "formatters: $v must be a positive integer" >&2; usage ;; esac
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
[ -x "$SQLFEED" ] || die "no executable sqlfeed at '$SQLFEED' (run make first, or set SQLFEED=)"
SQLFEED=$(cd "$(dirname "$SQLFEED")" && pwd)/$(basename "$SQLFEED")

if [ -f "$SHARED/bench/programs.sh" ]; then
  SHARED=$(cd "$SHARED" && pwd)
  # shellcheck source=/dev/null  # it lives outside the project
  . "$SHARED/bench/programs.sh"
  DATA="the reference data set ($SHARED/bench/make_jobs_db.py)"
  mkdb() { jobs_db "$1"; }
else
  DATA="sqlfeed demo-db (../shared/bench is not present at $SHARED)"
  note "$SHARED/bench/programs.sh is not present: databases from sqlfeed demo-db"
  mkdb() {
    local db=/tmp/jobsbench/demo-$1.db
    mkdir -p /tmp/jobsbench
    [ -s "$db" ] || "$SQLFEED" demo-db --rows "$1" -o "$db" >&2 || return 1
    echo "$db"
  }
fi
DB=$(mkdb "$N") || die "cannot make the $N-row database"
DBS=$(mkdb "$SMALL") || die "cannot make the $SMALL-row database"
T=$(mktemp -d /tmp/sqlfeed-formatters.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

"$SQLFEED" templates --show simplyhired >"$T/plain.mustache" 2>/dev/null ||
  die "this build has no 'sqlfeed templates --show' (issue 9): nothing to compare"
sed -e 's/{{posted_at}}/{{posted_at.rfc822}}/' -e 's/{{url}}/{{url.url}}/' \
    -e 's/{{company_url}}/{{company_url.url}}/' -e 's/{{title}}/{{title.trunc150}}/' \
    "$T/plain.mustache" >"$T/fmt.mustache"
cmp -s "$T/plain.mustache" "$T/fmt.mustache" && die "the simplyhired template changed: no formatter was put in"
"$SQLFEED" templates --show simplyhired.sql >"$T/feed.sql" 2>/dev/null ||
  die "this build has no 'sqlfeed templates --show NAME.sql'"
cp "$T/feed.sql" "$T/plain.sql"
cp "$T/feed.sql" "$T/fmt.sql"

# timed KIND OUT KEY: one render under /usr/bin/time; "wall user sys rss bytes" to KEY.times
timed() {
  rm -f "$T/o.xml"; sync
  if ! /usr/bin/time -f '%e %U %S %M' -o "$T/time.1" \
      "$SQLFEED" render --db "$DB" --template "$T/$1.mustache" --query-file "$T/$1.sql" --quiet \
      -o "$2" >"$T/run.log" 2>&1; then
    sed 's/^/  | /' "$T/run.log" | tail -n 20 >&2
    die "$1 -o $2 FAILED"
  fi
  local bytes=0
  [ ! -f "$2" ] || bytes=$(stat -c %s "$2")
  echo "$(tail -n 1 "$T/time.1") $bytes" >>"$T/$3.times"
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
med() { awk -v c="$2" '{print $c}' "$T/$1.times" | median; }
cpu() { awk '{print $2 + $3}' "$T/$1.times" | median; }

note "$N rows: $RUNS interleaved rounds of plain and formatted, to /dev/null and durable (load $(cut -d' ' -f1-3 /proc/loadavg))"
timed plain /dev/null warm
for _ in $(seq "$RUNS"); do
  for k in plain fmt; do
    timed $k /dev/null ${k}_null
    timed $k "$T/o.xml" ${k}_file
  done
done
INSN_P="" INSN_F=""
if command -v valgrind >/dev/null; then
  note "instructions: callgrind, all threads, $SMALL rows to /dev/null"
  for k in plain fmt; do
    valgrind --tool=callgrind --callgrind-out-file="$T/cg.$k" "$SQLFEED" render --db "$DBS" \
      --template "$T/$k.mustache" --query-file "$T/$k.sql" --quiet -o /dev/null >/dev/null 2>"$T/cg.log" ||
      die "callgrind run of $k failed"
    i=$(grep -h '^summary:' "$T/cg.$k"* | awk '{s += $2} END {print s}')
    [ "$k" = plain ] && INSN_P=$i || INSN_F=$i
  done
fi

echo "sqlfeed: $SQLFEED; data: $DATA"
echo "$N rows; medians of $RUNS interleaved rounds; load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| render | output | wall s | CPU s | peak RSS MiB | bytes |"
echo "|---|---|---:|---:|---:|---:|"
for k in plain fmt; do
  for o in null file; do
    echo "| $k | $([ $o = null ] && echo /dev/null || echo durable file) | $(med ${k}_$o 1) | $(cpu ${k}_$o) | $(awk "BEGIN {printf \"%.1f\", $(med ${k}_$o 4) / 1024}") | $(med ${k}_$o 5) |"
  done
done
[ -z "$INSN_P" ] || echo "instructions ($SMALL rows, /dev/null): plain $INSN_P, formatted $INSN_F ($(awk "BEGIN {printf \"%+.1f %%\", 100 * ($INSN_F / $INSN_P - 1)}"))"
bar() { # NAME FIGURE LIMIT
  local v; v=$(awk "BEGIN {printf \"%.2f\", $2}")
  if awk "BEGIN {exit !($v <= $3)}"; then r=PASS; else r=MISSED; fi
  echo "bar: $1 ($v <= $3) ... $r"
}
bar "formatted / plain, render to /dev/null (wall)" "$(med fmt_null 1) / $(med plain_null 1)" 1.2
bar "formatted / plain, render to /dev/null (CPU)" "$(cpu fmt_null) / $(cpu plain_null)" 1.2
bar "formatted / plain, durable render (wall)" "$(med fmt_file 1) / $(med plain_file 1)" 1.2
