package datapath

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// The kernel path's BPF objects: four maps and the verdict program, made
// with github.com/cilium/ebpf, whose Map and Program own their file
// descriptors and the memory handed to bpf(2). The program is written
// out below with its asm package (some forty instructions).

// bpfObjects are the maps and the attached verdict program. The maps are
// used from several goroutines (the watcher, pairs moving out, metrics
// scrapes) and closed by one: mu is held for reading while they are
// used, for writing while they are closed, so that no map is used once
// closed (errReleased).
type bpfObjects struct {
	mu     sync.RWMutex
	closed bool

	peers  *ebpf.Map // a socket's addresses ([16]byte, sockKey) -> its flow index
	socks  *ebpf.Map // SOCKMAP: flow index -> socket
	flows  *ebpf.Map // flow index -> flow (the program's)
	grants *ebpf.Map // flow index -> credit, the bytes granted (u64, the connector's)
	prog   *ebpf.Program
}

// flow is a direction's state in the flows map. Next and Started are
// the program's sequence check (bpfseq.go); Paused is flowBroken once a
// packet's old bytes could not be taken out.
type flow struct {
	Used    uint64
	Paused  uint32
	Target  uint32
	Next    uint32
	Started uint32
}

var errReleased = errors.New("the kernel path's BPF maps are released")

// newBPFObjects creates the maps, loads the verdict program and attaches
// it to the SOCKMAP; an error says why the kernel refused, and leaves
// nothing open.
func newBPFObjects(entries uint32) (_ *bpfObjects, err error) {
	o := &bpfObjects{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	newMap := func(name string, typ ebpf.MapType, key, value uint32) (*ebpf.Map, error) {
		return ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: typ, KeySize: key, ValueSize: value, MaxEntries: entries})
	}
	if o.peers, err = newMap("carbide_peers", ebpf.Hash, 16, 4); err != nil {
		return nil, fmt.Errorf("cannot create a BPF map (needs CAP_BPF): %w", err)
	}
	if o.socks, err = newMap("carbide_socks", ebpf.SockMap, 4, 4); err != nil {
		return nil, fmt.Errorf("cannot create a SOCKMAP: %w", err)
	}
	if o.flows, err = newMap("carbide_flows", ebpf.Array, 4, 24); err != nil {
		return nil, fmt.Errorf("cannot create a BPF array: %w", err)
	}
	if o.grants, err = newMap("carbide_grants", ebpf.Array, 4, 8); err != nil {
		return nil, fmt.Errorf("cannot create a BPF array: %w", err)
	}
	seq, err := kernelSeqTypes()
	if err != nil {
		return nil, err
	}
	if o.prog, err = loadVerdict(verdictProgram(o.peers, o.socks, o.flows, o.grants, seq)); err != nil {
		return nil, fmt.Errorf("cannot load the verdict program: %w", err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: o.socks.FD(), Program: o.prog, Attach: ebpf.AttachSkSKBVerdict})
	if err != nil {
		return nil, fmt.Errorf("cannot attach the verdict program (needs kernel 5.13): %w", err)
	}
	return o, nil
}

// close detaches the program and closes the maps (the kernel frees them
// with the last reference: the sockets still in the SOCKMAP, if any, are
// taken out).
func (o *bpfObjects) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	if o.prog != nil && o.socks != nil {
		link.RawDetachProgram(link.RawDetachProgramOptions{Target: o.socks.FD(), Program: o.prog, Attach: ebpf.AttachSkSKBVerdict})
	}
	o.prog.Close()
	for _, m := range []*ebpf.Map{o.peers, o.socks, o.flows, o.grants} {
		m.Close()
	}
}

// use runs f while the maps are open.
func (o *bpfObjects) use(f func() error) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return errReleased
	}
	return f()
}

// insert fills the maps for a pair's two flows (slot<<1 | side): flows and
// credit first, then the keys that lead the program to them, then the
// sockets.
func (o *bpfObjects) insert(slot uint32, keys [2][16]byte, fds [2]int, grant uint64) error {
	return o.use(func() error {
		for side := uint32(0); side < 2; side++ {
			i := slot<<1 | side
			if err := o.flows.Update(i, flow{Target: slot<<1 | (1 - side)}, ebpf.UpdateAny); err != nil {
				return err
			}
			if err := o.grants.Update(i, grant, ebpf.UpdateAny); err != nil {
				return err
			}
			if err := o.peers.Update(keys[side], i, ebpf.UpdateAny); err != nil {
				return err
			}
		}
		for side := uint32(0); side < 2; side++ {
			if err := o.socks.Update(slot<<1|side, uint32(fds[side]), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("cannot put a socket in the SOCKMAP: %w", err)
			}
		}
		return nil
	})
}

// forget deletes a pair's keys: its flows are no longer reachable.
func (o *bpfObjects) forget(keys [2][16]byte) {
	o.use(func() error {
		for _, key := range keys {
			o.peers.Delete(key)
		}
		return nil
	})
}

func (o *bpfObjects) flow(i uint32) (flow, error) {
	var f flow
	err := o.use(func() error { return o.flows.Lookup(i, &f) })
	return f, err
}

