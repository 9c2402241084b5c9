# streamio build. `make` builds build/release/streamio; ASAN=1 builds under build/asan with
# AddressSanitizer + UBSan so sanitized and plain objects never mix.

ifeq ($(ASAN),1)
FLAVOUR := asan
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
FLAVOUR := release
OPT := -O2 -g
endif

BUILD := build/$(FLAVOUR)
# The one place the version is written: the binaries (`streamio --version`, /health, /metrics'
# streamio_build_info) and the Debian package (`make deb`) take it from here.
VERSION := 1.0.0
CC ?= cc
GEN := build/gen
CFLAGS := -std=c11 -D_GNU_SOURCE -DSTREAMIO_VERSION='"$(VERSION)"' $(OPT) -Wall -Wextra -Wshadow \
          -Wstrict-prototypes -Wmissing-prototypes -Werror=implicit-function-declaration -MMD -MP \
          -I. -I$(GEN) $(EXTRA_CFLAGS)
LDFLAGS := $(OPT) $(EXTRA_LDFLAGS)
# liburing through pkg-config (Debian's liburing-dev ships liburing.pc): the batched sends of
# worker/net/conn
URING_LIBS := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
LIBS := -luv -lhiredis -lwslay -lhttp_parser -ljwt -lssl -lcrypto -lz -lpthread -lm $(URING_LIBS)

