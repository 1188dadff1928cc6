#!/usr/bin/env bash
# fuzz.sh TIME: runs every Go fuzz target of the repository for TIME each.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-15s}
found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=1
    echo "fuzz: $pkg $target for $time"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"
  done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz' . | sed 's#^\./##' | sort)
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
