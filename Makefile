# bakery: `make demo` runs the main job, `make test` the test suite; both
# install what they need first (scripts/setup, idempotent).
GO      ?= go
BIN     := bin/bakery
PREFIX  ?= /usr
UNITDIR ?= /usr/lib/systemd/system
# libzstd (bundled by github.com/DataDog/zstd) is compiled by cgo; at -O3,
# as its own Makefile builds it, zstd 15 runs ~4% faster than at cgo's -O2.
export CGO_CFLAGS ?= -O3 -g

.PHONY: all build setup test demo bench lint fuzz install clean

all: build

setup:
	./scripts/setup

build:
	$(GO) build -o $(BIN) ./cmd/bakery

test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	# The pure-Go compressors of builds without cgo.
	CGO_ENABLED=0 $(GO) test -count=1 ./sysext/squashfs

demo: setup build
	./$(BIN) demo

bench: setup build
	./bench/run

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Short fuzzing of every parser; corpora that found bugs live in testdata/fuzz.
fuzz:
	$(GO) test ./sysext -run '^$$' -fuzz FuzzParseRelease -fuzztime 30s
	$(GO) test ./recipes -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s
	$(GO) test ./stage -run '^$$' -fuzz FuzzArchive -fuzztime 30s
	$(GO) test ./sysext/squashfs -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 30s
	$(GO) test ./sysext/erofs -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 30s
	$(GO) test ./sysext/inspect -run '^$$' -fuzz '^FuzzImage$$' -fuzztime 30s
	$(GO) test ./sysext/ddi -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 30s

# The units run /usr/bin/bakery: with another PREFIX their ExecStart follows.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bakery
	install -d $(DESTDIR)$(UNITDIR)
	for u in units/*.service units/*.timer; do \
		sed 's|/usr/bin/bakery|$(PREFIX)/bin/bakery|g' $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then systemctl daemon-reload || true; fi

clean:
	rm -rf bin demo-out
