# labsync: build, test (check, unit, fuzz-check), fuzz, bench, demo,
# install.
#
# pkg-config runs only inside recipes (recursive variables), so that
# `make deps` can install the libraries before anything asks for them.

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/bin
SBINDIR	 = $(PREFIX)/sbin
DATADIR	 = $(PREFIX)/share/labsync
UNITDIR	 = $(PREFIX)/lib/systemd/system
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
MANDIR	 = $(PREFIX)/share/man

CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wpointer-arith -Wcast-qual -Werror=implicit-function-declaration
PKGS	 = libevent libzmq libprotobuf-c sqlite3 inih jansson libsystemd libsodium
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -pthread
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -isystem $(B) -Idaemon \
	   -DLABSYNC_DATADIR='"$(DATADIR)"' $(PKG_CFLAGS)

B	 = build
PROTO_C	 = $(B)/proto/labsync.pb-c.c
PROTO_H	 = $(B)/proto/labsync.pb-c.h

# Sources in three groups. CORE: linked into labsyncd, labsyncctl, the unit
# tests and fuzz_seeds, and compiled again for the fuzzer. DAEMON: labsyncd
# only (main.c and the event loop's modules). CTL: labsyncctl only.
CORE_SRCS = daemon/log.c daemon/config.c daemon/config_value.c \
	    daemon/clock.c daemon/store.c daemon/schema.c daemon/vector.c daemon/changelog.c \
	    daemon/outbox.c daemon/merge.c daemon/capture.c \
	    daemon/checkpoint.c daemon/wire.c daemon/rows.c daemon/uuid.c \
	    daemon/reason.c daemon/aside.c daemon/rules.c daemon/compact.c \
	    daemon/feed.c daemon/erase.c daemon/snapshot.c
DAEMON_SRCS = daemon/main.c daemon/bus.c daemon/peer.c daemon/sync.c \
	    daemon/catchup.c daemon/control.c daemon/keys.c daemon/zap.c daemon/monitor.c \
	    daemon/http.c daemon/metrics.c daemon/dashboard.c
CTL_SRCS = daemon/ctl.c daemon/setup.c daemon/keys.c

CORE_OBJS = $(CORE_SRCS:daemon/%.c=$(B)/obj/%.o) $(B)/obj/labsync.pb-c.o
DAEMON_OBJS = $(DAEMON_SRCS:daemon/%.c=$(B)/obj/%.o) $(B)/obj/dashboard_html.o
CTL_OBJS = $(CTL_SRCS:daemon/%.c=$(B)/obj/%.o)

UNIT_TESTS = $(B)/test_clock $(B)/test_wire $(B)/test_merge $(B)/test_reason \
	     $(B)/test_rules $(B)/test_compact

# Benchmark helpers (tests/bench/): make bench, make bench-vs-pg; make
# check builds them for its tiny bench run.
BENCH_BINS = $(B)/bench_sqlite $(B)/bench_writer $(B)/bench_zmq
BENCH_ROWS = tests/bench/bench_rows.c tests/bench/bench_rows.h

# The fuzzer: clang with libFuzzer and sanitizers; the core is compiled
# again for it into $(B)/fuzz-obj, apart from the normal objects.
FUZZ_CC	?= clang
FUZZ_CFLAGS ?= -O1 -g
FUZZ_TIME ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer
# (clang, unlike gcc, warns where protoc-c's *__INIT macros cast away const)
FUZZ_ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Wno-cast-qual $(FUZZ_CFLAGS) \
	   $(FUZZ_SAN) -isystem $(B) -Idaemon -DLABSYNC_DATADIR='"$(DATADIR)"' \
	   $(PKG_CFLAGS)
FUZZ_OBJS = $(CORE_SRCS:daemon/%.c=$(B)/fuzz-obj/%.o) \
	    $(B)/fuzz-obj/labsync.pb-c.o
FUZZ_CORPUS = $(B)/fuzz-corpus
FUZZ_ARGS = -max_len=65536 -timeout=30

# Debian packages that the build, make check and make demo need (make
# bench-vs-pg installs PostgreSQL 15 and libpq-dev itself).
DEB_PKGS = build-essential pkg-config libevent-dev libzmq3-dev \
	   libprotobuf-c-dev protobuf-c-compiler protobuf-compiler \
	   libsqlite3-dev sqlite3 libinih-dev libjansson-dev libsystemd-dev \
	   libsodium-dev libcmocka-dev valgrind python3 jq procps \
	   clang libclang-rt-dev mandoc systemd curl prometheus \
	   python3-zmq python3-protobuf debhelper dpkg-dev lintian chromium \
	   python3-websocket

.PHONY: all check demo clean deps install uninstall unit fuzz fuzz-check \
	bench bench-bins bench-vs-pg deb

