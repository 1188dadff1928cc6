package datapath

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// The verdict program's sequence check. The kernel hands the program a
// socket's packets whole, as TCP queued them, and TCP queues whole a
// segment that its peer retransmitted with bytes the socket already has
// in front of new ones (a retransmission that straddles rcv_nxt: the
// peer's timer fired before the socket's acknowledgement reached it,
// which on a loaded loopback happens at the end of large answers).
// tcp_recvmsg skips such a segment's old part by its sequence number;
// tcp_read_skb, which feeds a SOCKMAP's verdict program, does not, so
// the program would pass those bytes on a second time, whether it
// redirects the packet or passes it to its own socket for the event
// loops (docs/connector.md, "Kernel path"). A MySQL client reading a
// result then finds a packet out of sequence ("commands out of sync").
//
// So each flow keeps the sequence number of the next byte it has not
// passed on (flow.Next), and the program takes out of every packet the
// bytes before it (bpf_skb_adjust_room, at most 4095 bytes a call)
// before it looks at credit, and drops a packet that holds nothing new.
// The packet's sequence number is in the kernel's sk_buff
// (TCP_SKB_CB(skb)->seq, the first field of skb->cb), read through
// bpf_cast_to_kern_ctx; a flow starts at its socket's copied_seq, where
// the connector's own reads stopped before the socket was mapped. Both
// need the kernel's BTF, whose type IDs and offsets are looked up when
// the program is built. A packet whose old part cannot be taken out
// (the kernel has no memory for it, or more than seqPulls calls can
// take) marks its flow broken: the program drops what the flow gets
// from then on, and the watcher closes the pair (the client sees an
// error, never bytes out of order).

// Offsets in struct flow (bpf.go) and the value of Paused that marks a
// broken flow.
const (
	flowPaused  = 8
	flowNext    = 16
	flowStarted = 20
	flowBroken  = 2

	skbSk   = 168 // struct __sk_buff: sk
	skDrop  = 0   // SK_DROP
	maxPull = 0xfff
	// seqPulls bounds the bytes taken out of one packet (262,080): a
	// retransmitted segment is at most one GSO packet (64 KB), but
	// segments that came out of order are merged while they wait, and
	// one of those can start further back (the reproducer saw 130,966
	// bytes come twice).
	seqPulls = 64
)

// seqTypes are what the sequence check needs from the kernel's BTF.
type seqTypes struct {
	castCtx btf.TypeID // the kfunc bpf_cast_to_kern_ctx
	cb      int16      // offset of cb in struct sk_buff
	copied  int16      // offset of copied_seq in struct tcp_sock
}

// kernelSeqTypes looks them up in the running kernel's BTF.
func kernelSeqTypes() (seqTypes, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return seqTypes{}, fmt.Errorf("no kernel BTF (needs CONFIG_DEBUG_INFO_BTF): %w", err)
	}
	var fn *btf.Func
	if err := spec.TypeByName("bpf_cast_to_kern_ctx", &fn); err != nil {
		return seqTypes{}, fmt.Errorf("the kernel has no bpf_cast_to_kern_ctx (needs 6.3): %w", err)
	}
	id, err := spec.TypeID(fn)
	if err != nil {
		return seqTypes{}, err
	}
	cb, err := memberOffset(spec, "sk_buff", "cb")
	if err != nil {
		return seqTypes{}, err
	}
	copied, err := memberOffset(spec, "tcp_sock", "copied_seq")
	if err != nil {
		return seqTypes{}, err
	}
	return seqTypes{castCtx: id, cb: cb, copied: copied}, nil
}

// memberOffset is the byte offset of member in struct typ.
func memberOffset(spec *btf.Spec, typ, member string) (int16, error) {
	var s *btf.Struct
	if err := spec.TypeByName(typ, &s); err != nil {
		return 0, fmt.Errorf("no struct %s in the kernel's BTF: %w", typ, err)
	}
	off, ok := findMember(s.Members, member)
	if !ok || off.Bytes() > 1<<15-4 {
		return 0, fmt.Errorf("no member %s in struct %s", member, typ)
	}
	return int16(off.Bytes()), nil
}

