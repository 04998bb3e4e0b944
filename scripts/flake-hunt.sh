#!/usr/bin/env bash
# Hunt for flaky tests: the whole suite RUNS times (default 3), then once more while a CPU burner takes one of
# the cores; then print every test that failed or errored in any run, with the runs it failed in.
#   scripts/flake-hunt.sh                 # 3 quiet runs + 1 under load
#   RUNS=5 scripts/flake-hunt.sh -m "not e2e"   # extra arguments go to pytest
# Logs and JUnit XML go to test-artifacts/flake-hunt/ (ignored by git). Exit status: 0 when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
out=test-artifacts/flake-hunt
rm -rf "$out" && mkdir -p "$out"

one_run() {  # name, then pytest arguments
  local name=$1; shift
  local start=$SECONDS
  ./test.sh --junitxml="$out/$name.xml" "$@" >"$out/$name.log" 2>&1
  local code=$?
  echo "$name: exit $code in $((SECONDS - start)) s: $(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$out/$name.log" | tail -n 1)"
}

for i in $(seq 1 "$runs"); do
  one_run "run-$i" "$@"
done

# One core kept busy by another process for the whole run: the situation of a laptop with a browser open, or
# of CI sharing its machine. A test that depends on timing shows up here first.
python3 -c "while True: pass" &
burner=$!
trap 'kill $burner 2>/dev/null' EXIT
one_run "under-load" "$@"
kill "$burner" 2>/dev/null

.venv/bin/python - "$out" <<'PY'
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

failed = defaultdict(list)
for xml in sorted(Path(sys.argv[1]).glob("*.xml")):
    for case in ET.parse(xml).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed[f"{case.get('classname')}::{case.get('name')}"].append(xml.stem)
if failed:
    print("Tests that failed in at least one run:")
    for test, where in sorted(failed.items()):
        print(f"  {test}  ({', '.join(where)})")
    sys.exit(1)
print("No test failed in any run.")
PY
