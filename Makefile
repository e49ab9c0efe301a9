# concurrency-bench front door. `make quick`, `make test` and `make reproduce` work on a fresh Debian 12 machine:
# both install missing Debian packages first (scripts/deps.sh), then build.
PY        := /usr/bin/python3
BUILD     := build
JOBS      ?= $(shell nproc)
SCENARIO  ?= scenarios/ever-table.toml
CBENCH    := $(PY) scripts/cbench

.PHONY: all deps build quick test reproduce reproduce-all report clean help test-multihost soak

all: build

help:
	@echo "make quick      a first result within two minutes: build cbench-server, a 1 s-point sweep of four models (scenarios/quick.toml) in build/quick/, its table and a chart"
	@echo "make build      install deps, configure and build everything (Release) in $(BUILD)/"
	@echo "make test       install deps, build, run every test (ctest summary at the end)"
	@echo "make reproduce  install deps, build, run the default sweep ($(SCENARIO)), write tables, charts, report"
	@echo "make reproduce-all  the reference set from this clean commit: every scenario's sweep, micro, costs, calibrate, soak (prints each step's worst case first; ARGS=\"--skip soak --no-report --budget-min 150\", then ARGS=\"--only soak\"), then make report"
	@echo "make report     render REPORT.md (the summary), its pages under report/, the overview charts (report/charts/) and report/index.html from REPORT.md.in and the reference runs (results/reference-runs.toml)"
	@echo "make test-multihost  server and wrk in two network namespaces (skipped where they cannot be made)"
	@echo "make test-asan  ASan+UBSan build (build-asan): unit tests and the conformance gate, every model"
	@echo "make test-tsan  TSan build (build-tsan): unit tests and the conformance gate, every variant"
	@echo "make fuzz       libFuzzer on the codec (clang, build-fuzz) for FUZZ_SECONDS (default 60)"
	@echo "make soak       the short soak of every model (cbench soak --short, ~3 min; also part of make test); SOAK_ARGS=\"--duration-s 600\" for the reference soak"
	@echo "make ci-artifacts  a quick sweep (a few models) with its tables and charts, and the report as one page with its screenshot, in build/ci-artifacts (what .ci/run keeps)"

deps:
	bash scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

