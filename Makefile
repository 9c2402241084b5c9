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
CC ?= cc
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Werror=implicit-function-declaration -MMD -MP -I. $(EXTRA_CFLAGS)
LDFLAGS := $(OPT)
LIBS := -luv -lhiredis -lwslay -lhttp_parser -ljwt -lcrypto -lz -lpthread -lm

SRC := $(wildcard common/*.c shm/*.c worker/*.c master/*.c)
LIBSRC := $(filter-out master/main.c,$(SRC))
LIBOBJ := $(LIBSRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PREFIX ?= /usr/local

.PHONY: all deps run test unit integration bench fuzz clean format format-check install uninstall

all: $(BUILD)/streamio $(BUILD)/streamioctl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libstreamio.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/streamio: $(BUILD)/master/main.o $(BUILD)/libstreamio.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/streamioctl: ctl/streamioctl.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libstreamio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstreamio.a $(LIBS) -lcmocka

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
BENCH_TOOLS := $(BUILD)/bench/loadgen $(BUILD)/bench/producer

$(BUILD)/bench/loadgen: bench/loadgen.c bench/procstat.c bench/procstat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/loadgen.c bench/procstat.c -luv

$(BUILD)/bench/producer: bench/producer.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lhiredis

bench: $(BUILD)/streamio $(BENCH_TOOLS)
	@scripts/install-deps.sh test
	@scripts/bench.sh $(BUILD)/streamio

# `make install PREFIX=/usr DESTDIR=/tmp/pkg`: the binary, the CLI, the systemd unit (ExecStart
# pointing at PREFIX) and the sample environment file; never overwrites /etc/streamio/streamio.env.
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/streamio

install: $(BUILD)/streamio $(BUILD)/streamioctl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/streamio \
		$(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/streamio $(BUILD)/streamioctl $(DESTDIR)$(BINDIR)/
	sed -e 's#/usr/local/bin/streamio#$(BINDIR)/streamio#' \
	    -e 's#/usr/local/share/doc/streamio#$(DOCDIR)#' \
	    -e 's#/etc/streamio/#$(SYSCONFDIR)/streamio/#g' systemd/streamio.service \
	    > $(DESTDIR)$(UNITDIR)/streamio.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/streamio.service
	install -m 0600 systemd/streamio.env.sample $(DESTDIR)$(SYSCONFDIR)/streamio/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/streamio $(DESTDIR)$(BINDIR)/streamioctl \
	      $(DESTDIR)$(UNITDIR)/streamio.service \
	      $(DESTDIR)$(SYSCONFDIR)/streamio/streamio.env.sample $(DESTDIR)$(DOCDIR)/README.md
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/streamio 2>/dev/null

# `make fuzz`: each tests/fuzz/fuzz_<x>.c built with clang's libFuzzer + ASan + UBSan against the
# project sources, then run FUZZ_SECONDS on a copy of tests/fuzz/corpus/<x> (FUZZ_MERGE=1 merges
# what it found back into the corpus, minimized). Objects live in build/fuzz, apart from the rest.
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -MMD -MP -I.

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/libstreamio.a: $(LIBSRC:%.c=build/fuzz/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libstreamio.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libstreamio.a $(LIBS)

fuzz:
	@scripts/install-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

format:
	clang-format -i $(SRC) ctl/streamioctl.c $(wildcard common/*.h shm/*.h worker/*.h master/*.h) \
		$(UNIT_SRC) $(FUZZ_SRC)

format-check:
	clang-format --dry-run -Werror $(SRC) $(wildcard common/*.h shm/*.h worker/*.h master/*.h)

clean:
	rm -rf build

-include $(LIBOBJ:.o=.d) $(BUILD)/master/main.d
-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/*.d)
