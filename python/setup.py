"""Builds the sqlfeed extension against ../include/sqlfeed.h, linking
libsqlfeed.a statically (SQLFEED_BUILD: the build directory, default ../build;
`make python` builds it first)."""
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("SQLFEED_BUILD", os.path.join(ROOT, "build")))
LIB = os.path.join(BUILD, "libsqlfeed.a")
if not os.path.exists(LIB):
    raise SystemExit("setup.py: %s is missing: run `make` in %s first" % (LIB, ROOT))

ext = Extension(
    "sqlfeed._sqlfeed",
    sources=["sqlfeed/_sqlfeed.c"],
    include_dirs=[os.path.join(ROOT, "include")],
    extra_compile_args=["-std=c17", "-Wall", "-Wextra", "-D_GNU_SOURCE"],
    extra_objects=[LIB],
    # libsqlfeed's own dependencies (the Makefile's LDLIBS); libpq and
    # libmariadb are loaded with dlopen when a server URL is used.
    libraries=["sqlite3", "z", "zstd", "deflate", "isal", "dl", "pthread", "m"],
    # The library's symbols stay inside the module: only PyInit__sqlfeed is exported.
    extra_link_args=["-Wl,--exclude-libs,ALL"],
    depends=[LIB, os.path.join(ROOT, "include", "sqlfeed.h")],
)

setup(name="sqlfeed", version="0.1.0", packages=["sqlfeed"], ext_modules=[ext],
      python_requires=">=3.10")