# A first result on this machine: only what the sweep needs (cbench-server; the quick scenario
# drives wrk), built on every core, then a sweep of scenarios/quick.toml with --quick (1 s points,
# one repetition; --allow-dirty, since it is not a reference run), its table and one chart. The run
# goes to $(QUICK_DIR), never results/runs/, so it cannot pass for a reference run; each make quick
# replaces the last. Configures $(BUILD) only when it has no CMake cache yet.
QUICK_DIR ?= $(abspath $(BUILD))/quick
quick: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$$(nproc) --target cbench-server
	rm -rf $(QUICK_DIR) && mkdir -p $(QUICK_DIR)
	$(CBENCH) sweep quick --quick --allow-dirty --server-bin $(BUILD)/cbench-server --out $(QUICK_DIR)
	@run=$$(ls -td $(QUICK_DIR)/*-quick | head -n 1); \
	  $(CBENCH) table $$run -o run && \
	  $(CBENCH) plot $$run > $$run/charts.log && \
	  echo && echo "quick: run       $$run  (not a reference run)" && \
	  echo "quick: table     $$run/tables.md" && \
	  chart=$$( (ls $$run/charts/rps-vs-connections-*.png; ls $$run/charts/*.png) 2>/dev/null | head -n 1); \
	  echo "quick: chart     $$chart  (all charts: $$run/charts/)"

# Every test is a ctest test (unit, conformance per model, harness, report, the short soak:
# harness_soak, label soak, registered in tests/harness/CMakeLists.txt); ctest's exit status
# fails the target when any test fails.
# The sanitizer and fuzzer runs come first, in their own build directories; the main
# ctest runs last, so its summary is the last thing printed. Their timing-sensitive tests must
# not run beside each other, hence .NOTPARALLEL below: `make -j` runs prerequisites one at a time.
test: build test-asan test-tsan fuzz-ci
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The main job: the default sweep, then every reader on the run it wrote (the newest run of
# that scenario). An interrupted sweep keeps what it measured: `scripts/cbench sweep --resume RUN`.
# The expected time comes first (the plan's estimate: scenario design, measured per-point
# overhead, the most the sequential extra blocks can add), before deps and the build.
reproduce:
	@$(CBENCH) sweep $(SCENARIO) --dry-run 2>/dev/null | sed -n '1,2p' || true
	$(MAKE) build
	$(CBENCH) sweep $(SCENARIO)
	@run=$$(ls -td results/runs/*-$(basename $(notdir $(SCENARIO))) | head -n 1); \
	  echo "== tables ($$run)"; $(CBENCH) table $$run -o run && \
	  $(CBENCH) compare $$run --published ever -o $$run/compare-ever.md && \
	  $(CBENCH) plot $$run && $(CBENCH) report $$run && \
	  echo "reproduce: results, tables, charts and report in $$run"

# REPORT.md and its pages, then the four overview charts they embed (report/charts/), then the
# whole report as one self-contained page, report/index.html (cbench html; charts inline).
report:
	$(CBENCH) report --root
	$(CBENCH) plot --overview --out report/charts
	$(CBENCH) html

# The whole reference set from one clean commit: every scenario's sweep, cbench micro, cbench
# costs, calibrate and the reference soak in sequence (scripts/reproduce_all.py prints each step's
# worst case and their sum first), results/reference-runs.toml pointed at each new run as it is
# made, then `make report`. ARGS select and bound it: `--skip soak --no-report --budget-min 150` for
# a sitting of the sweeps (a plan over budget stops at the first dry run, before the build), then
# `--only soak` from the same commit for the soak's own, which renders the whole set;
# `ARGS=--dry-run` prints the plan and the time only.
reproduce-all:
	@$(PY) scripts/reproduce_all.py --dry-run $(ARGS)
	$(MAKE) build
	$(PY) scripts/reproduce_all.py $(ARGS)

# A sweep with the server and wrk in two network namespaces joined by a veth pair
# (tests/harness/test_multihost.py; skipped, with the reason printed, where namespaces cannot
# be created). Removes everything it creates. Also: load from two client hosts at once (TwoClientHosts, ~7 s).
# It builds first: its cbench-load cases need build/cbench-load, and a missing binary would skip them.
test-multihost: build
	cd tests/harness && $(PY) -m unittest -v test_multihost

clean:
	rm -rf $(BUILD) build-*

# The soak: every model but the instruments at saturation with connection churn, judged for RSS,
# descriptor and thread growth (scripts/cbenchlib/cmd/soak.py). Without SOAK_ARGS the short soak
# that `make test` runs as ctest's harness_soak; SOAK_ARGS="--duration-s 600" is the reference soak
# (results/soak/). Builds first: it needs cbench-server and cbench-load.
SOAK_ARGS ?= --short --out $(BUILD)/soak
soak: build
	$(CBENCH) soak --server-bin $(BUILD)/cbench-server --load-bin $(BUILD)/cbench-load $(SOAK_ARGS)

# Microbenchmarks (bench/, Google Benchmark): builds, then runs every build/bench/*_bench pinned to
# the server's CPU under the machine-wide benchmark lock, storing a run in results/runs/<UTC>-micro/.
.PHONY: micro
micro: build
	$(CBENCH) micro

# --- Sanitizers and the codec fuzzer -------------------------------------------------------------
# Each has its own build directory, so the Release build in $(BUILD) is never rebuilt for them,
# and builds only what it runs: cbench-server and the unit tests (tests/unit/*_test.cpp).
# RelWithDebInfo: -O2 keeps the conformance runs' timing close to a real build; -g names lines.
.PHONY: test-asan test-tsan fuzz fuzz-ci
.NOTPARALLEL:
SAN_BUILD_TYPE := RelWithDebInfo
UNIT_TESTS     := $(basename $(notdir $(wildcard tests/unit/*_test.cpp)))
# cbench-load and its tests: label loadgen, run under ASan/UBSan too.
LOADGEN_TESTS  := cbench-load $(basename $(notdir $(wildcard tests/loadgen/*_test.cpp)))
# halt_on_error: the first report ends the process, so the test that caused it fails (UBSan
# would otherwise print and carry on); a leak found by LeakSanitizer at exit makes the exit status
# non-zero, which the conformance suite's SIGTERM case catches.
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TSAN_ENV := TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/sanitizers/tsan.supp' \
            CBENCH_CONFORMANCE_SANITIZER_QUICK=1

# AddressSanitizer + UndefinedBehaviorSanitizer (gcc): the unit tests and the whole conformance
# gate, every model and variant.
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=$(SAN_BUILD_TYPE) -DCBENCH_SANITIZE=address,undefined
	cmake --build build-asan -j$(JOBS) --target cbench-server $(UNIT_TESTS) $(LOADGEN_TESTS)
	cd build-asan && $(ASAN_ENV) ctest --output-on-failure -j$(JOBS) -L '^(unit|conformance|loadgen)$$'

# ThreadSanitizer (gcc): the unit tests (the pull loop's cross-thread emits and wake-ups) and the
# whole conformance gate, every variant: at --threads 4 every multi-threaded model runs more threads
# than this machine's cores, and at --threads 1 every model still has its stop and signal threads, under the suite's concurrent cases (50 keep-alive clients, 1000 short
# connections from 4 threads, 200 slowloris connections, 3000 connections churned against a 1 ms
# idle timeout, SIGTERM under load). --sanitizer-quick (through the environment) skips the
# 2000-idle-connection cases: see conformance.py. tests/sanitizers/tsan.supp holds the one
# suppression, with the reason it is a false positive.
test-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=$(SAN_BUILD_TYPE) -DCBENCH_SANITIZE=thread
	cmake --build build-tsan -j$(JOBS) --target cbench-server $(UNIT_TESTS)
	cd build-tsan && $(TSAN_ENV) ctest --output-on-failure -j$(JOBS) -L '^(unit|conformance)$$'

# libFuzzer on the codec (tests/fuzz/codec_fuzz.cpp), clang only, for FUZZ_SECONDS. New inputs go
# to build-fuzz/corpus (kept between runs), seeds come from tests/fuzz/corpus, and a crash is
# written to build-fuzz/artifacts/ (reproduce: build-fuzz/tests/fuzz/codec_fuzz FILE).
FUZZ_SECONDS    ?= 60
FUZZ_CI_SECONDS ?= 30
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	      -DCMAKE_BUILD_TYPE=$(SAN_BUILD_TYPE) -DCBENCH_FUZZ=ON
	cmake --build build-fuzz -j$(JOBS) --target codec_fuzz
	mkdir -p build-fuzz/corpus build-fuzz/artifacts
	build-fuzz/tests/fuzz/codec_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -dict=tests/fuzz/http.dict -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
	  build-fuzz/corpus tests/fuzz/corpus

# What `make test` runs: the same, briefly.
fuzz-ci:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

# --- CI artifacts: a quick sweep's tables and charts in one directory ----------------------------
# Also REPORT.md as one page (index.html, the overview charts drawn from the reference set into
# charts/) and the browser's screenshot of its top (index.png, tests/report/cdp.py).
# Not a reference run (--quick: 1 s points, 1 repetition; --allow-dirty since CI's tree may carry
# build outputs): a smoke view of the machine CI ran on, kept as artifacts. The path is printed last.
CI_ARTIFACTS ?= $(if $(CBENCH_ARTIFACTS),$(CBENCH_ARTIFACTS),$(CURDIR)/build/ci-artifacts)
CI_MODELS    ?= pull-loop,worker-pool*,epoll-reactor,selector*,io-uring,floor
.PHONY: ci-artifacts
ci-artifacts: build
	rm -rf $(CI_ARTIFACTS) && mkdir -p $(CI_ARTIFACTS)/runs
	$(CBENCH) sweep scenarios/ever-table.toml --quick --allow-dirty --models '$(CI_MODELS)' \
	  --out $(CI_ARTIFACTS)/runs
	@run=$$(ls -td $(CI_ARTIFACTS)/runs/*-ever-table | head -n 1); \
	  $(CBENCH) table $$run -o run && \
	  $(CBENCH) compare $$run --published ever -o $$run/compare-ever.md && \
	  $(CBENCH) plot $$run && \
	  echo "ci-artifacts: tables, comparison and charts of a quick sweep in $$run"
	@# The committed report as one page and a screenshot of it in headless chromium. A failure here
	@# (a missing chart, a console error) is printed and does not stop CI before `make test`, whose
	@# report_browser test judges the same page and fails on it.
	-$(CBENCH) html --output $(CI_ARTIFACTS)/index.html
	-$(PY) tests/report/browser_check.py $(CI_ARTIFACTS)/index.html --screenshot $(CI_ARTIFACTS)/index.png
	@echo "ci-artifacts: $(CI_ARTIFACTS) (index.html: the report as one page; index.png: its screenshot)"
