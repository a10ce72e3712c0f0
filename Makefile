# mailroom - GNU make build.
#
#   make deps      install the Debian 12 packages the build and the tests need
#   make           build build/mailroomd, build/mailroomctl and the unit tests
#   make check     unit tests (prove) and integration tests, on SQLite and
#                  on PostgreSQL (check-pg)
#   make asan      the unit and integration tests under ASan + UBSan
#   make test      check, then asan: the whole suite (what CI runs)
#   make check-valgrind  the unit tests under valgrind
#   make check-slow  the pathological messages at 25 MB too (66-pathological.t)
#   make run       initialise var/mailroom.db and run mailroomd in the foreground
#   make bench     throughput figures (mailroomd vs smtp-sink; the corpus;
#                  SQLite vs PostgreSQL; the cost of 0 to 5,000 rules;
#                  IMAP drain and IDLE latency; outgoing mail; workflows:
#                  100,000 timers waiting, 10,000 follow-ups due at once)
#   make bench-compare BASE=<git rev>  CPU per message of mailroomd built
#                  from BASE (a worktree in var/bench-base) against this
#                  tree's, interleaved in one run, SQLite and PostgreSQL
#                  (tools/bench-storage.py; MR_BENCH_MESSAGES, MR_BENCH_ROUNDS)
#   make install   PREFIX=/usr/local DESTDIR=
#   make clean
#   make fuzz      libFuzzer on parse and route (FUZZ_SECONDS=60; clang)
#   make fuzz-imap libFuzzer on the IMAP door's session (FUZZ_SECONDS=60)
#   make fresh-check  make deps && make test in a fresh Debian 12 chroot
#                  (debootstrap into var/fresh-check; root; minutes; downloads)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DESTDIR    ?=

BUILD  ?= build
# 50-corpus.t delivers every message of the corpus in one process, then
# every N-th one with a process each (the pipe door's exit codes): a third
# is 2,000 processes and keeps `make test` within 30 minutes on 2 cores;
# MR_CORPUS_SAMPLE=1 for all of them.
MR_CORPUS_SAMPLE ?= 3
CC     ?= cc
PKGS    = gmime-3.0 glib-2.0 gio-2.0 gio-unix-2.0 gmodule-2.0 sqlite3 libconfig json-glib-1.0 libsystemd nettle
# Hyperscan (libhs): the rules' one pass per field (src/model/
# mr-rule-prefilter.c).  Debian packages it for amd64 alone, so it is
# required on x86_64 and optional elsewhere, where the rules evaluate each
# condition in turn; HYPERSCAN=no builds without it anywhere.
ifeq ($(origin HYPERSCAN),undefined)
HYPERSCAN := $(if $(filter x86_64,$(shell uname -m)),yes,$(shell pkg-config --exists libhs 2>/dev/null && echo yes || echo no))
endif
ifeq ($(HYPERSCAN),yes)
PKGS   += libhs
else
HS_CFLAGS = -DMR_NO_HYPERSCAN
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The PostgreSQL driver is a module, loaded only for a postgresql:// URI:
# libpq brings about twenty libraries (Kerberos, LDAP, TLS) whose loading
# would cost every process -- an MTA's mailroomctl per message -- some
# milliseconds.  (Dovecot builds its SQL drivers as plugins too.)
PG_PKGS    = libpq glib-2.0
PG_CFLAGS := $(shell pkg-config --cflags $(PG_PKGS) 2>/dev/null)
PG_LIBS   := $(shell pkg-config --libs $(PG_PKGS) 2>/dev/null)
MODULEDIR ?= $(PREFIX)/lib/mailroom
# Say what is wrong on a machine without the libraries, instead of a
# compiler error about a missing glib.h.
ifeq ($(filter deps clean fresh-check fuzz,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) $(PG_PKGS) 2>/dev/null && echo ok),ok)
$(error the libraries $(PKGS) $(PG_PKGS) are not all installed: run make deps)
endif
endif

WARN    = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
          -Wstrict-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu17 $(WARN) $(CFLAGS) $(SAN) -Iinclude $(PKG_CFLAGS) \
             -DG_LOG_USE_STRUCTURED -DMR_SYSCONFDIR='"$(SYSCONFDIR)"' \
             -DMR_MODULEDIR='"$(MODULEDIR)"' -DMR_SBINDIR='"$(SBINDIR)"' \
             -DGLIB_VERSION_MIN_REQUIRED=GLIB_VERSION_2_74 $(HS_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SAN)
LIBS = $(PKG_LIBS) -lm
# libetpan (the IMAP door, the relay client) only where it is used:
# mailroomd and the unit tests.  Its
# pkg-config file carries Debian's build flags (-specs=...), so name the
# library alone.
IMAP_LIBS = -letpan

