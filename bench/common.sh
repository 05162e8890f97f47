# common.sh: what every bench script starts with (sourced: `. bench/common.sh`):
# strict mode, -h/--help printing the script's own header comment, no other
# argument, and the defaults ROWS (N, 200000), BUILD (build) and SQLFEED.
set -eu
set -o pipefail
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
case ${1:-} in -h|--help) usage ;; esac
[ $# -eq 0 ] || usage
N=${ROWS:-200000}
BUILD=${BUILD:-build}
SQLFEED=${SQLFEED:-$BUILD/sqlfeed}