func (o *bpfObjects) grant(i uint32, g uint64) error {
	return o.use(func() error { return o.grants.Update(i, g, ebpf.UpdateAny) })
}

// lookupFlows reads the first len(keys) flows into keys and vals (as
// long) with one call, and says how many it read.
func (o *bpfObjects) lookupFlows(keys []uint32, vals []flow) (int, error) {
	n := 0
	err := o.use(func() error {
		var cursor ebpf.MapBatchCursor
		var err error
		n, err = o.flows.BatchLookup(&cursor, keys, vals, nil)
		if errors.Is(err, ebpf.ErrKeyNotExist) { // the end of the map: n says how many
			err = nil
		}
		return err
	})
	return n, err
}

// Offsets in struct __sk_buff, and the verdict that passes a packet on
// to the receiving socket.
const (
	skbLen      = 0   // len
	skbRemoteIP = 92  // remote_ip4
	skbLocalIP  = 96  // local_ip4
	skbRemPort  = 132 // remote_port
	skbLocPort  = 136 // local_port
	skPass      = 1   // SK_PASS
)

// verdictProgram is the kernel path's SK_SKB verdict program. For each
// packet a mapped socket receives it finds the socket's flow by the
// connection's addresses (peers), takes out of the packet the bytes the
// flow already passed on (seqCheck, bpfseq.go), and sends the rest to
// the flow's target socket (socks) while the flow has credit: the bytes
// it may have in the kernel beyond what the target socket already took
// (grants, which the connector raises as they go out). A flow without
// credit is paused for good: it and everything after it stay on the
// receiving socket, where the connector's event loops read them
// (kaccel.go).
//
// flows[i] is {used u64, paused u32, target u32, next u32, started u32},
// written by the program (target once by the connector before the flow
// is reachable); grants[i] is {granted u64}, written by the connector
// only.
func verdictProgram(peers, socks, flows, grants *ebpf.Map, seq seqTypes) asm.Instructions {
	// lookup: r0 = the element of m keyed by the stack at off, or pass.
	lookup := func(m *ebpf.Map, off int32) asm.Instructions {
		return asm.Instructions{
			loadMap(asm.R1, m),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, off),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
		}
	}
	var p asm.Instructions
	p = append(p,
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = skb
		// The key at fp-16: remote IP, local IP, remote port, local port.
		asm.LoadMem(asm.R2, asm.R6, skbRemoteIP, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbLocalIP, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbRemPort, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbLocPort, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
	)
	p = append(p, lookup(peers, -16)...) // no flow: pass
	p = append(p,
		asm.LoadMem(asm.R2, asm.R0, 0, asm.Word), // flow index, at fp-20
		asm.StoreMem(asm.RFP, -20, asm.R2, asm.Word),
	)
	p = append(p, lookup(flows, -20)...)
	p = append(p, asm.Mov.Reg(asm.R7, asm.R0)) // r7 = flow
	p = append(p, seqCheck(seq)...)
	p = append(p,
		asm.LoadMem(asm.R2, asm.R7, flowPaused, asm.Word).WithSymbol("fresh"),
		asm.JEq.Imm(asm.R2, flowBroken, "drop"), // broken: nothing more
		asm.JNE.Imm(asm.R2, 0, "pass"),          // paused: pass
	)
	p = append(p, lookup(grants, -20)...)
	p = append(p,
		asm.LoadMem(asm.R3, asm.R0, 0, asm.DWord),       // r3 = granted
		asm.LoadMem(asm.R8, asm.R6, skbLen, asm.Word),   // r8 = len
		asm.LoadMem(asm.R2, asm.R7, 0, asm.DWord),       // r2 = used
		asm.Add.Reg(asm.R2, asm.R8),                     // r2 = used + len
		asm.JGE.Reg(asm.R2, asm.R3, "pause"),            // no credit: pause
		asm.AddAtomic.Mem(asm.R7, asm.R8, asm.DWord, 0), // used += len
		asm.LoadMem(asm.R3, asm.R7, 12, asm.Word),       // r3 = target
		asm.Mov.Reg(asm.R1, asm.R6),
		loadMap(asm.R2, socks),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkRedirectMap.Call(),
		asm.Return(),
		asm.StoreImm(asm.R7, 8, 1, asm.Word).WithSymbol("pause"), // paused = 1
		asm.Mov.Imm(asm.R0, skPass).WithSymbol("pass"),
		asm.Return(),
	)
	return p
}

// loadMap loads a pointer to m into dst.
func loadMap(dst asm.Register, m *ebpf.Map) asm.Instruction {
	ins := asm.LoadMapPtr(dst, 0)
	if err := ins.AssociateMap(m); err != nil {
		panic(err) // LoadMapPtr is a load from a map
	}
	return ins
}

// loadVerdict loads insns as an SK_SKB verdict program. A refusal by the
// verifier carries the verifier's whole log.
func loadVerdict(insns asm.Instructions) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "carbide_verdict",
		Type:         ebpf.SkSKB,
		AttachType:   ebpf.AttachSkSKBVerdict,
		Instructions: insns,
		License:      "GPL",
	})
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) && len(ve.Log) > 0 {
		return nil, fmt.Errorf("%w; the verifier's log:\n%s", err, strings.Join(ve.Log, "\n"))
	}
	return prog, err
}
