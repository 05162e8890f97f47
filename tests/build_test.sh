#!/bin/bash
# build_test.sh BUILD: the build keeps its own rules.
#  - Header dependencies are tracked (-MMD -MP): in a scratch copy of the
#    tree, touching a header rebuilds exactly the objects that include it
#    (directly or through another header, worked out here from the sources,
#    independently of the compiler's .d files) and nothing else; a header
#    that goes away does not break the next build.
#  - The command (cli/, tools/demo/) is compiled with the public header only:
#    a CLI file that includes a library header does not build, and cli/
#    includes nothing from src/.
#  - The demo-data generator is not in the library (BUILD/libsqlfeed.a) nor
#    in its public header, and is in the command.
# Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
B=${1:?usage: build_test.sh BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/sqlfeed-build.XXXXXX)
trap 'rm -rf "$T"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

# ---- what was built: the library, the command -------------------------------
if [ ! -f "$B/libsqlfeed.a" ] || [ ! -x "$B/sqlfeed" ]; then
    fail "build" "no $B/libsqlfeed.a or $B/sqlfeed"
    exit 0
fi
demo_syms=$(nm -A "$B/libsqlfeed.a" 2>/dev/null | grep -i demo)
if [ -z "$demo_syms" ] && ! nm -A "$B/libsqlfeed.a" 2>/dev/null | grep -q ':demo'; then
    pass "the library holds no demo-data code (nm libsqlfeed.a)"
else
    fail "the library holds no demo-data code (nm libsqlfeed.a)" "$(echo "$demo_syms" | head -3)"
fi
if ! grep -qi demo "$ROOT/include/sqlfeed.h"; then pass "the public header declares no demo data"
else fail "the public header declares no demo data" "$(grep -ni demo "$ROOT/include/sqlfeed.h" | head -3)"; fi
if nm "$B/sqlfeed" 2>/dev/null | grep -q ' T demo_db_write$'; then pass "the command links the demo-data generator"
else fail "the command links the demo-data generator" "no demo_db_write in $B/sqlfeed"; fi

# ---- cli/ and tools/demo/ include the public header and their own headers --
bad=""
for f in "$ROOT"/cli/*.[ch] "$ROOT"/tools/demo/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
        name=$(printf '%s' "$inc" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
        [ -n "$name" ] || continue
        case $name in
        sqlfeed.h | demo_db.h) ;;
        */* | *..*) bad="$bad ${f#"$ROOT"/}:$name" ;;
        *) [ -f "$(dirname "$f")/$name" ] || bad="$bad ${f#"$ROOT"/}:$name" ;;
        esac
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
done
if [ -z "$bad" ]; then pass "cli/ and tools/demo/ include only sqlfeed.h, demo_db.h and their own headers"
else fail "cli/ and tools/demo/ include only sqlfeed.h, demo_db.h and their own headers" "$bad"; fi

