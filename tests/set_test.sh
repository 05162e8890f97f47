#!/bin/bash
# set_test.sh BUILD: a file set is published atomically, and one run at a
# time writes an output.
#   - the unit tests of build/tests/set_test (patterns, tags, the state
#     record, the lock, stale temporary files);
#   - a set with an index, replaced by a smaller one while the publication is
#     killed (SIGKILL, no cleanup: a power cut as far as the directory is
#     concerned) right before and right after each step, or each step fails
#     (tests/inject.c: SQLFEED_INJECT_KILL_AT / KILL_AFTER / FAIL_AT): the
#     index in place is the previous one or the new one, and every part it
#     names is there and complete; the next run leaves exactly the new set;
#   - the same for a set without an index (per-part atomic: every part a
#     complete document);
#   - the lock: a second run refused (SF_ERR_BUSY, the PID named) without
#     touching the first run's files; the lock free once the first run ends
#     or dies; the temporary files of a SIGKILLed run removed by the next
#     run, not by a refused one; the CLI's exit status for a refused run.
# Runs inside a private mount namespace with a tmpfs /dev (as
# publish_test.sh does), so nothing here can reach the real /dev.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: set_test.sh BUILD}
B=$(cd "$B" && pwd)
ST=$B/tests/set_test
INJ=$B/tests/inject.so
SF=$B/sqlfeed
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-set.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0
ulimit -c 0

if [ "${SET_TEST_IN_NS:-}" != 1 ]; then
    if unshare --mount --propagation private true 2>/dev/null; then
        exec env SET_TEST_IN_NS=1 unshare --mount --propagation private bash -c '
            mount -t tmpfs -o mode=755 sqlfeed-test-dev /dev || exit 99
            ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout
            ln -s /proc/self/fd/2 /dev/stderr; ln -s /proc/self/fd /dev/fd
            mknod -m 666 /dev/null c 1 3
            exec bash "$0" "$1"' "$0" "$B"
    fi
    echo "SKIP: set_test.sh: unshare --mount is not available"
    exit 0
fi

. "$(dirname "$0")/lib.sh"

# ---- unit tests ---------------------------------------------------------------
mkdir -p "$T/unit"
"$ST" "$T/unit" | grep -E '^(PASS|FAIL|SKIP): '

# check.py DIR [indexed]: prints "old", "new" or "BAD: why". A set with an
# index: the index names parts that all exist and hold exactly the rows it
# says, each a complete document; "old" when it is the index of 35 rows in
# 4 parts, "new" for 15 rows in 2. Without one: every p-NNN.xml present is a
# complete document; "new" when 001-002 are the new ones and no 003 exists.
cat > "$T/check.py" <<'EOF'
import os, re, sys
d, indexed = sys.argv[1], sys.argv[2] != "0"
def part_ok(path, rows=None):
    try:
        t = open(path).read()
    except OSError as e:
        return "missing " + os.path.basename(path)
    m = re.fullmatch(r"<part>\n((?:<row>\d+</row>\n)*)</part>\n", t)
    if not m:
        return "incomplete " + os.path.basename(path)
    n = m.group(1).count("<row>")
    if rows is not None and n != rows:
        return "%s has %d rows, the index says %d" % (os.path.basename(path), n, rows)
    return None
if indexed:
    try:
        idx = open(os.path.join(d, "index.xml")).read()
    except OSError:
        print("BAD: no index"); sys.exit()
    m = re.fullmatch(r"<index>\n((?:<part name=\"[^\"]+\" rows=\"\d+\"/>\n)*)</index>\n", idx)
    if not m:
        print("BAD: index incomplete: %r" % idx[:200]); sys.exit()
    parts = re.findall(r'name="([^"]+)" rows="(\d+)"', idx)
    for name, rows in parts:
        why = part_ok(os.path.join(d, name), int(rows))
        if why:
            print("BAD: " + why); sys.exit()
    total = sum(int(r) for _, r in parts)
    kind = {(4, 35): "old", (2, 15): "new"}.get((len(parts), total))
    print(kind or "BAD: an index of %d parts, %d rows" % (len(parts), total))
else:
    names = sorted(n for n in os.listdir(d) if re.fullmatch(r"p-\d{3}\.xml", n))
    for n in names:
        why = part_ok(os.path.join(d, n))
        if why:
            print("BAD: " + why); sys.exit()
    rows = {n: open(os.path.join(d, n)).read().count("<row>") for n in names}
    print("new" if names == ["p-001.xml", "p-002.xml"] and rows["p-002.xml"] == 5 else "old")
EOF