SRC := $(wildcard common/*.c common/*/*.c shm/*.c worker/*.c worker/*/*.c master/*.c master/*/*.c)
HDR := $(wildcard common/*.h common/*/*.h shm/*.h worker/*.h worker/*/*.h master/*.h master/*/*.h)
LIBSRC := $(filter-out master/main.c,$(SRC))
LIBOBJ := $(LIBSRC:%.c=$(BUILD)/%.o)
# streamioctl's modules (ctl/), over the same codecs: linked into the CLI and the unit tests
CTL_SRC := $(filter-out ctl/streamioctl.c,$(wildcard ctl/*.c))
CTLOBJ := $(CTL_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PREFIX ?= /usr/local

.PHONY: all deps run test unit integration bench fuzz clean format format-check install uninstall deb

all: $(BUILD)/streamio $(BUILD)/streamioctl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The /debug page is written as HTML (worker/http/debug_page.html) and compiled in as a C string: each
# line quoted, with backslashes, quotes and '?' (trigraphs) escaped.
$(GEN)/debug_page.inc: worker/http/debug_page.html
	@mkdir -p $(dir $@)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@

$(BUILD)/worker/http/debug_page.o build/fuzz/obj/worker/http/debug_page.o: $(GEN)/debug_page.inc

$(BUILD)/libstreamio.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/streamio: $(BUILD)/master/main.o $(BUILD)/libstreamio.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libctl.a: $(CTLOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/streamioctl: $(BUILD)/ctl/streamioctl.o $(BUILD)/libctl.a $(BUILD)/libstreamio.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto -lm -ledit

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libctl.a $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libctl.a $(BUILD)/libstreamio.a $(LIBS) -lcmocka

# The Redis layer's tests share a scripted RESP server (tests/unit/redis_fake.c).
$(BUILD)/tests/redis_fake.o: tests/unit/redis_fake.c tests/unit/redis_fake.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/test_redis_%: tests/unit/test_redis_%.c $(BUILD)/tests/redis_fake.o $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/tests/redis_fake.o $(BUILD)/libstreamio.a $(LIBS) -lcmocka

# The adapters' and the peer directory's tests talk to the same scripted Redis.
$(BUILD)/tests/test_adapter $(BUILD)/tests/test_streams_adapter $(BUILD)/tests/test_streams_restore $(BUILD)/tests/test_peer_dir $(BUILD)/tests/test_keyevents: $(BUILD)/tests/%: tests/unit/%.c $(BUILD)/tests/redis_fake.o $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/tests/redis_fake.o $(BUILD)/libstreamio.a $(LIBS) -lcmocka

# The worker/bridge and master/admin/bridge_admin tests share a fake of the bridge_redis seam
# (tests/unit/bridge_fake.c).
BRIDGE_FAKE_TESTS := $(BUILD)/tests/test_inbound $(BUILD)/tests/test_presence \
                     $(BUILD)/tests/test_bridge_hooks \
                     $(BUILD)/tests/test_presence_query $(BUILD)/tests/test_bridge_admin
$(BUILD)/tests/bridge_fake.o: tests/unit/bridge_fake.c tests/unit/bridge_fake.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BRIDGE_FAKE_TESTS): $(BUILD)/tests/%: tests/unit/%.c $(BUILD)/tests/bridge_fake.o $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/tests/bridge_fake.o $(BUILD)/libstreamio.a $(LIBS) -lcmocka

# The Redis layer's test driver: tests/integration/redis-layer.test.js builds it and drives it.
$(BUILD)/tests/redis_probe: tests/integration/redis_probe.c $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstreamio.a $(LIBS)

# Installs the Debian (and, for tests, npm) packages that are missing; idempotent.
deps:
	@scripts/install-deps.sh $(DEPS_FOR)

run:
	@scripts/install-deps.sh run
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(BUILD)/streamio

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

integration: $(BUILD)/streamio $(BUILD)/streamioctl
	@scripts/run-integration.sh $(BUILD)/streamio

# The README's test command: installs what it needs, then unit + integration, then the same
# unit tests again under ASan+UBSan.
test:
	@scripts/install-deps.sh test
	@scripts/run-tests.sh

# Load generator and producer of `make bench` (bench/); never part of `make test`.
BENCH_TOOLS := $(BUILD)/bench/loadgen $(BUILD)/bench/producer $(BUILD)/bench/floor \
	$(BUILD)/bench/connfloor $(BUILD)/bench/relaycut

$(BUILD)/bench/loadgen: bench/loadgen.c bench/procstat.c bench/procstat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/loadgen.c bench/procstat.c -luv -lz

$(BUILD)/bench/floor: bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(URING_LIBS)

$(BUILD)/bench/connfloor: bench/connfloor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# What a sharded relay handover of N rooms costs a worker (relay_cut alone, no Redis).
$(BUILD)/bench/relaycut: bench/relaycut.c $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstreamio.a

$(BUILD)/bench/producer: bench/producer.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lhiredis

bench: $(BUILD)/streamio $(BENCH_TOOLS)
	@scripts/install-deps.sh bench
	@scripts/bench.sh $(BUILD)/streamio

# `make install PREFIX=/usr DESTDIR=/tmp/pkg`: the binary, the CLI, their man pages, the systemd
# unit (ExecStart pointing at PREFIX) and the sample environment file; never overwrites
# /etc/streamio/streamio.env.
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/streamio
MANDIR ?= $(PREFIX)/share/man

install: $(BUILD)/streamio $(BUILD)/streamioctl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/streamio \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/streamio $(BUILD)/streamioctl $(DESTDIR)$(BINDIR)/
	sed -e 's#/usr/local/bin/streamio#$(BINDIR)/streamio#' \
	    -e 's#/usr/local/share/doc/streamio#$(DOCDIR)#' \
	    -e 's#/etc/streamio/#$(SYSCONFDIR)/streamio/#g' systemd/streamio.service \
	    > $(DESTDIR)$(UNITDIR)/streamio.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/streamio.service
	install -m 0600 systemd/streamio.env.sample $(DESTDIR)$(SYSCONFDIR)/streamio/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/man/streamio.8 docs/man/streamioctl.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/streamio $(DESTDIR)$(BINDIR)/streamioctl \
	      $(DESTDIR)$(UNITDIR)/streamio.service \
	      $(DESTDIR)$(SYSCONFDIR)/streamio/streamio.env.sample $(DESTDIR)$(DOCDIR)/README.md \
	      $(DESTDIR)$(MANDIR)/man8/streamio.8 $(DESTDIR)$(MANDIR)/man8/streamioctl.8
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/streamio 2>/dev/null

# `make deb`: build/streamio_$(VERSION)_<arch>.deb with Debian's debhelper (packaging in
# contrib/debian/), checked by lintian.
deb:
	@scripts/install-deps.sh deb
	@scripts/build-deb.sh $(VERSION)

# `make fuzz`: each tests/fuzz/fuzz_<x>.c built with clang's libFuzzer + ASan + UBSan against the
# project sources, then run FUZZ_SECONDS on a copy of tests/fuzz/corpus/<x> (FUZZ_MERGE=1 merges
# what it found back into the corpus, minimized). Objects live in build/fuzz, apart from the rest.
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -DSTREAMIO_VERSION='"$(VERSION)"' -g -O1 -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -MMD -MP -I. -I$(GEN)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/libstreamio.a: $(LIBSRC:%.c=build/fuzz/obj/%.o) $(CTL_SRC:%.c=build/fuzz/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libstreamio.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(filter %.o,$^) build/fuzz/libstreamio.a $(LIBS)

# Targets that drive a layer against the unit tests' scripted Redis link its object too.
build/fuzz/fuzz_redis_conn: build/fuzz/obj/tests/unit/redis_fake.o

fuzz:
	@scripts/install-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

format:
	clang-format -i $(SRC) $(HDR) $(wildcard ctl/*.c ctl/*.h)

format-check:
	clang-format --dry-run -Werror $(SRC) $(HDR) $(wildcard ctl/*.c ctl/*.h)

clean:
	rm -rf build

-include $(LIBOBJ:.o=.d) $(CTLOBJ:.o=.d) $(BUILD)/master/main.d $(BUILD)/ctl/streamioctl.d
-include $(wildcard $(BUILD)/tests/*.d)
-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/obj/*/*/*.d build/fuzz/*.d)
