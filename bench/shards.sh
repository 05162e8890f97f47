#!/bin/bash
# shards.sh: issue 10's sharding figure: the reference feed (simplyhired, its
# own query) rendered from PostgreSQL by one process (`sqlfeed render`)
# against 2 shards run in parallel (`sqlfeed render --shard K/2 --shard-key id`
# sharing one `sqlfeed snapshot`) and then `sqlfeed publish`, interleaved
# rounds, wall medians side by side.
#
# Usage (from the project root):
#   bench/shards.sh
#
# Environment:
#   ROWS=200000   rows of the data set; RUNS=5 interleaved rounds (medians)
#   SQLFEED=...   the binary (default: $BUILD/sqlfeed); BUILD=build
#   SQLFEED_PG_URL  the PostgreSQL to use (its jobs and companies tables are
#                 replaced); unset: tests/servers.sh starts one, stopped at the end
#
# Data: the reference data set from tests/ref/make_jobs_db.py (the bench's
# generator, copied into the repository), made once as /tmp/jobsbench/ref-N.db,
# loaded with tests/ref/load_dataset.sh. SOURCE_DATE_EPOCH is fixed, so the
# published feed must be the one-process render byte for byte.
# Exit status: 0 when both ran and wrote the same bytes; 1 otherwise; 2 usage.
. "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$HERE/../tests/ref
PY=/usr/bin/python3
export SOURCE_DATE_EPOCH=1767225600
die() { echo "shards: $*" >&2; exit 1; }
note() { echo "shards: $*" >&2; }
for v in N RUNS; do
  case ${!v} in ''|*[!0-9]*|0) echo "shards: $v must be a positive integer, not '${!v}'" >&2; usage ;; esac
done
[ -x "$SQLFEED" ] || die "no executable sqlfeed at '$SQLFEED'"
"$SQLFEED" publish --help >/dev/null 2>&1 && "$SQLFEED" snapshot --help >/dev/null 2>&1 ||
  die "$SQLFEED has no sqlfeed publish / sqlfeed snapshot (the sharded renders)"
for t in psql sqlite3 cmp; do command -v $t >/dev/null || die "$t is missing (make deps)"; done

T=$(mktemp -d /tmp/sqlfeed-shards.XXXXXX)
STARTED=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [ -z "$STARTED" ] || "$HERE/../tests/servers.sh" stop "$STARTED" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DB=/tmp/jobsbench/ref-$N.db
mkdir -p /tmp/jobsbench
if [ ! -s "$DB" ]; then
  note "making the $N-row database $DB (once)"
  "$PY" "$REF/make_jobs_db.py" --rows "$N" --out "$DB.tmp" >/dev/null && mv "$DB.tmp" "$DB" ||
    die "cannot make $DB"
fi
if [ -z "${SQLFEED_PG_URL:-}" ]; then
  srv=$("$HERE/../tests/servers.sh" start 2>"$T/servers.err") ||
    die "tests/servers.sh could not start PostgreSQL: $(tail -1 "$T/servers.err")"
  eval "$srv"
  STARTED=$SQLFEED_SERVERS_DIR
fi
PG=$SQLFEED_PG_URL
note "loading $N rows into PostgreSQL"
"$REF/load_dataset.sh" "$DB" "$PG" >"$T/load.log" 2>&1 || { tail -5 "$T/load.log" >&2; die "cannot load the data set"; }

now() { date +%s.%N; }
# one KIND: one render; appends its wall seconds (sharded: "renders publish total")
one() {
  local t0 t1 t2 sid p1 p2
  case $1 in
    one)
      t0=$(now)
      "$SQLFEED" render --db "$PG" -t simplyhired -o "$T/one.xml" -q 2>"$T/log" || { cat "$T/log" >&2; die "the one-process render failed"; }
      t1=$(now)
      awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >>"$T/one.times" ;;
    two)
      rm -rf "$T/two.xml.shards"
      t0=$(now)
      coproc SNAP { exec "$SQLFEED" snapshot --db "$PG"; }
      read -r sid <&"${SNAP[0]}" || die "sqlfeed snapshot gave no id"
      "$SQLFEED" render --db "$PG" -t simplyhired -o "$T/two.xml" --shard 1/2 --shard-key id --snapshot "$sid" -q 2>"$T/log1" & p1=$!
      "$SQLFEED" render --db "$PG" -t simplyhired -o "$T/two.xml" --shard 2/2 --shard-key id --snapshot "$sid" -q 2>"$T/log2" & p2=$!
      wait "$p1" || { cat "$T/log1" >&2; die "shard 1/2 failed"; }
      wait "$p2" || { cat "$T/log2" >&2; die "shard 2/2 failed"; }
      t1=$(now)
      # shellcheck disable=SC1083  # bash 4.4+: closes the descriptor in SNAP[1]
      exec {SNAP[1]}>&-   # the snapshot's stdin ends: it lets the transaction go
      wait "$SNAP_PID" || die "sqlfeed snapshot failed"
      "$SQLFEED" publish -t simplyhired -o "$T/two.xml" --shards 2 -q 2>"$T/log" || { cat "$T/log" >&2; die "publish failed"; }
      t2=$(now)
      awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.3f %.3f %.3f\n", b - a, c - b, c - a}' >>"$T/two.times" ;;
  esac
}
med() { awk -v c="$2" '{print $c}' "$T/$1.times" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
note "$N rows: $RUNS interleaved rounds of 1 process and 2 shards in parallel ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
one one; one two; rm -f "$T/one.times" "$T/two.times" # a warm-up round each
for _ in $(seq "$RUNS"); do one one; one two; done
cmp -s "$T/one.xml" "$T/two.xml" || die "the published feed differs from the one-process render"
rows=$(sed -nE 's/.*"total_rows": ([0-9]+).*/\1/p' "$T/two.xml.shards/1-of-2.json")
echo "data: the reference data set, $N rows ($rows in the feed, $(stat -c %s "$T/one.xml") bytes), PostgreSQL on this host; $(nproc) CPUs; medians of $RUNS interleaved rounds"
echo
echo "| render | wall s |"
echo "|---|---:|"
echo "| 1 process (\`sqlfeed render\`) | $(med one 1) |"
echo "| 2 shards in parallel (snapshot + both renders) | $(med two 1) |"
echo "| \`sqlfeed publish\` (joins the parts) | $(med two 2) |"
echo "| 2 shards, total | $(med two 3) |"
echo "2 shards / 1 process (wall, total): $(awk "BEGIN {printf \"%.2f\", $(med two 3) / $(med one 1)}"); the renders alone: $(awk "BEGIN {printf \"%.2f\", $(med two 1) / $(med one 1)}"); the feeds are identical"