# The directory after a clean run: the index (if any), exactly the parts it
# or the set names, the state records; no temporary file, no lock. TAG
# (optional): a crashed run's tag whose parts no record ever listed: those
# orphans are allowed (docs/sink.md: never removed automatically).
tidy() {
    $PY - "$1" "$2" "${3:-}" <<'EOF'
import os, re, sys
d, indexed, orphan = sys.argv[1], sys.argv[2] != "0", sys.argv[3]
have = set(os.listdir(d))
if orphan:
    have = {n for n in have if not re.fullmatch(r"p-%s-\d{3}\.xml" % orphan, n)}
if indexed:
    idx = open(os.path.join(d, "index.xml")).read()
    want = set(re.findall(r'name="([^"]+)"', idx)) | {"index.xml", ".p-%r-%03d.xml.sqlfeed.state"}
    have.discard(".index.xml.sqlfeed.state")  # written when the index counts its rows
else:
    want = {"p-001.xml", "p-002.xml", ".p-%03d.xml.sqlfeed.state"}
if have != want:
    print("extra: %s missing: %s" % (sorted(have - want), sorted(want - have)))
EOF
}

# One scenario: the previous set (35 rows, 4 parts), then the new one (15
# rows, 2 parts) with VAR=OP:N; checks what is left, then a clean run.
# Sets $outcome to what the injected run did (ok, killed, failed).
# indexed: 1 (an index), 0 (none), R (an index, through sf_render: the feed
# loop's commit, then sf_output_settle).
publish() {
    if [ "$2" = R ]; then "$ST" --render "$1" "$3" 10; else "$ST" --publish "$1" "$3" 10 "$2"; fi
}
scenario() {
    local indexed=$1 var=$2 step=$3 d=$T/s
    rm -rf "$d"; mkdir -p "$d"
    publish "$d" "$indexed" 35 2>"$T/err0" || { fail "set: previous run" "$(cat "$T/err0")"; return 1; }
    local before; before=$(ls -A "$d")
    # Through a shell of its own whose report of the SIGKILL goes nowhere.
    local args=(--publish "$d" 15 10 "$indexed")
    [ "$indexed" = R ] && args=(--render "$d" 15 10)
    E=$T/err1 bash -c '"$@" >/dev/null 2>"$E"; exit $?' - \
        env "$var=$step" LD_PRELOAD="$INJ" "$ST" "${args[@]}" 2>/dev/null
    local rc=$?
    outcome=ok; [ $rc = 137 ] && outcome=killed; [ $rc = 1 ] && outcome=failed
    local what; what=$($PY "$T/check.py" "$d" "$indexed")
    case $what in
    BAD*) fail "set(index=$indexed) $var=$step ($outcome)" "$what"; return 1 ;;
    esac
    if [ $outcome = ok ] && [ "$what" != new ]; then
        fail "set(index=$indexed) $var=$step" "the run succeeded but the $what set is in place"; return 1
    fi
    if [ $outcome = failed ] && ! grep -q . "$T/err1"; then
        fail "set(index=$indexed) $var=$step" "failed without a message"; return 1
    fi
    # The crashed run's tag, when it renamed parts but its record was never
    # written (stopped between steps 2 and 5): its parts are in no record,
    # so they are the only files the next run may leave beside the set.
    local orphan=
    if [ $outcome != ok ] && [ "$indexed" != 0 ]; then
        orphan=$(ls -A "$d" | grep -vxF "$before" | sed -nE 's/^p-([0-9a-f]{8})-[0-9]{3}\.xml$/\1/p' | sort -u)
        [ "$(printf '%s\n' "$orphan" | grep -c .)" -gt 1 ] && { fail "set(index=$indexed) $var=$step" "parts of several tags: $orphan"; return 1; }
        [ -n "$orphan" ] && grep -q "\"tag\":\"$orphan\"" "$d/.p-%r-%03d.xml.sqlfeed.state" 2>/dev/null && orphan=
    fi
    # The next run: succeeds (no lock left behind) and leaves only the new set.
    publish "$d" "$indexed" 15 2>"$T/err2" || {
        fail "set(index=$indexed) $var=$step: next run" "$(cat "$T/err2")"; return 1; }
    local left; left=$(tidy "$d" "$indexed" "$orphan")
    if [ -n "$left" ]; then fail "set(index=$indexed) $var=$step: next run leaves the set alone" "$left"; return 1; fi
    echo "$what" > "$T/what"
    return 0
}

for indexed in 1 R 0; do
    for var in SQLFEED_INJECT_KILL_AT SQLFEED_INJECT_KILL_AFTER SQLFEED_INJECT_FAIL_AT; do
        for op in fsync rename dirsync unlink; do
            bad=0 n=0 seen=
            # Step numbers until the injection no longer reaches the run.
            while :; do
                n=$((n + 1))
                scenario $indexed $var "$op:$n" || { bad=1; break; }
                seen="$seen $outcome/$(cat "$T/what")"
                [ $outcome = ok ] && break
                [ $n -ge 30 ] && break
            done
            [ $bad = 0 ] && pass "set(index=$indexed) $var=$op:1..$n: previous or new set, each part whole;$seen"
        done
    done