all: $(B)/labsyncd $(B)/labsyncctl

# Install the DEB_PKGS that are missing (apt-get, as root); with all of
# them installed it does nothing and needs no root.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	    grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make deps: run as root to install:$$missing" >&2; exit 1; \
	    fi; \
	    apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 \
	        install -y $$missing; \
	fi

$(PROTO_C) $(PROTO_H): proto/labsync.proto
	@mkdir -p $(B)
	protoc-c --c_out=$(B) proto/labsync.proto

$(B)/obj/labsync.pb-c.o: $(PROTO_C)
	@mkdir -p $(B)/obj
	$(CC) $(ALL_CFLAGS) -Wno-cast-qual -c -o $@ $<

# DATADIR (config.c's default schema) is compiled in: this file changes
# when PREFIX does, so that `make install PREFIX=...` rebuilds config.o.
$(B)/datadir.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' >$@

FORCE:

$(B)/obj/config.o $(B)/fuzz-obj/config.o: $(B)/datadir.stamp

$(B)/obj/%.o: daemon/%.c daemon/*.h $(PROTO_H)
	@mkdir -p $(B)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The dashboard page (GET /) is built into labsyncd: dashboard.html as a
# C array, written by od and sed (coreutils), never committed.
$(B)/dashboard_html.c: daemon/dashboard.html
	@mkdir -p $(B)
	{ echo '/* generated from daemon/dashboard.html by the Makefile */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char dashboard_html[];'; \
	  echo 'extern const size_t dashboard_html_len;'; \
	  echo 'const unsigned char dashboard_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo "const size_t dashboard_html_len = $$(wc -c <$<);"; } >$@.tmp
	mv $@.tmp $@

