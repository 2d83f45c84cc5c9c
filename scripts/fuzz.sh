#!/usr/bin/env bash
# Runs every fuzz target of the module for a short while each (FUZZTIME,
# default 20s). The seed corpus of each target (its f.Add calls and
# testdata/fuzz/<target>/) also runs in every `go test`; this adds the
# mutation. A failing input is written to testdata/fuzz/<target>/ and the
# script fails: commit that file with the fix, and it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
found=0
# Targets are found by name in the test files: func FuzzXxx(f *testing.F).
while IFS=: read -r file target; do
  found=$((found + 1))
  pkg=./$(dirname "$file")
  echo "fuzz: $pkg $target for $fuzztime"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" </dev/null
done < <(git ls-files --cached --others --exclude-standard '*_test.go' |
  xargs grep -oE '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' |
  sed -E 's/func (Fuzz[A-Za-z0-9_]+).*/\1/')
if [ "$found" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $found targets passed"