PG_SRCS   = src/store/mr-sql-pgsql.c
LIB_SRCS  = $(filter-out $(PG_SRCS),$(wildcard src/lib/*.c src/core/*.c src/model/*.c src/parse/*.c src/route/*.c src/store/*.c src/crm/*.c src/net/*.c src/ingest/*.c src/act/*.c))
PG_OBJS   = $(PG_SRCS:%.c=$(BUILD)/pic/%.o) $(BUILD)/pic/src/core/mr-error.o
CTL_SRCS  = $(wildcard src/ctl/*.c)
DAEMON_SRCS = $(wildcard src/daemon/*.c)
DAEMON_OBJS = $(DAEMON_SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/%.o)
CTL_OBJS  = $(CTL_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test-*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
INTEGRATION_TESTS = $(sort $(wildcard tests/integration/*.t))

all: $(BUILD)/mailroomctl $(BUILD)/mailroomd $(BUILD)/mailroom-pgsql.so $(UNIT_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Position-independent objects for the module.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PG_CFLAGS) -fPIC -MMD -MP -c -o $@ $<

$(BUILD)/mailroom-pgsql.so: $(PG_OBJS)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(PG_LIBS)

$(BUILD)/libmailroom.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mailroomctl: $(CTL_OBJS) $(BUILD)/libmailroom.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CTL_OBJS) $(BUILD)/libmailroom.a $(LIBS)

$(BUILD)/mailroomd: $(DAEMON_OBJS) $(BUILD)/libmailroom.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(DAEMON_OBJS) $(BUILD)/libmailroom.a $(LIBS) $(IMAP_LIBS)

$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libmailroom.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libmailroom.a $(LIBS) $(IMAP_LIBS)

# Keep the unit tests' objects: they are not intermediate files to delete.
.SECONDARY:

-include $(LIB_OBJS:.o=.d) $(CTL_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(UNIT_SRCS:%.c=$(BUILD)/%.d) \
  $(PG_OBJS:.o=.d) $(wildcard $(BUILD)/tests/fuzz/*.d)

# The two engines' integration suites run side by side (two cores: the
# tests spend much of their time waiting on daemons and clients); each
# suite's output is printed whole when it ends.
check: check-layering check-unit
	$(MAKE) --no-print-directory --output-sync=target -j2 check-integration check-pg

# The whole suite: as built, then again under the sanitizers.
test: check asan check-valgrind

# Two at a time: the unit tests share nothing (each its own temporary
# files, ports and servers).
check-unit: all
	MR_TEST_DATA=$(CURDIR)/tests/data prove -j2 $(UNIT_BINS)

check-integration: all
	MR_BUILD=$(CURDIR)/$(BUILD) MR_CORPUS_SAMPLE=$(MR_CORPUS_SAMPLE) prove --timer $(INTEGRATION_TESTS)

# The integration suite again on PostgreSQL: each test process starts a
# private cluster on 127.0.0.1 (tests/integration/mrpg.py); tests that are
# about an SQLite file say SKIP.
# The sanitizer run on PostgreSQL stores every 4th corpus message in batch
# mode (every message is parsed under the sanitizers on SQLite).
MR_PG_BATCH_SAMPLE ?= 1
PG_TESTS ?= $(INTEGRATION_TESTS)
check-pg: all
	MR_BUILD=$(CURDIR)/$(BUILD) MR_TEST_DB=postgresql MR_CORPUS_SAMPLE=10 \
	  MR_CORPUS_BATCH_SAMPLE=$(MR_PG_BATCH_SAMPLE) prove --timer $(PG_TESTS)

# What CI leaves out for time: the pathological messages at 25 MB (about a
# minute), each within 10 s and 256 MB.
check-slow: all
	MR_BUILD=$(CURDIR)/$(BUILD) MR_SLOW=1 prove tests/integration/66-pathological.t

# The whole suite again, built with AddressSanitizer and UBSan into
# build-asan/: on SQLite every test; on PostgreSQL all but those whose C
# code does not depend on the engine (parsing, the SMTP and IMAP
# dialogues under attack), which the sanitizers see on SQLite and
# PostgreSQL sees without them -- for time (make test within 30 minutes on
# two cores).
ASAN_PG_LEAVE_OUT = 50-corpus 65-smuggling 66-pathological 67-hostile-clients \
		    77-imap-hostile 83-imap-misbehaving
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  MR_CORPUS_SAMPLE=20 MR_PG_BATCH_SAMPLE=4 \
	  PG_TESTS="$(filter-out $(ASAN_PG_LEAVE_OUT:%=tests/integration/%.t),$(INTEGRATION_TESTS))" \
	  check

# The unit tests under valgrind (definite leaks and memory errors fail).
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full \
	   --suppressions=$(CURDIR)/tests/valgrind.supp \
	   --errors-for-leak-kinds=definite --show-leak-kinds=definite
check-valgrind: all
	MR_TEST_DATA=$(CURDIR)/tests/data G_SLICE=always-malloc G_DEBUG=gc-friendly \
	  prove -j2 --exec '$(VALGRIND)' $(UNIT_BINS)

# The engines' headers stay in their drivers: the store speaks mr-sql.h.
# The direction between folders (core, model, parse, store, route, crm, net,
# ingest, act, daemon, ctl), private headers, and where the database
# engines' headers and JSON may appear: tools/check-layering.py.
check-layering:
	@python3 tools/check-layering.py

deps:
	./tools/deps.sh

fresh-check:
	./tools/fresh-check.sh

# libFuzzer on the parse-and-route path (clang; not part of make test).
# FUZZ_SECONDS=3600 make fuzz for an hour; crashes land in build-fuzz/.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz:
	./tools/deps.sh --fuzz
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  $(FUZZ_BUILD)/fuzz-parse-route
	mkdir -p $(FUZZ_BUILD)/corpus
	cp -n tests/data/*.eml $(FUZZ_BUILD)/corpus/
	cd $(FUZZ_BUILD) && ./fuzz-parse-route -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -max_len=1048576 -timeout=30 corpus

# libFuzzer on the IMAP door: what a server says, fed to one session
# (mr_imap_run_stream()), seeded from tests/data/imap.  For a long run that
# keeps going past a finding: FUZZ_IMAP_FLAGS="-fork=1 -ignore_crashes=1
# -ignore_ooms=1 -ignore_timeouts=1" (findings land in build-fuzz/).
fuzz-imap:
	./tools/deps.sh --fuzz
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  $(FUZZ_BUILD)/fuzz-imap
	mkdir -p $(FUZZ_BUILD)/corpus-imap
	cp -n tests/data/imap/*.txt $(FUZZ_BUILD)/corpus-imap/
	cd $(FUZZ_BUILD) && LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
	  ./fuzz-imap -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -max_len=262144 -timeout=30 $(FUZZ_IMAP_FLAGS) corpus-imap

$(BUILD)/fuzz-%: $(BUILD)/tests/fuzz/fuzz-%.o $(BUILD)/libmailroom.a
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libmailroom.a $(LIBS) $(IMAP_LIBS)

bench: all
	@python3 tools/bench-corpus.py --check
	MR_BUILD=$(CURDIR)/$(BUILD) ./tools/bench-smtp.sh
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-corpus.py
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-storage.py
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-rules.py
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-imap.py
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-outgoing.py
	MR_BUILD=$(CURDIR)/$(BUILD) python3 tools/bench-workflows.py

# BASE is checked before anything is built.
ifneq ($(filter bench-compare,$(MAKECMDGOALS)),)
ifeq ($(strip $(BASE)),)
$(error make bench-compare: say which commit to compare with, BASE=<git rev> (BASE=main, BASE=HEAD~1))
endif
endif

bench-compare: $(BUILD)/mailroomctl $(BUILD)/mailroomd $(BUILD)/mailroom-pgsql.so
	./tools/bench-compare.sh '$(BASE)' '$(CURDIR)/$(BUILD)'

run: $(BUILD)/mailroomctl $(BUILD)/mailroomd
	./tools/run.sh

UNITDIR ?= $(PREFIX)/lib/systemd/system
# sysusers.d is read from /usr/lib and /etc only, whatever the PREFIX.
SYSUSERSDIR ?= /usr/lib/sysusers.d

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 $(BUILD)/mailroomctl $(DESTDIR)$(BINDIR)/
	install -m 0755 $(BUILD)/mailroomd $(DESTDIR)$(SBINDIR)/
	install -d $(DESTDIR)$(MODULEDIR)
	install -m 0644 $(BUILD)/mailroom-pgsql.so $(DESTDIR)$(MODULEDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  systemd/mailroomd.service.in >$(DESTDIR)$(UNITDIR)/mailroomd.service
	install -m 0644 systemd/mailroom.sysusers $(DESTDIR)$(SYSUSERSDIR)/mailroom.conf
	if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/mailroom.conf; fi
	test -e $(DESTDIR)$(SYSCONFDIR)/mailroom.conf || install -m 0644 etc/mailroom.conf $(DESTDIR)$(SYSCONFDIR)/
	for m in docs/man/*.1; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man1/ || true; done
	for m in docs/man/*.5; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man5/ || true; done
	for m in docs/man/*.8; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/ || true; done

clean:
	rm -rf build build-asan build-fuzz var/test-*

.PHONY: fuzz-imap bench bench-compare all test check check-pg check-unit check-valgrind check-integration check-slow asan check-layering deps run install clean fresh-check fuzz
