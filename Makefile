# `make test` is what CI runs (through .ci/run): gofmt, vet, race tests, fuzz smoke.
GO       ?= go
FUZZTIME ?= 20000x
BIN      ?= bin/gotorrentserver
# make install: GNU conventions (PREFIX, DESTDIR for staging a package).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSTEMDDIR ?= /etc/systemd/system
SYSUSERSDIR ?= /etc/sysusers.d
INSTALL    ?= install
# What `gotorrentserver version` says; empty without git (the binary then
# reports what the Go toolchain stamped, else "devel").
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  ?= -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test check-tools fmt-check vet race fuzz-smoke fuzz bench bench-quick run clean install install-systemd

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gotorrentserver

test: check-tools fmt-check vet race fuzz-smoke

# Interop tests skip when a real peer is missing; go test hides skips without
# -v, so say it here, loudly, before the run.
check-tools:
	@missing=""; \
	for t in mktorrent aria2c transmission-cli opentracker chromium systemd-analyze strace curl; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing="$$missing python3-libtorrent"; \
	if [ -n "$$missing" ]; then \
	  echo "################################################################"; \
	  echo "SKIP WARNING: missing interop peers:$$missing"; \
	  echo "Tests that need them will be SKIPPED. bash .ci/run installs them."; \
	  echo "################################################################"; \
	else echo "interop peers and tools present: mktorrent aria2c transmission-cli opentracker chromium systemd-analyze strace curl python3-libtorrent"; fi

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 20m ./...

# Every Fuzz target in the tree, FUZZTIME each, on top of its committed corpus.
# A failure prints the failing run's own report (lines cut at 400 bytes, as a
# failing input can be long) and the input file go test wrote under testdata.
fuzz-smoke:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | cut -c6-); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -parallel 2 $$pkg >$$log 2>&1 || \
	      { grep -v '^fuzz: elapsed' $$log | cut -c1-400 | tail -40; \
	        git status --short -- "$$pkg/testdata/fuzz/$$t"; exit 1; }; \
	  done; \
	done

# Longer fuzzing for developers: make fuzz FUZZTIME=5m
fuzz: fuzz-smoke

# Scenarios a-i beside real clients (bench/cmd/gtsbench): tables in bench/results/.
bench:
	$(GO) run ./bench/cmd/gtsbench
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./metainfo/ ./bench/ ./engine/

bench-quick:
	$(GO) run ./bench/cmd/gtsbench -quick

run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/gotorrentserver serve

clean:
	rm -rf bin

# `make build && sudo make install`: the binary is rebuilt only when a source
# is newer, so root needs no Go toolchain for an up-to-date tree.
$(BIN): $(shell find . -name '*.go' -not -name '*_test.go' -not -path './.git/*') go.mod go.sum
	$(GO) build -o $(BIN) ./cmd/gotorrentserver

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/gotorrentserver

# The unit names /usr/local/bin; another BINDIR is written into the copy.
install-systemd:
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(SYSUSERSDIR)
	sed 's|/usr/local/bin/gotorrentserver|$(BINDIR)/gotorrentserver|' deploy/gotorrentserver.service >$(DESTDIR)$(SYSTEMDDIR)/gotorrentserver.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/gotorrentserver.service.tmp
	mv $(DESTDIR)$(SYSTEMDDIR)/gotorrentserver.service.tmp $(DESTDIR)$(SYSTEMDDIR)/gotorrentserver.service
	$(INSTALL) -m 0644 deploy/gotorrentserver.sysusers $(DESTDIR)$(SYSUSERSDIR)/gotorrentserver.conf
