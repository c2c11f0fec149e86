# The two commands of the README. Both install what they need from Debian's
# packages first (scripts/install-deps is idempotent and quick when all is there).
BUILD ?= build
CMAKE_FLAGS ?=
export CCACHE_DIR ?= $(HOME)/.cache/kernelet-ccache
# Paths relative to the checkout and no working directory in the hash, so a
# fresh clone elsewhere (CI's) hits what an earlier build here cached.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

# Seconds each fuzz target runs (scripts/run-fuzz).
export FUZZ_SECONDS ?= 20

.PHONY: all deps configure build install install-service run test fuzz clean

all: build

deps:
	scripts/install-deps

# lld links the ~60 test binaries (each over 500 MB with debug info) about
# seven times faster than ld.bfd: with ccache warm, linking is most of a build.
# Their debug sections are compressed, as Debian's ld.bfd does by default:
# uncompressed, a build tree takes 30 GB instead of 13.
LINKER ?= lld

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_C_COMPILER_LAUNCHER=ccache \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_EXE_LINKER_FLAGS='-fuse-ld=$(LINKER) -Wl,--compress-debug-sections=zlib' \
	  $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD)

# The agent and the holder it starts from beside it (README, "Live restore"):
# they are installed together, into the same directory.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/kernelet $(BUILD)/kernelet-holder $(DESTDIR)$(PREFIX)/bin/

# The main job: kernelet runs the example pods (examples/manifests), here when
# cgroup v2 has the controllers, else in the test VM (see scripts/run-demo).
run: build
	scripts/run-demo

# Every test: unit tests on the host (two at a time: they are hermetic, on
# port 0 and temp dirs), then one boot of the test VM that runs the privileged
# tests (ctest label "vm"; two at a time inside), then every fuzz target.
test: build
	rc=0; ctest --test-dir $(BUILD) -LE 'privileged|vm' -j2 --output-on-failure || rc=1; \
	  ctest --test-dir $(BUILD) -L vm --output-on-failure || rc=1; exit $$rc
	scripts/run-fuzz

# Every fuzz target for FUZZ_SECONDS, with ASan and UBSan, built with clang in
# build-fuzz/ (fails on a crash, naming the target and the reproducer).
fuzz: deps
	scripts/run-fuzz

# The agent as a systemd service (dist/systemd/kernelet.service): the agent
# and the holder it starts from beside it in /usr/local/bin, the unit in
# /etc/systemd/system, the static pod directory.
# Then `systemctl enable --now kernelet`; an upgrade is this again and
# `systemctl restart kernelet` (the unit's KillMode=process stops only the agent).
install-service: build
	install -d $(DESTDIR)/usr/local/bin
	install -m 0755 $(BUILD)/kernelet $(BUILD)/kernelet-holder $(DESTDIR)/usr/local/bin/
	install -D -m 0644 dist/systemd/kernelet.service $(DESTDIR)/etc/systemd/system/kernelet.service
	install -d -m 0755 $(DESTDIR)/etc/kubernetes/manifests
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf $(BUILD) build-fuzz
