# cgdev — see README.md. The two commands a new user runs:
#   make demo   build cgdev and show it start, inspect and stop a bundled project
#   make test   install what the tests need (as root), then run every test suite
GO      ?= go
BIN     := bin/cgdev
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build setup test unit vmtest vmtest-systemd bench demo vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cgdev

# setup installs the Debian packages the test beds need (root only; prints
# what is missing otherwise). Idempotent and quick when all is present.
setup:
	test/setup.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# unit runs the host suites (kernel, real processes, a real systemd user
# manager started for the run when none is reachable).
unit: build
	test/systemd/with-manager.sh $(GO) test -count=1 ./...

# vmtest runs the limit tests in a pure-cgroup2 qemu VM (test/vm).
vmtest:
	test/vm/vmtest.sh

# vmtest-systemd runs the systemd VM suite (test/vm-systemd): cgdev as a
# normal user with a user manager, as root, inside Delegate=yes units, in
# Docker containers and against a real compose project. The first run
# builds the VM's root image (root, about a minute). SDVM_ARGS='-pass dev
# -run OOM' picks passes and tests.
vmtest-systemd:
	test/vm-systemd/sdvmtest.sh $(SDVM_ARGS)

test: setup vet unit vmtest vmtest-systemd

bench: build
	test/systemd/with-manager.sh $(GO) test -run '^$$' -bench . -skip '^Benchmark(StopOnSIGTERM|StopForce1000)$$' -benchtime 200x ./...
	$(GO) test ./test/e2e -run '^$$' -bench '^Benchmark(StopOnSIGTERM|StopForce1000)$$' -benchtime 10x

clean:
	rm -rf bin

# demo starts examples/demo (services that fork background children, setsid
# and double-forked daemons), shows status and ps, stops it and checks that
# no process carrying its marker survives.
demo: build
	examples/demo/run.sh $(BIN)
