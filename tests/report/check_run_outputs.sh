#!/usr/bin/env bash
# check_run_outputs.sh RUNDIR: run the readers (table, compare --published ever, plot, report)
# on a real run directory and check that each output exists and is well formed.
# Writes RUNDIR/tables.md, RUNDIR/compare-ever.md, RUNDIR/charts/ and RUNDIR/report.md.
# Exit status: 0 when every check passes, 1 otherwise (each failure is printed), 2 on usage.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -f "$1/meta.json" ]; then
  echo "usage: $0 RUNDIR   (a run directory with meta.json)" >&2
  exit 2
fi
RUN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
CBENCH=("$PY" "$REPO/scripts/cbench")
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# 1. table: exit 0, at least one markdown table with a header separator and a data row.
if "${CBENCH[@]}" table "$RUN" -o run >"$RUN/.table.out" 2>"$RUN/.table.err"; then
  if grep -q '^|---' "$RUN/tables.md" && [ "$(grep -c '^| ' "$RUN/tables.md")" -ge 2 ]; then
    pass "table: $(grep -c '^|---' "$RUN/tables.md") table(s) in $RUN/tables.md"
  else
    fail "table: $RUN/tables.md has no markdown table"
  fi
else
  fail "table exited non-zero: $(cat "$RUN/.table.err")"
fi

# 2. compare --published ever: exit 0, the published table and a judgement section; or, for a run
# with no published row (the smoke scenario's models carry no published label), exit 1 with the one
# line that names both sides' rows, never a traceback.
"${CBENCH[@]}" compare "$RUN" --published ever -o "$RUN/compare-ever.md" >/dev/null 2>"$RUN/.compare.err"
compare_rc=$?
if [ "$compare_rc" = 1 ] && grep -q "matches a row of the published table 'ever'" "$RUN/.compare.err" \
   && ! grep -q Traceback "$RUN/.compare.err"; then
  pass "compare --published ever: no published row in this run, said in one line (exit 1)"
elif [ "$compare_rc" = 0 ]; then
  if grep -q '^## Published table `ever`' "$RUN/compare-ever.md" && grep -q '^|---' "$RUN/compare-ever.md" \
     && grep -q 'Published findings' "$RUN/compare-ever.md"; then
    pass "compare --published ever: $RUN/compare-ever.md"
  else
    fail "compare --published ever: $RUN/compare-ever.md lacks the published table or the findings section"
  fi
else
  fail "compare --published ever exited $compare_rc: $(cat "$RUN/.compare.err")"
fi

# 3. plot: exit 0; charts.json lists at least one chart; every PNG has the PNG signature and
#    every SVG is SVG text.
if "${CBENCH[@]}" plot "$RUN" >"$RUN/.plot.out" 2>"$RUN/.plot.err"; then
  if "$PY" - "$RUN" <<'PYEOF'
import json, os, sys
run = sys.argv[1]
index = json.load(open(os.path.join(run, "charts", "charts.json")))
written = index.get("written", [])
bad = []
for w in written:
    for rel in w["files"]:
        path = os.path.join(run, rel)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            bad.append(f"{rel}: missing or empty")
        elif rel.endswith(".png") and open(path, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
            bad.append(f"{rel}: no PNG signature")
        elif rel.endswith(".svg") and "<svg" not in open(path, encoding="utf-8", errors="replace").read(4096):
            bad.append(f"{rel}: not SVG text")
if not written:
    bad.append("no chart written (skipped: " + "; ".join(s["reason"] for s in index.get("skipped", [])) + ")")
for b in bad:
    print(b, file=sys.stderr)
print(f"{len(written)} chart(s), {len(index.get('skipped', []))} skipped")
sys.exit(1 if bad else 0)
PYEOF
  then
    pass "plot: $RUN/charts/"
  else
    fail "plot: charts in $RUN/charts/ are not well formed"
  fi
else
  fail "plot exited non-zero: $(cat "$RUN/.plot.err")"
fi

# 4. report: exit 0, report.md non-empty with its title, tables and chart links.
if "${CBENCH[@]}" report "$RUN" >/dev/null 2>"$RUN/.report.err"; then
  if [ -s "$RUN/report.md" ] && grep -q '^# Report of run ' "$RUN/report.md" && grep -q '^## Tables' "$RUN/report.md" \
     && grep -q '^## Charts' "$RUN/report.md"; then
    pass "report: $RUN/report.md ($(wc -l <"$RUN/report.md") lines)"
  else
    fail "report: $RUN/report.md is empty or lacks its sections"
  fi
else
  fail "report exited non-zero: $(cat "$RUN/.report.err")"
fi

rm -f "$RUN"/.table.out "$RUN"/.table.err "$RUN"/.compare.err "$RUN"/.plot.out "$RUN"/.plot.err "$RUN"/.report.err
if [ "$failures" -ne 0 ]; then
  echo "check_run_outputs: $failures check(s) failed for $RUN" >&2
  exit 1
fi
echo "check_run_outputs: all checks passed for $RUN"
