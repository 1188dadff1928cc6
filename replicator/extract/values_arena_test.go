package extract

import (
	"testing"
	"unsafe"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A value handed out keeps its arena chunk alive: the values after a large
// one come from new chunks, so a 64 MB blob is not kept by the rows that
// follow it (nor are small values kept past sharedArena bytes).
func TestArenaChunksDoNotHoldLargeValues(t *testing.T) {
	ti := &tableInfo{schema: "app", table: "t", columns: []*thlpb.Column{{Name: "b"}}, kinds: []kind{kBytes}, arg: []int{0}}
	var a arena
	convert := func(n int) *thlpb.Value {
		a.fresh(n)
		img, _, err := a.convert(ti, []any{string(make([]byte, n))})
		if err != nil {
			t.Fatal(err)
		}
		a.fresh(0)
		return img[0]
	}
	adjacent := func(x, y *thlpb.Value) bool {
		return uintptr(unsafe.Pointer(y))-uintptr(unsafe.Pointer(x)) == unsafe.Sizeof(thlpb.Value{})
	}
	small := convert(10)
	big := convert(1 << 20)
	after := convert(10)
	if adjacent(small, big) || adjacent(big, after) {
		t.Fatal("a large value shares its chunk with the values around it")
	}
	prev, shared := convert(100), 100
	for range 10_000 {
		v := convert(100)
		if adjacent(prev, v) {
			if shared += 100; shared > 256<<10 {
				t.Fatal("small values share chunks past sharedArena bytes")
			}
		} else {
			shared = 100
		}
		prev = v
	}
}
