// Package datapath is the connector's data path: once package router has
// routed a connection and read the server's greeting, it moves the bytes
// both ways between the client and the server until either ends.
//
// Two paths do that. The kernel path (kaccel.go, the BPF program in
// bpf.go and bpfseq.go) puts both sockets in a SOCKMAP, so that queries
// and short answers cost the connector nothing; it must prove itself at
// start (CARBIDE_CONNECTOR_KERNEL, the program loaded and attached), and
// a pair leaves it for the event loops when its credit runs out, its
// bytes stall (kstall.go) or it ends. The event loops (pump.go) are a
// few epoll loops, and the whole data path when the kernel path is off
// or refused. Path (path.go) is the package's API: Add takes a routed
// connection, a Conduit closes or finishes it, Bytes and Stalls are read
// by the connector's metrics.
//
// It imports the standard library, golang.org/x/sys/unix and
// github.com/cilium/ebpf only: never package router, the manager, rpc or
// anything that decides where a connection goes.
package datapath
