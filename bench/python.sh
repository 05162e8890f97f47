#!/bin/bash
# python.sh: issue 10's Python figure: the package's sqlfeed.render() against
# `sqlfeed render` on the same database, interleaved, and the package's peak
# RSS over the bare interpreter's.
#
# Usage (from the project root; `make bench` runs it last):
#   bench/python.sh
#
# Environment:
#   ROWS=200000   rows of the database; RUNS=5 interleaved rounds (medians)
#   SQLFEED=...   the binary (default: $BUILD/sqlfeed); BUILD=build; the
#                 package is $BUILD/python (make python)
#   SHARED=...    the shared reference tree (default: <this dir>/../../shared)
#
# Databases as bench/formatters.sh: the reference data set when
# SHARED/bench/programs.sh is present, else `sqlfeed demo-db` (said).
# Exit status: 0 when both ran and wrote the same bytes; 1 otherwise; 2 usage.
. "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}
SHARED=${SHARED:-$(dirname "$0")/../../shared}
PY=/usr/bin/python3
PKG=$(cd "$BUILD" && pwd)/python
export SOURCE_DATE_EPOCH=1767225600
die() { echo "python: $*" >&2; exit 1; }
note() { echo "python: $*" >&2; }
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
[ -x "$SQLFEED" ] || die "no executable sqlfeed at '$SQLFEED'"
[ -d "$PKG/sqlfeed" ] || die "no package in $PKG (make python)"
if [ -f "$SHARED/bench/programs.sh" ]; then
  # shellcheck source=/dev/null  # it lives outside the project
  . "$SHARED/bench/programs.sh"
  DATA="the reference data set"
  DB=$(jobs_db "$N") || die "cannot make the $N-row database"
else
  DATA="sqlfeed demo-db (../shared/bench is not present at $SHARED)"
  note "$SHARED/bench/programs.sh is not present: the database from sqlfeed demo-db"
  DB=/tmp/jobsbench/demo-$N.db
  mkdir -p /tmp/jobsbench
  [ -s "$DB" ] || "$SQLFEED" demo-db --rows "$N" -o "$DB" >&2 || die "cannot make $DB"
fi
T=$(mktemp -d /tmp/sqlfeed-python.XXXXXX)
trap 'rm -rf "$T"' EXIT
one() { # KIND: one render under /usr/bin/time, "wall rss_kib" appended to KIND.times
  case $1 in
    cli) c=("$SQLFEED" render --db "$DB" -t simplyhired -o "$T/cli.xml" -q) ;;
    py)  c=(env PYTHONPATH="$PKG" "$PY" -c "import sqlfeed, sys; sqlfeed.render(db=sys.argv[1], template='simplyhired', output=sys.argv[2])" "$DB" "$T/py.xml") ;;
    bare) c=("$PY" -c "pass") ;;
  esac
  /usr/bin/time -f '%e %M' -o "$T/t" "${c[@]}" >/dev/null 2>"$T/log" || { cat "$T/log" >&2; die "$1 failed"; }
  tail -n 1 "$T/t" >>"$T/$1.times"
}
med() { awk -v c="$2" '{print $c}' "$T/$1.times" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
note "$N rows: $RUNS interleaved rounds of the CLI and the package (load $(cut -d' ' -f1-3 /proc/loadavg))"
one cli
for _ in $(seq "$RUNS"); do one cli; one py; one bare; done
cmp -s "$T/cli.xml" "$T/py.xml" || die "the package's feed differs from the CLI's"
echo "data: $DATA; $N rows; medians of $RUNS interleaved rounds"
echo
echo "| render | wall s | peak RSS MiB |"
echo "|---|---:|---:|"
for k in cli py bare; do
  echo "| $k | $(med $k 1) | $(awk "BEGIN {printf \"%.1f\", $(med $k 2) / 1024}") |"
done
echo "the package / the CLI (wall): $(awk "BEGIN {printf \"%.2f\", $(med py 1) / $(med cli 1)}"); the package's peak RSS over the bare interpreter: $(awk "BEGIN {printf \"%.1f\", ($(med py 2) - $(med bare 2)) / 1024}") MiB; the feeds are identical"