# The man page names every command and every option the --help texts give.
missing=""
for cmd in "" render publish snapshot templates demo-db mem-plot; do
    # shellcheck disable=SC2086  # no command: the top-level --help
    for o in $("$B/sqlfeed" $cmd --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
        grep -qF -- "$(printf '%s' "$o" | sed 's/-/\\-/g')" "$ROOT/docs/sqlfeed.1" || missing="$missing ${cmd:-sqlfeed} $o;"
    done
    [ -z "$cmd" ] || grep -qF "$(printf '%s' "$cmd" | sed 's/-/\\-/g')" "$ROOT/docs/sqlfeed.1" || missing="$missing $cmd;"
done
if [ -z "$missing" ]; then pass "the man page names every command and every option of the --help texts"
else fail "the man page names every command and option" "$missing"; fi

if [ "${SANITIZED:-0}" = 1 ]; then
    echo "SKIP: build: scratch-tree rebuild checks: they run in the optimised pass"
    exit 0
fi

# ---- a scratch copy of the tree ---------------------------------------------
S=$T/tree
mkdir -p "$S"
for d in Makefile sqlfeed.pc.in include src cli tools templates examples docs; do
    cp -R "$ROOT/$d" "$S/" || { fail "build: copy the tree" "cannot copy $d"; exit 0; }
done
M=(make -C "$S" --no-print-directory BUILD=b OPT=-O0 CFLAGS=-O0)
if ! "${M[@]}" -j2 all >"$T/log" 2>&1; then
    fail "build: the scratch tree builds" "$(tail -5 "$T/log")"
    exit 0
fi
if "${M[@]}" -q all; then pass "build: a second make has nothing to do"
else fail "build: a second make has nothing to do" "make -q says out of date"; fi

# compiled NAME: the sources `make -n` would compile, one a line, sorted
compiled() { "${M[@]}" -n all 2>&1 | sed -n 's/.* -c \([^ ]*\.c\) -o .*/\1/p' | sed "s|^$S/||" | sort; }

# includers HEADER: the sources of `make all` that include HEADER, directly
# or through other headers, found by reading the #include lines.
includers() {
    "$PY" - "$S" "$1" <<'EOF'
import os, re, sys
root, target = sys.argv[1], os.path.normpath(sys.argv[2])
lib_dirs, cli_dirs = ["include", "src"], ["include", "tools/demo"]
inc_re = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
def resolve(name, here, dirs):
    for d in [here] + dirs:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, p)):
            return p
    return None
def reaches(path, dirs, seen):
    if path == target:
        return True
    if path in seen:
        return False
    seen.add(path)
    with open(os.path.join(root, path), errors="replace") as f:
        text = f.read()
    for name in inc_re.findall(text):
        p = resolve(name, os.path.dirname(path), dirs)
        if p and reaches(p, dirs, seen):
            return True
    return False
srcs = []
for d, dirs in (("src", lib_dirs), ("cli", cli_dirs), ("tools/demo", cli_dirs)):
    for dp, _, files in os.walk(os.path.join(root, d)):
        for f in files:
            if f.endswith(".c"):
                srcs.append((os.path.relpath(os.path.join(dp, f), root), dirs))
gen = "b/gen/builtin_templates.c"
if os.path.isfile(os.path.join(root, gen)):
    srcs.append((gen, lib_dirs))
for s, dirs in sorted(srcs):
    if reaches(s, dirs, set()):
        print(s)
EOF
}

# touched NAME HEADER: touching HEADER rebuilds exactly its includers, then
# the build is brought up to date again.
touched() {
    local name=$1 h=$2
    sleep 0.01
    touch "$S/$h"
    compiled >"$T/got"
    includers "$h" | sort >"$T/want"
    if [ ! -s "$T/want" ]; then
        fail "$name" "nothing includes $h (the test is wrong)"
    elif cmp -s "$T/got" "$T/want"; then
        pass "$name ($(wc -l <"$T/want") objects)"
    else
        fail "$name" "rebuilt: $(tr '\n' ' ' <"$T/got"); includers: $(tr '\n' ' ' <"$T/want")"
    fi
    "${M[@]}" -j2 all >"$T/log" 2>&1 || fail "$name: rebuild" "$(tail -3 "$T/log")"
}
touched "touching cli/monitor.h rebuilds exactly its includers" cli/monitor.h
touched "touching src/sink/sink.h rebuilds exactly its includers" src/sink/sink.h
touched "touching src/common.h rebuilds exactly its includers" src/common.h
touched "touching tools/demo/demo_db.h rebuilds exactly its includers" tools/demo/demo_db.h
touched "touching include/sqlfeed.h rebuilds exactly its includers" include/sqlfeed.h

# Touching a library header must leave the command's objects alone.
sleep 0.01
touch "$S/src/template/template.h"
if compiled | grep -qE '^(cli|tools)/'; then
    fail "a library header does not rebuild the command's objects" "$(compiled | grep -E '^(cli|tools)/' | tr '\n' ' ')"
else
    pass "a library header does not rebuild the command's objects"
