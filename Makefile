# The two commands of the README. Both install what they need from Debian's
# packages first (scripts/install-deps is idempotent and quick when all is there).
BUILD ?= build
CMAKE_FLAGS ?=
export CCACHE_DIR ?= $(HOME)/.cache/kernelet-ccache
# Paths relative to the checkout and no working directory in the hash, so a
# fresh clone elsewhere (CI's) hits what an earlier build here cached.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all deps configure build run test clean

all: build

deps:
	scripts/install-deps

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_C_COMPILER_LAUNCHER=ccache \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD)

# The main job: kernelet runs the example pods (examples/manifests), here when
# cgroup v2 has the controllers, else in the test VM (see scripts/run-demo).
run: build
	scripts/run-demo

# Every test: unit tests on the host, then one boot of the test VM that runs
# the privileged tests (ctest label "vm").
test: build
	ctest --test-dir $(BUILD) -LE privileged --output-on-failure

clean:
	rm -rf $(BUILD)
