#!/bin/sh
# deps.sh [fuzz]: installs the Debian packages sqlfeed needs to build, test
# (make check) and bench, if any is missing (apt-get update, then apt-get
# install -y, as root); with `fuzz`, those `make fuzz` needs too (clang and
# libFuzzer's runtime, libclang_rt.fuzzer). Says so and does nothing when all
# are present.
set -eu
PKGS="gcc make pkg-config libc6-dev libsqlite3-dev sqlite3 libjson-c-dev libexpat1-dev
      libxml2-dev libxml2-utils python3 python3-lxml python3-django python3-feedparser time valgrind
      python3-dev python3-setuptools
      libpq-dev postgresql libmariadb-dev mariadb-server mariadb-client python3-psycopg2
      git coreutils findutils binutils zlib1g-dev libzstd-dev libdeflate-dev
      libisal-dev gzip zstd pigz
      redis-server python3-celery python3-redis"
case ${1:-} in
'') ;;
fuzz) PKGS="$PKGS clang libclang-rt-dev" ;; # Debian 12: clang-14, libclang-rt-14-dev
*) echo "usage: deps.sh [fuzz]" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all $(echo $PKGS | wc -w) packages present"
    exit 0
fi
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "deps: not root; run as root: apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