fi
"${M[@]}" -j2 all >"$T/log" 2>&1

# -MP: a header that is no longer included, then deleted, breaks nothing.
printf '#define EXTRA_VALUE 1\n' >"$S/cli/extra.h"
sed -i '1i #include "extra.h"' "$S/cli/misc.c"
"${M[@]}" -j2 all >"$T/log" 2>&1
sed -i '1d' "$S/cli/misc.c"
rm -f "$S/cli/extra.h"
if "${M[@]}" -j2 all >"$T/log" 2>&1; then pass "a deleted header does not break the build (-MP)"
else fail "a deleted header does not break the build (-MP)" "$(tail -3 "$T/log")"; fi

# An object built without its dependency file (a build tree from before
# -MMD, or a deleted .d) is rebuilt: it cannot tell which headers it used.
"${M[@]}" -j2 all >"$T/log" 2>&1
d=$(find "$S/b/obj/src/template" -name 'run.d' | head -1)
if [ -z "$d" ]; then fail "an object without its .d file is rebuilt" "no run.d in $S/b/obj/src/template"
else
    rm -f "$d"
    got=$(compiled | tr '\n' ' ')
    if [ "$got" = "src/template/run.c " ]; then pass "an object without its .d file is rebuilt (only it)"
    else fail "an object without its .d file is rebuilt (only it)" "make -n would compile: '$got'"; fi
    "${M[@]}" -j2 all >"$T/log" 2>&1
fi

# ---- the command sees the public header only ---------------------------------
"${M[@]}" -n -B all >"$T/n" 2>&1
bad=$(grep -E ' -c (cli|tools/demo)/[^ ]*\.c ' "$T/n" | grep -E -- '-I *src( |$)')
lib_ok=$(grep -E ' -c src/[^ ]*\.c ' "$T/n" | grep -vcE -- '-I *src( |$)')
if [ -z "$bad" ] && [ "$(grep -cE ' -c (cli|tools/demo)/' "$T/n")" -gt 0 ] && [ "$lib_ok" = 0 ]; then
    pass "cli/ and tools/demo/ are compiled without -Isrc, the library with it"
else
    fail "cli/ and tools/demo/ are compiled without -Isrc, the library with it" "$(echo "$bad" | head -c 300)"
fi
for h in common.h template/template.h sink/sink.h; do
    printf '#include "%s"\nint cli_internal_probe(void);\nint cli_internal_probe(void) { return 0; }\n' "$h" \
        >"$S/cli/zz_probe.c"
    if "${M[@]}" all >"$T/log" 2>&1; then
        fail "a CLI file including \"$h\" does not build" "it built"
    elif grep -q "$h: No such file" "$T/log"; then
        pass "a CLI file including \"$h\" does not build"
    else
        fail "a CLI file including \"$h\" does not build" "failed otherwise: $(grep -m1 error "$T/log")"
    fi
done
rm -f "$S/cli/zz_probe.c"

