package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
)

// profileEnv names a directory: when set, each measured phase that runs in
// this process (the extractor filling the THL, each Carbide applier) writes
// NAME.cpu.pprof and NAME.heap0.pprof/NAME.heap1.pprof there (the heap
// profiles before and after the phase: `go tool pprof -sample_index
// alloc_space -base NAME.heap0.pprof NAME.heap1.pprof` shows what the phase
// allocated).
const profileEnv = "CARBIDE_BENCH_PROFILE_DIR"

// startProfile starts the profiles of phase name when profileEnv is set; the
// returned function stops them (call it when the phase's work is done).
func startProfile(b *testing.B, name string) (stop func()) {
	b.Helper()
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	writeHeap := func(suffix string) {
		runtime.GC()
		f, err := os.Create(filepath.Join(dir, name+suffix))
		if err != nil {
			b.Error(err)
			return
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Error(err)
		}
	}
	writeHeap(".heap0.pprof")
	f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeHeap(".heap1.pprof")
	}
}