// findMember looks for name among ms and inside their anonymous structs
// and unions.
func findMember(ms []btf.Member, name string) (btf.Bits, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.Offset, true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if off, ok := findMember(inner, name); ok {
			return m.Offset + off, true
		}
	}
	return 0, false
}

// seqCheck is the sequence check, with the context in r6 and the flow
// in r7; it goes on at "fresh" with what is new in the packet, or jumps
// to "drop". It uses r8, r9 and the stack at fp-28..fp-21.
func seqCheck(t seqTypes) asm.Instructions {
	p := asm.Instructions{
		// r9 = the packet's sequence number.
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Src: asm.PseudoKfuncCall, Constant: int64(t.castCtx)},
		asm.LoadMem(asm.R9, asm.R0, t.cb, asm.Word),
		asm.LoadMem(asm.R2, asm.R7, flowStarted, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "started"),
		// The flow's first packet: it starts at the socket's copied_seq
		// (or, if that cannot be read, at the packet).
		asm.StoreMem(asm.R7, flowNext, asm.R9, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, skbSk, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "begun"),
		asm.FnSkcToTcpSock.Call(),
		asm.JEq.Imm(asm.R0, 0, "begun"),
		asm.LoadMem(asm.R2, asm.R0, t.copied, asm.Word),
		asm.StoreMem(asm.R7, flowNext, asm.R2, asm.Word),
		asm.StoreImm(asm.R7, flowStarted, 1, asm.Word).WithSymbol("begun"),
		// r2 = next, r8 = len; next = the packet's end if that is later.
		asm.LoadMem(asm.R2, asm.R7, flowNext, asm.Word).WithSymbol("started"),
		asm.LoadMem(asm.R8, asm.R6, skbLen, asm.Word),
		asm.JEq.Imm(asm.R8, 0, "fresh"), // a FIN alone
		asm.Mov.Reg32(asm.R3, asm.R9),
		asm.Add.Reg32(asm.R3, asm.R8),
		asm.Mov.Reg32(asm.R4, asm.R3),
		asm.Sub.Reg32(asm.R4, asm.R2),
		asm.JSLE.Imm32(asm.R4, 0, "later"),
		asm.StoreMem(asm.R7, flowNext, asm.R3, asm.Word),
		// r2 = the bytes in front that were passed on already.
		asm.Sub.Reg32(asm.R2, asm.R9).WithSymbol("later"),
		asm.JSLE.Imm32(asm.R2, 0, "fresh"),
		asm.JGE.Reg32(asm.R2, asm.R8, "drop"), // nothing new in it
		asm.StoreMem(asm.RFP, -24, asm.R2, asm.Word),
	}
	for i := 0; i < seqPulls; i++ {
		step := fmt.Sprintf("pull%d", i)
		p = append(p,
			asm.LoadMem(asm.R2, asm.RFP, -24, asm.Word),
			asm.JEq.Imm(asm.R2, 0, "fresh"),
			asm.JLE.Imm(asm.R2, maxPull, step),
			asm.Mov.Imm(asm.R2, maxPull),
			asm.StoreMem(asm.RFP, -28, asm.R2, asm.Word).WithSymbol(step),
			asm.Mov.Imm(asm.R3, 0),
			asm.Sub.Reg(asm.R3, asm.R2),
			asm.Mov.Reg(asm.R2, asm.R3), // shrink by r2 bytes at the front
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R3, 0),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnSkbAdjustRoom.Call(),
			asm.JNE.Imm(asm.R0, 0, "broken"),
			asm.LoadMem(asm.R2, asm.RFP, -24, asm.Word),
			asm.LoadMem(asm.R3, asm.RFP, -28, asm.Word),
			asm.Sub.Reg(asm.R2, asm.R3),
			asm.StoreMem(asm.RFP, -24, asm.R2, asm.Word),
		)
	}
	return append(p,
		asm.LoadMem(asm.R2, asm.RFP, -24, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "fresh"),
		asm.StoreImm(asm.R7, flowPaused, flowBroken, asm.Word).WithSymbol("broken"),
		asm.Mov.Imm(asm.R0, skDrop).WithSymbol("drop"),
		asm.Return(),
	)
}