done

# The commit point is the index's rename: killed right before it, the old
# set; right after, the new one. (Renames: 2 parts, then the index.)
scenario 1 SQLFEED_INJECT_KILL_AT rename:3 && ok "set: killed before the index's rename: the previous set" grep -qx old "$T/what"
scenario 1 SQLFEED_INJECT_KILL_AFTER rename:3 && ok "set: killed after the index's rename: the new set" grep -qx new "$T/what"
# Old parts outlive the old index: killed before the first removal, all 4
# old parts are still there beside the new index.
scenario 1 SQLFEED_INJECT_KILL_AT unlink:1 &&
    ok "set: killed before removing the old parts: new index, old parts kept until the next run" grep -qx new "$T/what"

# ---- the lock -----------------------------------------------------------------
d=$T/lock; mkdir -p "$d"
"$ST" --hold "$d/feed.xml" "$T/held" 3 & holder=$!
for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.05; done
tmp=$(ls -A "$d" | grep -E '^\.feed\.xml\.sqlfeed-[0-9a-f]{8}$')
"$ST" --open "$d/feed.xml" > "$T/second" 2>&1; rc=$?
ok "lock: a second run is refused with SF_ERR_BUSY, naming the first's PID" \
    grep -qx "status 10: another sqlfeed run (PID $holder) is writing $d/feed.xml" "$T/second"
ok "lock: the refused run leaves the first run's temporary file alone" test -n "$tmp" -a -e "$d/$tmp"
ok "lock: sf_output_lock_path names the lock file, which exists while held" \
    sh -c "grep -qx '$d/.feed.xml.sqlfeed.lock' '$T/held' && [ -e '$d/.feed.xml.sqlfeed.lock' ]"
wait $holder
ok "lock: the first run publishes normally" grep -qx "held feed" "$d/feed.xml"
"$ST" --open "$d/feed.xml" > "$T/third" 2>&1
ok "lock: free once the first run ended" grep -qx "status 0" "$T/third"
ok "lock: no lock file or temporary file left" sh -c "! ls -A '$d' | grep -q sqlfeed-"
ok "lock: the lock file is gone" sh -c "! ls -A '$d' | grep -q 'sqlfeed.lock'"

# A run killed mid-stream: its temporary file stays; a refused run leaves it;
# the next run that gets the lock removes it.
rm -rf "$d"; mkdir -p "$d"
bash -c '"$@"; exit $?' - "$ST" --kill "$d/feed.xml" 2>/dev/null
stale=$(ls -A "$d" | grep -E '^\.feed\.xml\.sqlfeed-[0-9a-f]{8}$')
ok "stale: a SIGKILLed run leaves its temporary file" test -n "$stale"
"$ST" --hold "$d/feed.xml" "$T/held3" 3 & holder=$!
for _ in $(seq 100); do [ -e "$T/held3" ] && break; sleep 0.05; done
ok "stale: the next run (holding the lock) removed it" test ! -e "$d/$stale"
wait $holder
rm -rf "$d"; mkdir -p "$d"
"$ST" --hold "$d/feed.xml" "$T/held4" 3 & holder=$!
for _ in $(seq 100); do [ -e "$T/held4" ] && break; sleep 0.05; done
echo stale > "$d/.feed.xml.sqlfeed-0badf00d"
"$ST" --open "$d/feed.xml" > "$T/refused" 2>&1
ok "stale: a refused run does not touch a temporary file" \
    sh -c "grep -q 'status 10' '$T/refused' && [ -e '$d/.feed.xml.sqlfeed-0badf00d' ]"
wait $holder
"$ST" --open "$d/feed.xml" > /dev/null 2>&1
ok "stale: ... the next run that gets the lock does" test ! -e "$d/.feed.xml.sqlfeed-0badf00d"

