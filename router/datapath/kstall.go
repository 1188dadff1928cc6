package datapath

import (
	"time"

	"golang.org/x/sys/unix"
)

// Stall detection. The kernel path has a public record of bugs in which
// bytes the kernel took are neither passed on nor handed back: responses
// cut short, sends stuck for tens of seconds. The watcher therefore
// checks, every kernelStallCheck, whether each flow holds bytes it does
// not move, and moves a pair with such a flow to the event loops (the
// same way as a paused one), counts it and says so in the log.
//
// What a flow holds is measured from TCP_INFO on its two sockets and its
// Used counter (the bytes the program redirected):
//   - unread: bytes the receiving socket got that the program did not
//     take. A flow out of credit is paused by the program at its next
//     packet and leaves as "paused" before it is checked, so bytes the
//     program leaves on purpose are never counted here.
//   - queued: bytes the program took that the target socket has not
//     accepted for sending, while that socket has sent everything and
//     had it acknowledged. A target whose peer does not read (a slow or
//     paused client) still has bytes of its own to send, so this is not
//     back-pressure but the kernel failing to push.
//
// A flow that holds bytes and whose Used and sent counts do not change
// for kernelStallAfter is stalled. The kernel sends redirected bytes from
// a worker thread, which a machine short of CPU can keep waiting as long
// as it keeps the watcher waiting: a check that comes late (the watcher
// itself was kept from running) does not call a flow stalled, the next
// one on time does if nothing moved meanwhile. Each check costs two
// getsockopt calls per pair in the kernel.
const (
	kernelStallAfter = 200 * time.Millisecond
	kernelStallCheck = 5 * kernelTick
)

// flowWatch is what the watcher last saw of a flow.
type flowWatch struct {
	used, sent uint64
	held       bool      // bytes were waiting
	since      time.Time // the last progress, or when bytes were first seen waiting
}

// stall says whether a flow of kp is stalled, which, and how many bytes
// it holds; f are the pair's flows as read at this tick, late says that
// the watcher ran late (no flow is called stalled then).
func (kp *kpair) stall(f [2]flow, now time.Time, late bool) (side int, held uint64, stalled bool) {
	var ti [2]*unix.TCPInfo
	for s, fd := range kp.fds {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.State == tcpClose {
			return 0, 0, false // its end is being handled
		}
		ti[s] = info
	}
	for side := 0; side < 2; side++ {
		to := 1 - side
		used := f[side].Used
		received := ti[side].Bytes_received - kp.read[side]
		sent := ti[to].Bytes_sent - ti[to].Bytes_retrans + uint64(ti[to].Notsent_bytes) - kp.base[to]
		var unread, queued uint64
		if received > used {
			unread = received - used
		}
		if used > sent && ti[to].Notsent_bytes == 0 && ti[to].Unacked == 0 {
			queued = used - sent
		}
		w := &kp.watch[side]
		held := unread+queued > 0
		if used != w.used || sent != w.sent || !held || !w.held {
			*w = flowWatch{used: used, sent: sent, held: held, since: now}
			continue
		}
		if !late && now.Sub(w.since) >= kernelStallAfter {
			return side, unread + queued, true
		}
	}
	return 0, 0, false
}

// stalled moves kp, whose flow side holds bytes it has not moved, to the
// event loops, and counts it.
func (k *kernel) stalled(kp *kpair, side int, held uint64) {
	k.stalls.Add(1)
	dir := "to_server"
	if side == serverSide {
		dir = "to_client"
	}
	k.log.Warn("kernel path: a connection's bytes stopped moving; it moves to the event loops",
		"direction", dir, "bytes", held, "for", kernelStallAfter)
	kp.leave("stalled")
}
