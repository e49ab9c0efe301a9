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

# The main job: the default sweep, then every reader on the run it wrote (the newest run of
# that scenario). An interrupted sweep keeps what it measured: `scripts/cbench sweep --resume RUN`.
reproduce: build
	$(CBENCH) sweep $(SCENARIO)
	@run=$$(ls -td results/runs/*-$(basename $(notdir $(SCENARIO))) | head -n 1); \
	  echo "== tables ($$run)"; $(CBENCH) table $$run -o run && \
	  $(CBENCH) compare $$run --published ever -o $$run/compare-ever.md && \
	  $(CBENCH) plot $$run && $(CBENCH) report $$run && \
	  echo "reproduce: results, tables, charts and report in $$run"

report:
	$(CBENCH) report --root

clean:
	rm -rf $(BUILD) build-*

# Microbenchmarks (bench/, Google Benchmark): builds, then runs every build/bench/*_bench pinned to
# the server's CPU under the machine-wide benchmark lock, storing a run in results/runs/<UTC>-micro/.
.PHONY: micro
micro: build
	$(CBENCH) micro