# The CLI: a render refused by the lock exits with the documented status 8.
if [ -x "$SF" ]; then
    "$SF" demo-db --rows 200 -o "$T/jobs.db" 2>/dev/null
    rm -rf "$d"; mkdir -p "$d"
    SQLFEED_INJECT_FSYNC_DELAY_MS=2000 SQLFEED_INJECT_FSYNC_MARK="$T/mark" LD_PRELOAD="$INJ" \
        "$SF" render --db "$T/jobs.db" --template simplyhired -q -o "$d/feed.xml" 2>"$T/cli1" & first=$!
    for _ in $(seq 200); do [ -e "$T/mark" ] && break; sleep 0.02; done
    "$SF" render --db "$T/jobs.db" --template simplyhired -q -o "$d/feed.xml" 2>"$T/cli2"; rc=$?
    wait $first; rc1=$?
    ok "cli: an overlapping render exits 8 naming the other run (got $rc: $(head -c 200 "$T/cli2"))" \
        sh -c "[ $rc = 8 ] && grep -q 'another sqlfeed run (PID $first) is writing $d/feed.xml' '$T/cli2'"
    ok "cli: the first render publishes (exit $rc1)" sh -c "[ $rc1 = 0 ] && grep -q '</' '$d/feed.xml'"

    # A user's file that matches the pattern is never removed: the removal
    # takes only the names the previous record lists.
    u=$T/user; rm -rf "$u"; mkdir -p "$u"
    echo "mine 2024" > "$u/feed-2024.xml"; echo "mine 00001" > "$u/feed-00001.xml"
    "$SF" render --db "$T/jobs.db" -t simplyhired -q -o "$u/feed.xml" --split-rows 30 2>"$T/u1"; rc1=$?
    ok "user file: a first split run publishes (exit $rc1)" sh -c "[ $rc1 = 0 ] && [ -e '$u/feed-0003.xml' ]"
    "$SF" render --db "$T/jobs.db" -t simplyhired -q -o "$u/feed.xml" --split-rows 1000 2>"$T/u2"; rc2=$?
    ok "user file: a second, smaller run removes the parts the record listed (exit $rc2)" \
        sh -c "[ $rc2 = 0 ] && [ -e '$u/feed-0001.xml' ] && [ ! -e '$u/feed-0002.xml' ] && [ ! -e '$u/feed-0003.xml' ]"
    ok "user file: feed-2024.xml and feed-00001.xml (of the pattern, in no record) survive both runs" \
        sh -c "grep -qx 'mine 2024' '$u/feed-2024.xml' && grep -qx 'mine 00001' '$u/feed-00001.xml'"

    # Two indexes over one --parts pattern: each index names only parts that
    # exist, after each run and each rerun; a rerun of the same index removes
    # the parts its previous record listed.
    w=$T/two; rm -rf "$w"; mkdir -p "$w"
    printf '<i>\n{{#rows}}<p name="{{name}}"/>\n{{/rows}}</i>\n' > "$T/idx.mustache"
    idx() { "$SF" render --db "$T/jobs.db" -t simplyhired -q -o "$w/$1.xml" --split-rows "$2" \
                --index "$T/idx.mustache" --parts "$w/p-%r-%04d.xml"; }
    names_ok() { # every index present names only existing parts
        for i in "$w"/a.xml "$w"/b.xml; do
            [ -e "$i" ] || continue
            for n in $(sed -nE 's/.*name="([^"]+)".*/\1/p' "$i"); do [ -e "$w/$n" ] || return 1; done
        done
    }
    idx a 30; a1=$(sed -nE 's/.*name="([^"]+)".*/\1/p' "$w/a.xml")
    idx a 70; ra=$?
    gone=1; for n in $a1; do [ -e "$w/$n" ] && gone=0; done
    ok "two indexes: a rerun of one index removes the parts its previous record listed (exit $ra)" \
        sh -c "[ $ra = 0 ] && [ $gone = 1 ] && [ \$(grep -c name= '$w/a.xml') -ge 2 ]"
    good=1 rcs=
    for step in "b 50" "a 40" "b 30" "a 200" "b 50"; do
        idx $step; rcs="$rcs $?"; names_ok || good=0
    done
    ok "two indexes over one pattern: after each run and rerun both name only existing parts (exits$rcs)" \
        sh -c "[ $good = 1 ] && [ '$rcs' = ' 0 0 0 0 0' ]"

    # A single-document render of a name the pattern makes (feed-2024.xml),
    # slowed in its fsync, while a split render of feed.xml opens: the set
    # does not take the live temporary file (it is under feed-2024.xml's
    # lock); both succeed and feed-2024.xml is published.
    c=$T/conc; rm -rf "$c"; mkdir -p "$c"; rm -f "$T/cmark"
    SQLFEED_INJECT_FSYNC_DELAY_MS=3000 SQLFEED_INJECT_FSYNC_MARK="$T/cmark" LD_PRELOAD="$INJ" \
        "$SF" render --db "$T/jobs.db" -t simplyhired -q -o "$c/feed-2024.xml" 2>"$T/c1" & first=$!
    for _ in $(seq 200); do [ -e "$T/cmark" ] && break; sleep 0.02; done
    "$SF" render --db "$T/jobs.db" -t simplyhired -q -o "$c/feed.xml" --split-rows 900 2>"$T/c2"; rc2=$?
    wait $first; rc1=$?
    ok "concurrent: a set's open leaves another name's live temporary file; both exit 0 ($rc1, $rc2: $(cat "$T/c1" "$T/c2" | tr '\n' ' ' | head -c 200))" \
        sh -c "[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q '</' '$c/feed-2024.xml' && [ -e '$c/feed-0001.xml' ]"
fi
