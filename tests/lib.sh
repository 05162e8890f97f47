# lib.sh: the helpers the shell suites share; sourced after T (a scratch
# directory) is set. Each prints the lines tests/run.sh counts:
# "PASS: name", "FAIL: name: detail", "SKIP: name: why".
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }
# run CMD...: runs it; sets rc; stdout in $T/out, stderr in $T/err
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
# expect NAME RC REGEX: the last run exited RC and its stderr matches REGEX
expect() {
    if [ "$rc" = "$2" ] && grep -qE -- "$3" "$T/err"; then pass "$1"
    else fail "$1" "exit $rc (want $2); stderr: $(head -c 400 "$T/err")"; fi
}
# ok NAME CMD...: passes when CMD succeeds
ok() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi; }
# no_temp DIR: no temporary file (.NAME.sqlfeed-XXXXXXXX) is left in DIR
no_temp() { ! find "$1" -maxdepth 1 -name '.*.sqlfeed-*' | grep -q .; }
# one_line: the last run's stderr is one line
one_line() { [ "$(grep -c . "$T/err")" = 1 ]; }
# previous FILE / is_previous FILE: a stand-in previous feed, and whether it stayed
previous() { echo "previous feed" > "$1"; }
is_previous() { [ "$(cat "$1")" = "previous feed" ]; }