$(B)/obj/dashboard_html.o: $(B)/dashboard_html.c
	@mkdir -p $(B)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/labsyncd: $(CORE_OBJS) $(DAEMON_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/labsyncctl: $(CORE_OBJS) $(CTL_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/test_%: tests/unit/test_%.c $(CORE_OBJS) tests/unit/*.h
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(CORE_OBJS) $(PKG_LIBS) \
	    $$(pkg-config --cflags --libs cmocka)

unit: $(UNIT_TESTS)

$(B)/bench_sqlite $(B)/bench_writer: $(B)/bench_%: tests/bench/bench_%.c \
    $(BENCH_ROWS)
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/bench/bench_rows.c \
	    $$(pkg-config --libs sqlite3)

$(B)/bench_zmq: tests/bench/bench_zmq.c $(BENCH_ROWS)
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -pthread -o $@ $< tests/bench/bench_rows.c \
	    $$(pkg-config --libs libzmq)

# Only for bench-vs-pg (libpq-dev, which tests/bench/vs_pg.sh installs).
$(B)/bench_pgwriter: tests/bench/bench_pgwriter.c $(BENCH_ROWS)
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) $$(pkg-config --cflags libpq) -o $@ $< \
	    tests/bench/bench_rows.c $$(pkg-config --libs libpq)

bench-bins: $(BENCH_BINS)

# Full size; ROWS, CATCHUP_ROWS, LAT_SECS, LAT_RATE, IDLE_SECS, IDS and the
# other sizes are read from the environment (see the top of
# tests/bench/bench.sh). Figures in tests/bench/RESULTS.md.
bench: deps
	$(MAKE) all bench-bins
	tests/bench/bench.sh

# Side by side with PostgreSQL 15 logical replication (root; installs
# postgresql-15 and libpq-dev when missing).
bench-vs-pg: deps
	$(MAKE) all bench-bins
	tests/bench/vs_pg.sh

$(B)/fuzz-obj/labsync.pb-c.o: $(PROTO_C)
	@mkdir -p $(B)/fuzz-obj
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(B)/fuzz-obj/%.o: daemon/%.c daemon/*.h $(PROTO_H)
	@mkdir -p $(B)/fuzz-obj
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(B)/fuzz_envelope: tests/fuzz/fuzz_envelope.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer \
	    -DSCHEMA_PATH='"$(CURDIR)/config/schema.sql"' -o $@ $< \
	    $(FUZZ_OBJS) $(PKG_LIBS)

$(B)/fuzz_seeds: tests/fuzz/seeds.c $(CORE_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_OBJS) $(PKG_LIBS)

$(B)/fuzz-corpus.stamp: $(B)/fuzz_seeds
	rm -rf $(FUZZ_CORPUS)
	$(B)/fuzz_seeds $(FUZZ_CORPUS)
	@touch $@

# Fuzz for FUZZ_TIME seconds on a copy of the seeds; keeps what it found.
fuzz: $(B)/fuzz_envelope $(B)/fuzz-corpus.stamp
	@w=$$(mktemp -d "$${TMPDIR:-/tmp}/labsync-fuzz.XXXXXX") || exit 1; \
	mkdir "$$w/corpus" "$$w/crashes"; cp $(FUZZ_CORPUS)/* "$$w/corpus/"; \
	$(B)/fuzz_envelope $(FUZZ_ARGS) -max_total_time=$(FUZZ_TIME) \
	    -artifact_prefix="$$w/crashes/" "$$w/corpus"; rc=$$?; \
	echo "fuzz: exit $$rc; crashes in $$w/crashes/" \
	    "($$(ls "$$w/crashes" | wc -l) files), corpus in $$w/corpus/"; \
	exit $$rc

# Replay the seeds, then a short deterministic round; make check runs it
# through tests/integration/test_fuzz_corpus_and_short_round.sh.
fuzz-check: $(B)/fuzz_envelope $(B)/fuzz-corpus.stamp
	@w=$$(mktemp -d "$${TMPDIR:-/tmp}/labsync-fuzz.XXXXXX") || exit 1; \
	mkdir "$$w/corpus" "$$w/crashes"; cp $(FUZZ_CORPUS)/* "$$w/corpus/"; \
	$(B)/fuzz_envelope $(FUZZ_ARGS) -runs=0 \
	    -artifact_prefix="$$w/crashes/" $(FUZZ_CORPUS) && \
	$(B)/fuzz_envelope $(FUZZ_ARGS) -seed=1 -runs=20000 \
	    -artifact_prefix="$$w/crashes/" "$$w/corpus"; rc=$$?; \
	if [ $$rc -eq 0 ]; then rm -rf "$$w"; else \
	    echo "fuzz-check: exit $$rc; crashes in $$w/crashes/" >&2; fi; \
	exit $$rc

# The whole suite (tests/run.sh): unit tests, config goldens, integration.
check: deps
	$(MAKE) all unit bench-bins
	tests/run.sh

# Three nodes on loopback (tests/demo.sh); stops all it started.
demo: deps
	$(MAKE) all
	tests/demo.sh

# The Debian package (debian/): dpkg-buildpackage builds it with its own
# objects in $(B)/pkg and writes it to the parent folder; the package and
# its .buildinfo and .changes are moved from there to $(B)/deb/, and
# debian/ is cleaned again.
deb: deps
	dpkg-buildpackage -us -uc -b
	@mkdir -p $(B)/deb; \
	v=$$(dpkg-parsechangelog -S Version); a=$$(dpkg --print-architecture); \
	for f in labsync_$${v}_$$a.deb labsync-dbgsym_$${v}_$$a.deb \
	    labsync_$${v}_$$a.buildinfo labsync_$${v}_$$a.changes; do \
		[ ! -e ../$$f ] || mv -f ../$$f $(B)/deb/ || exit 1; \
	done; \
	debian/rules clean >/dev/null; \
	echo "make deb: $(B)/deb/labsync_$${v}_$$a.deb"

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)
	install -m 755 $(B)/labsyncd $(DESTDIR)$(SBINDIR)/labsyncd
	install -m 755 $(B)/labsyncctl $(DESTDIR)$(BINDIR)/labsyncctl
	install -m 644 config/schema.sql $(DESTDIR)$(DATADIR)/schema.sql
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/labsyncd.service \
	    >$(DESTDIR)$(UNITDIR)/labsyncd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/labsyncd.service
	install -m 644 systemd/labsync.sysusers \
	    $(DESTDIR)$(SYSUSERSDIR)/labsync.conf
	install -d $(DESTDIR)/etc/labsync
	[ -e $(DESTDIR)/etc/labsync/labsync.conf ] || \
	    install -m 640 config/labsync.conf $(DESTDIR)/etc/labsync/labsync.conf
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8
	install -m 644 man/labsyncctl.1 $(DESTDIR)$(MANDIR)/man1/labsyncctl.1
	install -m 644 man/labsync.conf.5 $(DESTDIR)$(MANDIR)/man5/labsync.conf.5
	install -m 644 man/labsyncd.8 $(DESTDIR)$(MANDIR)/man8/labsyncd.8

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/labsyncd $(DESTDIR)$(BINDIR)/labsyncctl
	rm -f $(DESTDIR)$(DATADIR)/schema.sql
	rm -f $(DESTDIR)$(UNITDIR)/labsyncd.service
	rm -f $(DESTDIR)$(SYSUSERSDIR)/labsync.conf
	rm -f $(DESTDIR)$(MANDIR)/man1/labsyncctl.1 \
	    $(DESTDIR)$(MANDIR)/man5/labsync.conf.5 \
	    $(DESTDIR)$(MANDIR)/man8/labsyncd.8
	-rmdir $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(B)
