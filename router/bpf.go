package router

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few bpf(2) commands the kernel path uses, made with raw system
// calls (no BPF library: one program of some forty instructions, written
// out below).

func bpfCall(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

type bpfMapCreateAttr struct {
	Type, KeySize, ValueSize, MaxEntries, Flags uint32
}

func bpfMapCreate(typ, keySize, valueSize, entries uint32) (int, error) {
	a := bpfMapCreateAttr{typ, keySize, valueSize, entries, 0}
	return bpfCall(unix.BPF_MAP_CREATE, unsafe.Pointer(&a), unsafe.Sizeof(a))
}

type bpfMapElemAttr struct {
	Fd    uint32
	_     uint32
	Key   uint64
	Value uint64
	Flags uint64
}

func bpfMapUpdate(m int, key, value unsafe.Pointer) error {
	a := bpfMapElemAttr{Fd: uint32(m), Key: uint64(uintptr(key)), Value: uint64(uintptr(value))}
	_, err := bpfCall(unix.BPF_MAP_UPDATE_ELEM, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return err
}

func bpfMapLookup(m int, key, value unsafe.Pointer) error {
	a := bpfMapElemAttr{Fd: uint32(m), Key: uint64(uintptr(key)), Value: uint64(uintptr(value))}
	_, err := bpfCall(unix.BPF_MAP_LOOKUP_ELEM, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return err
}

func bpfMapDelete(m int, key unsafe.Pointer) error {
	a := bpfMapElemAttr{Fd: uint32(m), Key: uint64(uintptr(key))}
	_, err := bpfCall(unix.BPF_MAP_DELETE_ELEM, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return err
}

type bpfBatchAttr struct {
	InBatch   uint64
	OutBatch  uint64
	Keys      uint64
	Values    uint64
	Count     uint32
	MapFd     uint32
	ElemFlags uint64
	Flags     uint64
}

// bpfArrayLookupBatch reads the first len(keys) elements of an array map
// into values (len(keys) of them, each size bytes) with one call.
func bpfArrayLookupBatch(m int, keys []uint32, values unsafe.Pointer) (int, error) {
	var out uint32
	a := bpfBatchAttr{OutBatch: uint64(uintptr(unsafe.Pointer(&out))), Keys: uint64(uintptr(unsafe.Pointer(&keys[0]))),
		Values: uint64(uintptr(values)), Count: uint32(len(keys)), MapFd: uint32(m)}
	_, err := bpfCall(unix.BPF_MAP_LOOKUP_BATCH, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err == unix.ENOENT { // the end of the map: Count says how many
		err = nil
	}
	return int(a.Count), err
}

type bpfProgLoadAttr struct {
	Type     uint32
	InsnCnt  uint32
	Insns    uint64
	License  uint64
	LogLevel uint32
	LogSize  uint32
	LogBuf   uint64
	KernVer  uint32
	Flags    uint32
	Name     [16]byte
	_        [64]byte
}

type bpfProgAttachAttr struct {
	Target, Prog, Type, Flags uint32
	_                         [32]byte
}

// bpfInsn is one instruction: opcode, registers, offset, immediate.
type bpfInsn [8]byte

func insn(code, dst, src uint8, off int16, imm int32) bpfInsn {
	var i bpfInsn
	i[0] = code
	i[1] = dst | src<<4
	binary.LittleEndian.PutUint16(i[2:], uint16(off))
	binary.LittleEndian.PutUint32(i[4:], uint32(imm))
	return i
}

// ldMap loads a map's file descriptor into dst (a two-slot instruction).
func ldMap(dst uint8, fd int) []bpfInsn {
	return []bpfInsn{insn(0x18, dst, 1, 0, int32(fd)), insn(0, 0, 0, 0, 0)}
}

// Opcodes and helpers the program uses.
const (
	opMov64Reg  = 0xbf // dst = src
	opMov64Imm  = 0xb7 // dst = imm
	opAdd64Imm  = 0x07 // dst += imm
	opAdd64Reg  = 0x0f // dst += src
	opLdxW      = 0x61 // dst = *(u32 *)(src + off)
	opLdxDW     = 0x79 // dst = *(u64 *)(src + off)
	opStxW      = 0x63 // *(u32 *)(dst + off) = src
	opStW       = 0x62 // *(u32 *)(dst + off) = imm
	opAtomicDW  = 0xdb // atomic op imm on *(u64 *)(dst + off) with src
	opJeqImm    = 0x15 // if dst == imm goto +off
	opJneImm    = 0x55 // if dst != imm goto +off
	opJgeReg    = 0x3d // if dst >= src goto +off (unsigned)
	opCall      = 0x85
	opExit      = 0x95
	atomicAdd   = 0x00
	fnLookup    = 1  // bpf_map_lookup_elem
	fnRedirect  = 52 // bpf_sk_redirect_map
	skPass      = 1
	skbLen      = 0   // offsetof(struct __sk_buff, len)
	skbRemoteIP = 92  // remote_ip4
	skbLocalIP  = 96  // local_ip4
	skbRemPort  = 132 // remote_port
	skbLocPort  = 136 // local_port
)

// verdictProgram is the kernel path's SK_SKB verdict program. For each
// packet a mapped socket receives it finds the socket's flow by the
// connection's addresses (peers), and sends the packet to the flow's
// target socket (socks) while the flow has credit: the bytes it may have
// in the kernel beyond what the target socket already took (grants,
// which the connector raises as they go out). A flow without credit is
// paused for good: it and everything after it stay on the receiving
// socket, where the connector's event loops read them (kaccel.go).
//
// flows[i] is {used u64, paused u32, target u32}, written by the program
// (target once by the connector before the flow is reachable);
// grants[i] is {granted u64}, written by the connector only.
func verdictProgram(peers, socks, flows, grants int) []bpfInsn {
	var p []bpfInsn
	add := func(i ...bpfInsn) { p = append(p, i...) }
	add(
		insn(opMov64Reg, 6, 1, 0, 0), // r6 = skb
		insn(opLdxW, 2, 6, skbRemoteIP, 0),
		insn(opStxW, 10, 2, -16, 0),
		insn(opLdxW, 2, 6, skbLocalIP, 0),
		insn(opStxW, 10, 2, -12, 0),
		insn(opLdxW, 2, 6, skbRemPort, 0),
		insn(opStxW, 10, 2, -8, 0),
		insn(opLdxW, 2, 6, skbLocPort, 0),
		insn(opStxW, 10, 2, -4, 0),
	)
	// lookup: r0 = the element of m keyed by the stack at off, or pass.
	lookup := func(m int, off int32) {
		add(ldMap(1, m)...)
		add(
			insn(opMov64Reg, 2, 10, 0, 0),
			insn(opAdd64Imm, 2, 0, 0, off),
			insn(opCall, 0, 0, 0, fnLookup),
			insn(opJeqImm, 0, 0, labelPass, 0),
		)
	}
	lookup(peers, -16) // no flow: pass
	add(
		insn(opLdxW, 2, 0, 0, 0), // flow index
		insn(opStxW, 10, 2, -20, 0),
	)
	lookup(flows, -20)
	add(
		insn(opMov64Reg, 7, 0, 0, 0),       // r7 = flow
		insn(opLdxW, 2, 7, 8, 0),           // paused
		insn(opJneImm, 2, 0, labelPass, 0), // paused: pass
	)
	lookup(grants, -20)
	add(
		insn(opLdxDW, 3, 0, 0, 0),            // r3 = granted
		insn(opLdxW, 8, 6, skbLen, 0),        // r8 = len
		insn(opLdxDW, 2, 7, 0, 0),            // r2 = used
		insn(opAdd64Reg, 2, 8, 0, 0),         // r2 = used + len
		insn(opJgeReg, 2, 3, labelPause, 0),  // no credit: pause
		insn(opAtomicDW, 7, 8, 0, atomicAdd), // used += len
		insn(opLdxW, 3, 7, 12, 0),            // r3 = target
		insn(opMov64Reg, 1, 6, 0, 0),
	)
	add(ldMap(2, socks)...)
	add(
		insn(opMov64Imm, 4, 0, 0, 0),
		insn(opCall, 0, 0, 0, fnRedirect),
		insn(opExit, 0, 0, 0, 0),
		// pause:
		insn(opStW, 7, 0, 8, 1),
		// pass:
		insn(opMov64Imm, 0, 0, 0, skPass),
		insn(opExit, 0, 0, 0, 0),
	)
	return resolveLabels(p)
}

// Jump targets are written as labels and resolved once the program is
// laid out: labelPass is the last two instructions, labelPause the three
// before the end.
const (
	labelPass  = -1000
	labelPause = -2000
)

func resolveLabels(p []bpfInsn) []bpfInsn {
	pass, pause := len(p)-2, len(p)-3
	for i := range p {
		off := int16(binary.LittleEndian.Uint16(p[i][2:]))
		code := p[i][0]
		if code&0x07 != 0x05 || code == opCall || code == opExit { // not a jump
			continue
		}
		switch off {
		case labelPass:
			binary.LittleEndian.PutUint16(p[i][2:], uint16(int16(pass-i-1)))
		case labelPause:
			binary.LittleEndian.PutUint16(p[i][2:], uint16(int16(pause-i-1)))
		}
	}
	return p
}

// bpfLoadVerdict loads prog as an SK_SKB program; the verifier's log
// explains a refusal.
func bpfLoadVerdict(prog []bpfInsn) (int, error) {
	lic := []byte("GPL\x00")
	logBuf := make([]byte, 1<<16)
	a := bpfProgLoadAttr{Type: unix.BPF_PROG_TYPE_SK_SKB, InsnCnt: uint32(len(prog)), Insns: uint64(uintptr(unsafe.Pointer(&prog[0]))),
		License: uint64(uintptr(unsafe.Pointer(&lic[0]))), LogLevel: 1, LogSize: uint32(len(logBuf)), LogBuf: uint64(uintptr(unsafe.Pointer(&logBuf[0])))}
	copy(a.Name[:], "carbide_verdict")
	fd, err := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		log := strings.TrimRight(string(logBuf[:clen(logBuf)]), "\n")
		if i := strings.LastIndex(log, "\n"); i >= 0 {
			log = log[i+1:]
		}
		if log != "" {
			return -1, fmt.Errorf("%w (verifier: %s)", err, log)
		}
		return -1, err
	}
	return fd, nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

func bpfAttachVerdict(mapFD, prog int) error {
	a := bpfProgAttachAttr{Target: uint32(mapFD), Prog: uint32(prog), Type: unix.BPF_SK_SKB_VERDICT}
	_, err := bpfCall(unix.BPF_PROG_ATTACH, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return err
}
