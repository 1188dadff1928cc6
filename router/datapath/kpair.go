package datapath

import (
	"time"

	"golang.org/x/sys/unix"
)

// count adds what the kernel passed on since the last count.
func (kp *kpair) count(side int, used uint64) {
	kp.mu.Lock()
	d := used - kp.counted[side]
	if used > kp.counted[side] {
		kp.counted[side] = used
	} else {
		d = 0
	}
	kp.mu.Unlock()
	kp.k.moved[side].Add(d)
}

// leave moves the pair to the event loops (once; in the background).
func (kp *kpair) leave(why string) {
	kp.mu.Lock()
	if kp.leaving {
		kp.mu.Unlock()
		return
	}
	kp.leaving = true
	kp.mu.Unlock()
	kp.k.moving.Add(1)
	go func() {
		defer kp.k.moving.Done()
		kp.moveOut(why)
	}()
}

// moveOut stops both directions (no credit: the program pauses a flow at
// its next packet), waits for the packets the program is handling to be
// done (taking each socket's lock, as TCP_INFO does), then for the
// kernel to send on every byte it took, and hands the sockets to the
// pump, which reads whatever the paused flows left on them.
func (kp *kpair) moveOut(why string) {
	k := kp.k
	for _, fd := range kp.fds {
		unix.EpollCtl(k.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	for side := 0; side < 2; side++ {
		k.grant(kp.slot<<1|uint32(side), 0)
	}
	var used [2]uint64
	for side := 0; side < 2; side++ {
		written(kp.fds[side])
	}
	for side := 0; side < 2; side++ {
		f, err := k.flow(kp.slot<<1 | uint32(side))
		if err == nil {
			used[side] = f.Used
			kp.count(side, f.Used)
		}
	}
	start, progress := time.Now(), time.Now()
	var prev [2]uint64
	pause := 50 * time.Microsecond
	for {
		kp.mu.Lock()
		shut := kp.shut
		kp.mu.Unlock()
		if shut {
			kp.closeNow()
			return
		}
		drained := true
		dead := false
		for side := 0; side < 2; side++ {
			to := 1 - side
			w, state, err := written(kp.fds[to])
			if err != nil || state == tcpClose {
				dead = true // reset: nothing more goes out of it
				continue
			}
			if w != prev[to] {
				prev[to], progress = w, time.Now()
			}
			if w-kp.base[to] < used[side] {
				drained = false
			}
		}
		if drained || dead {
			break
		}
		if time.Since(progress) > kernelStall {
			k.log.Warn("a connection leaving the kernel path made no progress; closed", "after", time.Since(start).Round(time.Millisecond))
			kp.closeNow()
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
	// An EOF the program passed on makes the kernel report EPIPE on the
	// other socket: clear it, the pump would take it for an error.
	for _, fd := range kp.fds {
		unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	}
	if why == "paused" {
		k.paused.Add(1)
	}
	k.log.Debug("connection left the kernel path", "why", why, "took", time.Since(start))
	pr, err := k.pump.adopt(kp.fds[0], kp.fds[1], true, func() {
		k.release(kp)
		kp.done()
	})
	if err != nil {
		kp.closeNow()
		return
	}
	kp.mu.Lock()
	kp.pr = pr
	shut, finished := kp.shut, kp.finished
	kp.mu.Unlock()
	switch {
	case shut:
		pr.Shutdown()
	case finished:
		pr.Finish()
	}
}

// broken closes a pair one of whose flows got bytes again that the
// program could not take out (bpfseq.go): what follows them would reach
// the other side out of order, so the client gets an error instead.
func (k *kernel) broken(kp *kpair) {
	kp.mu.Lock()
	shut := kp.shut
	kp.mu.Unlock()
	if shut {
		return
	}
	k.log.Warn("kernel path: a connection received bytes again that could not be taken out of its stream; it is closed")
	kp.Shutdown()
}

// closeNow closes both sockets and releases the pair.
func (kp *kpair) closeNow() {
	kp.mu.Lock()
	if kp.closed {
		kp.mu.Unlock()
		return
	}
	kp.closed = true
	fds := kp.fds
	kp.mu.Unlock()
	for _, fd := range fds {
		if fd >= 0 {
			unix.EpollCtl(kp.k.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
	}
	// Keys first: the slot must not be reachable when it is reused.
	kp.k.release(kp)
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	kp.done()
}

// Shutdown closes the pair now.
func (kp *kpair) Shutdown() {
	kp.mu.Lock()
	kp.shut = true
	pr, leaving := kp.pr, kp.leaving
	kp.leaving = true
	kp.mu.Unlock()
	switch {
	case pr != nil:
		pr.Shutdown()
	case !leaving:
		kp.closeNow()
	}
	// Leaving: moveOut sees shut.
}

// Finish ends the pair the way a switch's drain needs (pair.Finish), in
// the event loops.
func (kp *kpair) Finish() {
	kp.mu.Lock()
	kp.finished = true
	pr := kp.pr
	kp.mu.Unlock()
	if pr != nil {
		pr.Finish()
		return
	}
	kp.leave("finish")
}

// writeAll writes p to a non-blocking socket, waiting while it is full.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := write(fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		switch err {
		case unix.EINTR:
		case unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, 5000); err != nil && err != unix.EINTR {
				return err
			}
		default:
			return err
		}
	}
	return nil
}
