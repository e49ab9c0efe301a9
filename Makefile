# concurrency-bench front door. `make test` and `make reproduce` work on a fresh Debian 12 machine:
# both install missing Debian packages first (scripts/deps.sh), then build.
PY        := /usr/bin/python3
BUILD     := build
JOBS      ?= 2
SCENARIO  ?= scenarios/ever-table.toml
CBENCH    := $(PY) scripts/cbench

.PHONY: all deps build test reproduce report clean help

all: build

help:
	@echo "make test       install deps, build, run every test (ctest summary at the end)"
	@echo "make reproduce  install deps, build, run the default sweep ($(SCENARIO)), write tables, charts, report"
	@echo "make report     regenerate REPORT.md's generated sections from committed runs"

deps:
	bash scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

# Every test is a ctest test (unit, conformance per model, harness, report); ctest's exit status
# fails the target when any test fails.
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

reproduce: build
	$(CBENCH) sweep $(SCENARIO)

report:
	$(CBENCH) report --root

clean:
	rm -rf $(BUILD) build-*
