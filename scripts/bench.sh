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
CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkReplication' -benchtime 1x -timeout 90m ./internal/bench | tee -a "$raw"
CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkManager' -benchtime 1x -timeout 30m ./internal/bench | tee -a "$raw"
CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkConnector' -benchtime 1x -timeout 30m ./internal/bench | tee -a "$raw"
CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkTprovision' -benchtime 1x -timeout 30m ./internal/bench | tee -a "$raw"
CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkClusterCheck' -benchtime 1x -timeout 60m ./internal/bench | tee -a "$raw"
# The WAN rows need root (the WAN bed is made of network namespaces).
if [ "$(id -u)" = 0 ]; then
  CARBIDE_BENCH_REPLICATION=1 go test -run '^$' -bench '^BenchmarkWAN' -benchtime 1x -timeout 60m ./internal/bench | tee -a "$raw"
else
  echo "bench: not root, so no WAN rows (the WAN bed needs network namespaces)"
fi

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

echo "bench: cctrl ls on east1 beside a direct mariadb client query, 20 runs each"
# timeit N CMD...: the median and max wall time of N runs, in ms.
timeit() {
  local n=$1; shift
  for _ in $(seq "$n"); do
    local a b
    a=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "bench: $* failed" >&2; exit 1; }; b=$(date +%s%N)
    echo $(( (b - a) / 1000 ))
  done | sort -n | awk '{v[NR]=$1} END {printf "%.1f %.1f", v[int((NR+1)/2)]/1000, v[NR]/1000}'
}
cctrl_ls() { echo ls | "$sb/east1/continuent/bin/cctrl"; }
direct_q() { mariadb -h127.251.1.1 -P13306 -utungsten -psecret -e 'select 1'; }
read -r ls_p50 ls_max <<<"$(timeit 20 cctrl_ls)"
read -r q_p50 q_max <<<"$(timeit 20 direct_q)"

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "$(nproc) cores, $(mariadbd --version | awk '{print $3}'), $(go version | awk '{print $3}')."
  echo "Every row was measured in this one run; a baseline sits beside what it is compared to."
  echo
  echo "How to read the replication rows (internal/bench): a primary gets 4 sysbench tables of"
  echo "100,000 rows, then 80,000 oltp_write_only transactions (8 threads) with no replica attached."
  echo "Fresh copies of the pre-load snapshot then apply that same backlog one at a time: MariaDB's"
  echo "native replication (1 thread, and 4 threads optimistic; log_slave_updates=ON because Carbide's"
  echo "applier writes its binlog too) and Carbide's applier reading the THL the extractor made."
  echo "vs-native-* are Carbide's tx/s over the baseline's. Carbide commits a block of source"
  echo "transactions (10 by default) as one replica transaction, so it fsyncs far less per source"
  echo "transaction than native replication; each block is still durable and applied exactly once."
  echo "The latency rows write 200 single-row transactions per second for 20 s and time each from"
  echo "the client's COMMIT on the primary to the row being visible on the replica."
  echo "ReplicationCrossSite runs the whole sample topology (six hosts, real processes): 500"
  echo "single-row transactions per second on each site's primary for 20 s, each timed from its"
  echo "COMMIT to its visibility on a host of the other site, then the same at ${CARBIDE_BENCH_CROSS_LOW_RATE:-100} tx/s per site (a rate"
  echo "this machine sustains when 500 saturates it: the pipeline's own latency rather than a queue);"
  echo "then a 20,000-transaction backlog"
  echo "written on east while west's cross-site replicators are stopped, and their catch-up rate;"
  echo "then west's UPDATEs of those rows the other way (west loses to east: each block of them is"
  echo "asked about east's concurrent changes where east changed the table after what west had applied)."
  echo "causal-holds and causal-held-ms count the transactions the twelve appliers held during the"
  echo "latency run until another stream had been applied as much on their host as at the source"
  echo "(causal order across streams, docs/replicator.md), and how long they were held in all."
  echo "The Manager rows run one site of three hosts (east1..east3) in a sandbox of real processes:"
  echo "mariadbd, a replicator and a manager per host. A writer (the application user, one connection"
  echo "per host) inserts one row at a time into whichever host takes it, 1 ms apart, trying the next"
  echo "host at once when one refuses. ManagerSwitch runs \`switch\` N times (ops measured;"
  echo "CARBIDE_BENCH_REPS, 10 by default), each after a second of writes; a switch's write-unavailability"
  echo "runs from the last INSERT the old primary acknowledged to the first the new primary acknowledged"
  echo "(switch-p50-ms, switch-max-ms); switch-cmd-p50-ms is the command's own duration. Every host must"
  echo "then hold exactly the acknowledged rows. ManagerFailover kills -9 the primary's mariadbd N times"
  echo "(CARBIDE_BENCH_FAILOVER_REPS, 20 by default) and times the kill to the first INSERT acknowledged"
  echo "by the new primary (failover-p50-ms, failover-max-ms); the old primary's mariadbd is then started"
  echo "again and \`datasource HOST recover\` makes it a replica before the next kill; lost-writes counts"
  echo "the acknowledged rows missing at the end. ManagerFailoverLagging does the same with one candidate"
  echo "only (the third host shunned) whose applier a LOCK TABLES held for 2 s under the writer: the time"
  echo "runs to the first write on the candidate once it applied its backlog (a complete primary)."
  echo "Targets: switch p50 ≤ 1 s; failover p50 ≤ 1 s, max ≤ 2 s, lost-writes 0."
  echo "ReplicationApplyConflictDetection applies the ReplicationApply backlog with conflict detection"
  echo "on (the default: the block's statement first counts, locked, the rows it changes that still hold their before-images) and off, three"
  echo "times each in alternation after a warm-up run; the median rows compare them (on-vs-off, goal ≥ 0.9)."
  echo "ReplicationApplyConflictSplit applies 20,000 transactions of two row updates each, every tenth meeting"
  echo "a conflict (log policy): split, a block that meets one is split down to the transaction in conflict,"
  echo "alone in conflict mode; whole-block-baseline, the whole block goes to conflict mode, one transaction"
  echo "at a time (as before splitting). Alternated three times after a warm-up; split-vs-whole compares medians."
  echo "Tprovision rebuilds replicas of one site (three hosts, real processes) whose primary holds"
  echo "a sysbench database of ${CARBIDE_BENCH_TPROVISION_MB:-1024} MB (8 tables; the replicas' replicators offline while it is"
  echo "loaded): tprovision -m mysqldump on east2 and -m mariabackup -t 2 on east3, each beside the"
  echo "same copy by hand (mysqldump --single-transaction | mariadb; mariabackup --backup"
  echo "--stream=mbstream | mbstream -x, then --prepare). tprovision's time includes shunning,"
  echo "taking the replicators offline, (for mariabackup) stopping and starting the database,"
  echo "setting the position, and the datasource back ONLINE; MB/s is the database's size over it."
  echo "Both replicas must then apply a new write and match the primary's checksums."
  echo "Numbers swing"
  echo "with whatever else runs on the two cores; the CPU-per-transaction metrics are steadier."
  echo
  echo "## Go benchmarks"
  echo
  echo "| benchmark | time per op | ops measured | metrics |"
  echo "|---|---:|---:|---|"
  # A result line is: name, b.N, then value/unit pairs: ns/op (absent when
  # a benchmark suppresses it) and any b.ReportMetric or -benchmem ones,
  # which go to the metrics column, rates (*/s) first. A metric "ops" is
  # the operations a benchmark measured inside its one b.N (the Manager
  # ones repeat a switch or failover) and replaces b.N in its column.
  rows() { awk -v want="$1" -v skip="$2" 'function num(x) {
      if (x == int(x) || x >= 100 || x <= -100) return sprintf("%.0f", x)
      if (x >= 10 || x <= -10) return sprintf("%.1f", x)
      return sprintf("%.2f", x)
    }
    $0 ~ want && $0 !~ skip && NF >= 4 {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    v="–"; rates=""; m=""; ops=$2
    for (i = 3; i < NF; i += 2) {
      if ($(i+1) == "ops") {
        ops=num($i)
      } else if ($(i+1) == "ns/op") {
        ns=$i
        if (ns >= 1e9) { v=sprintf("%.2f s", ns/1e9) } else if (ns >= 1e6) { v=sprintf("%.1f ms", ns/1e6) } else if (ns >= 1e3) { v=sprintf("%.1f µs", ns/1e3) } else { v=sprintf("%d ns", ns) }
      } else if ($(i+1) ~ /\/s$/) {
        rates = rates (rates == "" ? "" : ", ") num($i) " " $(i+1)
      } else {
        m = m (m == "" ? "" : ", ") num($i) " " $(i+1)
      }
    }
    if (rates != "") m = rates (m == "" ? "" : ", ") m
    printf "| %s | %s | %s | %s |\n", name, v, ops, m
  }' "$raw"; }
  rows '^Benchmark' '^Benchmark(Connector/|ClusterCheck/|WAN)'
  echo
  echo "## Connector"
  echo
  echo "BenchmarkConnector (internal/bench): one site of three hosts of real processes (mariadbd,"
  echo "replicator, manager, connector per host). sysbench (4 tables of 10,000 rows) reaches east1's"
  echo "database three ways from the same address: directly (port 13306), through Carbide's connector"
  echo "on east1 (3306), and through HAProxy in TCP mode (Debian's haproxy, default two threads, 6033)."
  echo "Each load runs each path $((${CARBIDE_BENCH_CONNECTOR_RUNS:-5})) times, alternated; the table gives the medians."
  echo "The half-rate rows run each path at a fixed rate all three sustain (half the slowest median)"
  echo "and give the p95 each proxy adds over the direct path. On two cores every proxy competes"
  echo "with sysbench and mariadbd for CPU, so connector/HAProxy is the fair ratio."
  echo "Target: connector ≥ 1.0 × HAProxy QPS, and its added p95 at the fixed rate no more than HAProxy's."
  echo "The connector runs its kernel path here (a BPF sockmap redirects each packet to the other"
  echo "socket; docs/connector.md, \"Data path\"); with CARBIDE_CONNECTOR_KERNEL=off it runs its event"
  echo "loops alone, which measured 0.92-1.03 × HAProxy in the run before the kernel path."
  echo "CPU µs/query is what the whole machine (every process and the kernel, /proc/stat) spent per"
  echo "query during the run; added is that beyond the direct path's, proxy the proxy process's own"
  echo "part of it. At CPU saturation direct's CPU per query over a path's bounds that path's QPS over"
  echo "direct's (CPU bound)."
  echo
  echo "| load | path | QPS | p95 ms | fixed tx/s | added p95 ms | vs HAProxy | vs direct | CPU µs/query | added | proxy | CPU bound |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk '/^BenchmarkConnector\// {
    split($1, part, "/"); load=part[2]; path=part[3]; sub(/-[0-9]+$/, "", path); sub(/-baseline$/, " (baseline)", path)
    delete v
    for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", load, path,
      ("qps" in v) ? sprintf("%.0f", v["qps"]) : "", sprintf("%.2f", v["p95-ms"]),
      ("tx/s-fixed" in v) ? sprintf("%.0f", v["tx/s-fixed"]) : "",
      ("added-p95-ms" in v) ? sprintf("%.2f", v["added-p95-ms"]) : "",
      ("vs-haproxy" in v) ? sprintf("%.2f", v["vs-haproxy"]) : "",
      ("vs-direct" in v) ? sprintf("%.2f", v["vs-direct"]) : "",
      ("cpu-us/query" in v) ? sprintf("%.1f", v["cpu-us/query"]) : "",
      ("added-cpu-us/query" in v) ? sprintf("%.1f", v["added-cpu-us/query"]) : "",
      ("proxy-cpu-us/query" in v) ? sprintf("%.1f", v["proxy-cpu-us/query"]) : "",
      ("cpu-bound-vs-direct" in v) ? sprintf("%.2f", v["cpu-bound-vs-direct"]) : ""
  }' "$raw"
  echo
  echo "## Cluster check"
  echo
  # The database's size and rows per table, as the benchmark reported them.
  read -r check_mb check_rows <<<"$(awk '/^BenchmarkClusterCheck\/cluster-check/ && NF >= 4 {
    for (i = 3; i < NF; i += 2) { if ($(i+1) == "MB") mb = $i; if ($(i+1) == "rows") rows = $i }
    printf "%.0f %.0f", mb, rows / 8 }' "$raw")"
  echo "BenchmarkClusterCheck (internal/bench): the sample topology (examples/msaa.ini, six hosts of real"
  echo "processes) holding a sysbench database of ${check_mb:-?} MB (8 tables of ${check_rows:-?} rows) prepared"
  echo "through east1 and replicated to every host. cluster-check is \`cluster check -json sbtest\` piped"
  echo "into east1's cctrl: east1, the master of east, cuts each table into chunks by key range (each"
  echo "sized to take about 250 ms there) and every host of both sites checksums each chunk (a CRC32 and"
  echo "a CRC32C per row) in a consistent snapshot when it applies the chunk's marker; master done is when east1 wrote"
  echo "the last marker, the rest is waiting for the other hosts. The baseline is pt-table-checksum's"
  echo "query by hand (COUNT(*) and BIT_XOR of a CRC32 per row) from Go over one connection to east1"
  echo "alone, chunk after chunk by id BETWEEN a AND b, each table cut into as many chunks of equal id"
  echo "span as the warm-up check cut it into. check-query-one-host runs the check's own checksum query"
  echo "the same way: what its per-row hash costs one host. After a warm-up check (not counted) each way"
  echo "runs $((${CARBIDE_BENCH_CHECK_RUNS:-3})) times, alternated; a row is the median run, with the fastest and slowest; CPU is"
  echo "what the six mariadbd used meanwhile. The six databases share the two cores here, so the check's"
  echo "wall time pays for six hosts' checksums; with a host per machine it would approach the"
  echo "check-query-one-host row plus the wait for the slowest host."
  echo
  echo "| run | median s | range s | rows/s | chunks | master done s | mariadbd CPU s | time vs baseline |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  awk 'function sec(x) { return sprintf(x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : "%.2f", x) }
    /^BenchmarkClusterCheck\// && !/writes-/ && NF >= 4 {
    split($1, part, "/"); name=part[2]; sub(/-[0-9]+$/, "", name); sub(/-baseline$/, " (baseline)", name)
    delete v
    for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
    printf "| %s | %s | %s-%s | %.0f | %d | %s | %s | %.2f |\n", name, sec(v["ns/op"]/1e9), sec(v["min-s"]), sec(v["max-s"]),
      v["rows/s"], v["chunks"], ("master-s" in v) ? sec(v["master-s"]) : "", sec(v["db-cpu-s"]), v["time-vs-baseline"]
  }' "$raw"
  echo
  echo "Longest lock: a writer on east1 UPDATEs random rows of the sysbench tables ($((${CARBIDE_BENCH_CHECK_WRITE_RATE:-200})) autocommit"
  echo "statements a second, one connection) during a check (its text form, which must find every table"
  echo "equal), then as long again with no check running (baseline), each after every host caught up."
  echo "max ms is the writer's longest statement; lock waits are the InnoDB row-lock and table-lock waits"
  echo "the six databases counted meanwhile (the check reads in a consistent snapshot and locks nothing)."
  echo "Max apply lag is the largest carbide_replicator_applied_latency_seconds of service east on the"
  echo "five other hosts, sampled every 100 ms: an applier holds its stream while it checksums a chunk."
  echo
  echo "| writer on east1 | updates/s | p50 ms | p99 ms | max ms | lock waits | max apply lag ms | check s | check rounds |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk '/^BenchmarkClusterCheck\/writes-/ && NF >= 4 {
    split($1, part, "/"); name=part[2]; sub(/-[0-9]+$/, "", name); sub(/-baseline$/, " (baseline)", name)
    delete v
    for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
    printf "| %s | %.0f | %.2f | %.1f | %.1f | %d | %.0f | %s | %s |\n", name, v["writes/s"], v["p50-ms"], v["p99-ms"], v["max-ms"],
      v["row-lock-waits"] + v["table-lock-waits"], v["max-lag-ms"],
      ("check-s" in v) ? sprintf("%.1f", v["check-s"]) : "", ("rounds" in v) ? sprintf("%d", v["rounds"]) : ""
  }' "$raw"
  echo
  echo "## WAN"
  echo
  echo "The same measurements on the WAN bed (docs/sandbox.md): \`sandbox up --netns --wan-delay"
  echo "${CARBIDE_BENCH_WAN_DELAY:-40ms}\`, each host in a network namespace of its own, the sites joined by the"
  echo "sandbox's user-space link, ${CARBIDE_BENCH_WAN_DELAY:-40ms} one way (a round trip between sites is twice that)."
  echo "WANCrossSite is ReplicationCrossSite there (its loopback row is above): latency from COMMIT"
  echo "on one site to visibility on the other at 500 tx/s per site (goal p99 ≤ the delay + 15 ms),"
  echo "and the backlog's catch-up rate. WANCrossSite/thl-stream streams east's whole cluster THL"
  echo "(seqno 0 to its last, what a new cross-site replicator reads) from east1 into west1's"
  echo "namespace over the link, counting the events' bytes, storing nothing; raw-tcp-baseline sends"
  echo "as many bytes over one TCP connection between the same namespaces: the link's limit. The two"
  echo "alternate ${CARBIDE_BENCH_WAN_REPS:-3} times: MB/s is the median, min and max the range."
  echo "WANFailover is ManagerFailover (kill -9 of east's primary to the writer's first write on"
  echo "the new one; goal p50 ≤ 1.5 s) with the whole sample topology up and west ${CARBIDE_BENCH_WAN_DELAY:-40ms} away."
  echo "Without root there are no rows here."
  echo
  echo "| benchmark | time per op | ops measured | metrics |"
  echo "|---|---:|---:|---|"
  rows '^BenchmarkWAN' '^$'
  echo
  echo "## Sandbox (examples/msaa.ini: 6 hosts, 6 mariadbd)"
  echo
  echo "| step | seconds |"
  echo "|---|---:|"
  printf '| sandbox up, fresh directory (mariadb-install-db per host, in parallel) | %.2f |\n' "$(awk "BEGIN{print $t1-$t0}")"
  printf '| sandbox up again, everything running (idempotent check) | %.2f |\n' "$(awk "BEGIN{print $t2-$t1}")"
  printf '| sandbox down | %.2f |\n' "$(awk "BEGIN{print $t3-$t2}")"
  printf '| sandbox up after down (existing datadirs) | %.2f |\n' "$(awk "BEGIN{print $t4-$t3}")"
  echo
  echo "## Operator shell"
  echo
  echo 'A whole `echo ls | cctrl` on east1 of that sandbox (process start, install config,'
  echo "manager Status over gRPC, the guide's boxes rendered) beside the baseline of one"
  echo "\`mariadb -e 'select 1'\` client run against east1's database. Target: ls under 100 ms."
  echo
  echo "| command | p50 ms | max ms |"
  echo "|---|---:|---:|"
  echo "| echo ls \| cctrl (east1) | $ls_p50 | $ls_max |"
  echo "| mariadb -e 'select 1' (baseline, direct connection) | $q_p50 | $q_max |"
} >"$out"
echo "bench: wrote $out"
