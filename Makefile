# sqlfeed: library, command-line tool, tests. GNU Make.
#   make            build build/sqlfeed and build/libsqlfeed.a
#   make check      build and run every test, then again under ASan+UBSan
#   make spec       the Mustache spec suite alone
#   make demo       render the SimplyHired feed from a built-in demo database
#   make bench      time sqlfeed against the reference programs (../shared/bench)
#   make deps       install missing Debian packages (apt-get, as root)
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= cc
SHARED  ?= $(abspath ../shared)
OPT     ?= -O2
WARN     = -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Wformat=2
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=c17 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc $(shell pkg-config --cflags libpq libmariadb 2>/dev/null)
# Server client libraries (libpq, libmariadb) are loaded with dlopen when a
# server URL is used: only their headers are needed to build.
LDLIBS   = -lsqlite3 -ldl -lpthread -lm
TEST_LDLIBS = $(LDLIBS) -lexpat $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c)
TEST_CPPFLAGS = $(shell pkg-config --cflags json-c 2>/dev/null)

LIB_SRC := $(sort $(wildcard src/*/*.c)) $(BUILD)/gen/builtin_templates.c
CLI_SRC := $(sort $(wildcard cli/*.c))
TEMPLATES := $(sort $(wildcard templates/*.mustache))
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(patsubst $(BUILD)/%,%,$(LIB_SRC)))
CLI_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC))
TESTS   := $(BUILD)/tests/unit_test $(BUILD)/tests/spec_test $(BUILD)/tests/hostile_test \
           $(BUILD)/tests/inject.so $(BUILD)/examples/render_feed
TESTS   += $(BUILD)/tests/secret_test

.PHONY: all check test spec demo bench deps install clean asan
all: $(BUILD)/sqlfeed $(BUILD)/libsqlfeed.a

$(BUILD)/obj/%.o: %.c include/sqlfeed.h $(wildcard src/*.h src/*/*.h) | $(BUILD)/gen/builtin_templates.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c src/template/template.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 $(WARN) -O2 $< -o $@

$(BUILD)/gen/builtin_templates.c: $(BUILD)/tools/embed $(TEMPLATES) $(wildcard templates/*.sql)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $(TEMPLATES) > $@.tmp && mv $@.tmp $@

$(BUILD)/libsqlfeed.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/sqlfeed: $(CLI_OBJ) $(BUILD)/libsqlfeed.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(CLI_OBJ) $(BUILD)/libsqlfeed.a $(LDLIBS) -o $@

# Tests may read the library's internal headers (-Isrc); the CLI may not.
$(BUILD)/tests/%: tests/%.c $(BUILD)/libsqlfeed.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(ALL_CFLAGS) $< $(BUILD)/libsqlfeed.a $(TEST_LDLIBS) -o $@

$(BUILD)/tests/inject.so: tests/inject.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 $(WARN) -O2 -fPIC -shared -D_GNU_SOURCE $< -o $@ -ldl

$(BUILD)/examples/render_feed: examples/render_feed.c $(BUILD)/libsqlfeed.a
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(ALL_CFLAGS) $< $(BUILD)/libsqlfeed.a $(LDLIBS) -o $@

test: all $(TESTS)
	SHARED=$(SHARED) SANITIZED=$(SANITIZED) COUNTS=$(COUNTS) tests/run.sh $(BUILD)

# The suite twice: optimised (plus valgrind), then under ASan+UBSan (a
# separate build tree); the last line adds both runs up.
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check: deps
	@mkdir -p $(BUILD) && rm -f $(BUILD)/counts
	@$(MAKE) --no-print-directory test COUNTS=$(abspath $(BUILD)/counts); a=$$?; \
	$(MAKE) --no-print-directory test BUILD=$(BUILD)/asan OPT=-O1 SANITIZED=1 \
	  EXTRA_CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	  COUNTS=$(abspath $(BUILD)/counts); b=$$?; \
	awk '{p += $$1; f += $$2; s += $$3} END {printf "total: %d passed, %d failed, %d skipped\n", p, f, s}' \
	  $(BUILD)/counts 2>/dev/null; \
	[ $$a -eq 0 ] && [ $$b -eq 0 ]

spec: $(BUILD)/tests/spec_test
	$(BUILD)/tests/spec_test $(SHARED)/mustache-spec

demo: deps all
	@mkdir -p $(BUILD)/demo
	$(BUILD)/sqlfeed demo-db --rows 10000 -o $(BUILD)/demo/jobs.db
	$(BUILD)/sqlfeed render --db $(BUILD)/demo/jobs.db --template simplyhired -o $(BUILD)/demo/feed.xml
	@head -c 600 $(BUILD)/demo/feed.xml; echo ...

bench: all
	SQLFEED=$(BUILD)/sqlfeed BUILD=$(BUILD) SHARED=$(SHARED) bench/bench.sh

deps:
	@tools/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/sqlfeed/templates $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/sqlfeed $(DESTDIR)$(PREFIX)/bin/sqlfeed
	install -m 644 $(BUILD)/libsqlfeed.a $(DESTDIR)$(PREFIX)/lib/libsqlfeed.a
	install -m 644 include/sqlfeed.h $(DESTDIR)$(PREFIX)/include/sqlfeed.h
	install -m 644 templates/*.mustache templates/*.sql $(DESTDIR)$(PREFIX)/share/sqlfeed/templates/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define SF_VERSION_STRING "\(.*\)"/\1/p' include/sqlfeed.h)|' \
	  sqlfeed.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sqlfeed.pc

clean:
	rm -rf $(BUILD)
