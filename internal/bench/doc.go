// Package bench holds end-to-end benchmarks that put Carbide's replicator
// beside MariaDB's own replication on the same data, on real mariadbd
// servers (see the _test.go files):
//
//   - BenchmarkReplicationApply: a sysbench oltp_write_only backlog applied
//     by native replication (1 thread, 4 threads optimistic) and by
//     Carbide's applier reading the THL, each on its own copy of one
//     snapshot, in transactions per second.
//   - BenchmarkReplicationLatency: commit-to-visible latency on a replica at
//     a fixed low rate, native single-threaded replica against Carbide's
//     master and slave services (extractor, THL, gRPC stream, applier).
//
// They take minutes, so they skip unless CARBIDE_BENCH_REPLICATION=1
// (scripts/bench.sh, run by make bench, sets it). The package has no
// non-test code.
//
// Its tests import internal packages and the agents' packages; no program
// imports it.
package bench
