#!/usr/bin/env bash
# Runs every fuzz target of the module for a short while each (FUZZTIME,
# default 20s). The seed corpus of each target (its f.Add calls and
# testdata/fuzz/<target>/) also runs in every `go test`; this adds the
# mutation. A failing input is written to testdata/fuzz/<target>/ and the
# script fails: commit that file with the fix, and it stays a regression test.
#
# Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
# failure ("context deadline exceeded", golang/go#75804, fixed in Go 1.27)
# when a worker is still mid-call as the time runs out. Such a run wrote no
# input and found nothing, so the target is run once more; any other
# failure, a written input, or the same failure twice fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
found=0

# fuzz_once PKG TARGET LOG: one fuzzing run, its output teed to LOG.
fuzz_once() {
  go test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$1" </dev/null 2>&1 | tee "$3"
  return "${PIPESTATUS[0]}"
}

# coordinator_deadline_only LOG DIR BEFORE: the run failed only by the
# coordinator's deadline: that is its one failure line and no new input file.
coordinator_deadline_only() {
  local log=$1 dir=$2 before=$3
  [ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ] || return 1
  grep -A1 -- '--- FAIL' "$log" | tail -n1 | grep -qx '[[:space:]]*context deadline exceeded' || return 1
  grep -q 'Failing input written to' "$log" && return 1
  [ "$(corpus_count "$dir")" -eq "$before" ]
}

corpus_count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Targets are found by name in the test files: func FuzzXxx(f *testing.F).
while IFS=: read -r file target; do
  found=$((found + 1))
  pkg=./$(dirname "$file")
  corpus=$(dirname "$file")/testdata/fuzz/$target
  before=$(corpus_count "$corpus")
  echo "fuzz: $pkg $target for $fuzztime"
  if fuzz_once "$pkg" "$target" "$log"; then
    continue
  fi
  if coordinator_deadline_only "$log" "$corpus" "$before"; then
    echo "fuzz: $target: the coordinator's own deadline (golang/go#75804), no input found; once more"
    fuzz_once "$pkg" "$target" "$log" && continue
  fi
  echo "fuzz: $target failed" >&2
  exit 1
done < <(git ls-files --cached --others --exclude-standard '*_test.go' |
  xargs grep -oE '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' |
  sed -E 's/func (Fuzz[A-Za-z0-9_]+).*/\1/')
if [ "$found" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $found targets passed"