# ---- the shared library: soname, exports, make install, pkg-config ----------------
# (the scratch tree's build: the library objects are -fPIC -fvisibility=hidden)
SO=$S/b/libsqlfeed.so
ver=$(sed -n 's/^#define SF_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/sqlfeed.h")
soname=$(readelf -d "$SO" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ "$soname" = "libsqlfeed.so.${ver%%.*}" ] && [ "$(readlink "$SO")" = "$soname" ] &&
    [ "$(readlink "$S/b/$soname")" = "libsqlfeed.so.$ver" ]; then
    pass "libsqlfeed.so -> $soname (the soname) -> libsqlfeed.so.$ver"
else
    fail "libsqlfeed.so -> its soname -> the versioned file" "soname '$soname', links $(readlink "$SO") $(readlink "$S/b/$soname" 2>/dev/null)"
fi
# Every function sqlfeed.h declares is marked SF_API, and the library exports
# exactly those: no internal sf_ symbol, nothing else.
unmarked=$(grep -nE '^(const |unsigned )?[a-z_][a-z_0-9]* \*?sf_[a-z_0-9]+\(' "$ROOT/include/sqlfeed.h")
grep -oE '^SF_API [^(]*' "$ROOT/include/sqlfeed.h" | awk '{print $NF}' | tr -d '*' | sort >"$T/declared"
nm -D --defined-only "$SO" | awk '{print $3}' | sort >"$T/exported"
if [ -z "$unmarked" ] && [ -s "$T/declared" ] && cmp -s "$T/declared" "$T/exported"; then
    pass "the shared library exports exactly the $(wc -l <"$T/declared") functions sqlfeed.h declares (nm -D)"
else
    fail "the shared library exports exactly what sqlfeed.h declares" \
        "unmarked: $(echo "$unmarked" | head -2); exported, not declared: $(comm -13 "$T/declared" "$T/exported" | head -5 | tr '\n' ' '); declared, not exported: $(comm -23 "$T/declared" "$T/exported" | head -5 | tr '\n' ' ')"
fi
D=$T/dest
if "${M[@]}" install DESTDIR="$D" PREFIX=/usr/local >"$T/inst.log" 2>&1; then
    L=$D/usr/local
    miss=""
    for f in bin/sqlfeed lib/libsqlfeed.a "lib/libsqlfeed.so.$ver" lib/libsqlfeed.so include/sqlfeed.h \
             lib/pkgconfig/sqlfeed.pc share/man/man1/sqlfeed.1 share/sqlfeed/templates/sitemap.mustache \
             share/sqlfeed/templates/google-merchant.pg.sql; do
        [ -e "$L/$f" ] || miss="$miss $f"
    done
    if [ -z "$miss" ]; then pass "make install: the command, both libraries, the header, sqlfeed.pc, the man page, the templates"
    else fail "make install installs everything" "missing:$miss"; fi
    pc() { PKG_CONFIG_PATH=$L/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config "$@" sqlfeed; }
    "$S/b/sqlfeed" demo-db --rows 50 -o "$T/ex.db" >/dev/null 2>&1
    # shellcheck disable=SC2046  # pkg-config's words are the flags
    if cc -o "$T/ex_dyn" "$ROOT/examples/render_feed.c" $(pc --cflags --libs) 2>"$T/cc.log" &&
        readelf -d "$T/ex_dyn" | grep -q "NEEDED.*\[libsqlfeed.so.${ver%%.*}\]" &&
        LD_LIBRARY_PATH=$L/lib "$T/ex_dyn" "$T/ex.db" "$T/ex_dyn.xml" >"$T/ex.log" 2>&1 &&
        grep -q '</jobs>' "$T/ex_dyn.xml"; then
        pass "cc x.c \$(pkg-config --cflags --libs sqlfeed) links the installed shared library, and it renders"
    else
        fail "pkg-config --cflags --libs sqlfeed links the shared library" "$(head -c 300 "$T/cc.log") $(head -c 300 "$T/ex.log" 2>/dev/null)"
    fi
    # shellcheck disable=SC2046
    if cc -o "$T/ex_static" "$ROOT/examples/render_feed.c" $(pc --cflags) -Wl,-Bstatic -lsqlfeed \
            -Wl,-Bdynamic $(pc --static --libs | sed 's/-lsqlfeed//') 2>"$T/cc.log" &&
        ! readelf -d "$T/ex_static" | grep -q 'NEEDED.*libsqlfeed' &&
        "$T/ex_static" "$T/ex.db" "$T/ex_static.xml" >"$T/ex.log" 2>&1 && cmp -s "$T/ex_dyn.xml" "$T/ex_static.xml"; then
        pass "pkg-config --static --libs sqlfeed links the static library (the same feed)"
    else
        fail "pkg-config --static --libs sqlfeed links the static library" "$(head -c 300 "$T/cc.log") $(head -c 300 "$T/ex.log")"
    fi
else
    fail "make install DESTDIR=... PREFIX=/usr/local" "$(tail -3 "$T/inst.log")"
fi
