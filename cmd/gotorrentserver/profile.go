package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
)

// profileFlags let any run of get or serve write CPU and heap profiles, so
// the benchmark scenarios can choose the next optimisation from data.
type profileFlags struct {
	cpu, mem string
	heapOnce sync.Once
}

func (f *profileFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.cpu, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&f.mem, "memprofile", "", "write a heap profile to this file when the run ends (serve: when told to stop, before peers are closed)")
}

// start begins CPU profiling; the returned stop ends it and writes the heap
// profile if writeHeap has not. Errors only cost the profile, never the run.
func (f *profileFlags) start() (stop func()) {
	var cpu *os.File
	if f.cpu != "" {
		if file, err := os.Create(f.cpu); err == nil && pprof.StartCPUProfile(file) == nil {
			cpu = file
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		f.writeHeap()
	}
}

// writeHeap writes the heap profile once. serve calls it on the stop
// signal: after shutdown the heap no longer holds the connections and
// sessions whose memory the profile is for.
func (f *profileFlags) writeHeap() {
	f.heapOnce.Do(func() {
		if f.mem == "" {
			return
		}
		if file, err := os.Create(f.mem); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(file)
			file.Close()
		}
	})
}
