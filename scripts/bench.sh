#!/usr/bin/env bash
# bench.sh OUT.md: runs every benchmark beside its baseline in one run and
# writes the results table to OUT.md (docs/benchmarks.md from make bench).
# Benchmarks are Go benchmarks (sub-benchmarks named *-baseline are the
# baselines) plus whole-program timings measured here.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/benchmarks.md}
benchtime=${BENCHTIME:-5x}
export CARBIDE_REQUIRE_DB=1
raw=$(mktemp)
trap 'rm -f "$raw"; [ -n "${sb:-}" ] && bin/sandbox destroy --dir "$sb" >/dev/null 2>&1 || true; rm -rf "${sbroot:-}"' EXIT

echo "bench: go benchmarks (-benchtime $benchtime)"
go test -run '^$' -bench . -benchtime "$benchtime" ./... | tee "$raw"

echo "bench: sandbox up of examples/msaa.ini (6 hosts), fresh and again"
sbroot=$(mktemp -d)
sb="$sbroot/sb"
t0=$(date +%s.%N)
bin/sandbox up --dir "$sb" --net 251 >/dev/null
t1=$(date +%s.%N)
bin/sandbox up --dir "$sb" >/dev/null
t2=$(date +%s.%N)
bin/sandbox down --dir "$sb" >/dev/null
t3=$(date +%s.%N)
bin/sandbox up --dir "$sb" >/dev/null
t4=$(date +%s.%N)

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "$(nproc) cores, $(mariadbd --version | awk '{print $3}'), $(go version | awk '{print $3}')."
  echo "Every row was measured in this one run; a baseline sits beside what it is compared to."
  echo
  echo "## Go benchmarks"
  echo
  echo "| benchmark | time per op | ops measured |"
  echo "|---|---:|---:|"
  awk '/^Benchmark/ {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    ns=$3; unit="ns"
    if (ns >= 1e9) { v=sprintf("%.2f s", ns/1e9) } else if (ns >= 1e6) { v=sprintf("%.1f ms", ns/1e6) } else if (ns >= 1e3) { v=sprintf("%.1f µs", ns/1e3) } else { v=sprintf("%d ns", ns) }
    printf "| %s | %s | %s |\n", name, v, $2
  }' "$raw"
  echo
  echo "## Sandbox (examples/msaa.ini: 6 hosts, 6 mariadbd)"
  echo
  echo "| step | seconds |"
  echo "|---|---:|"
  printf '| sandbox up, fresh directory (mariadb-install-db per host, in parallel) | %.2f |\n' "$(awk "BEGIN{print $t1-$t0}")"
  printf '| sandbox up again, everything running (idempotent check) | %.2f |\n' "$(awk "BEGIN{print $t2-$t1}")"
  printf '| sandbox down | %.2f |\n' "$(awk "BEGIN{print $t3-$t2}")"
  printf '| sandbox up after down (existing datadirs) | %.2f |\n' "$(awk "BEGIN{print $t4-$t3}")"
} >"$out"
echo "bench: wrote $out"
