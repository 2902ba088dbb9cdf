package main

// A Chrome trace of the dashboard's live window, for BenchmarkDashboard10k:
// each long task of the page's main thread with its wall time, the CPU
// time the thread actually got (tdur), and what it spent on script,
// style, layout and paint. A task whose wall time is far above its CPU
// time waited for a core (the daemon, the benchmark and the browser's
// other processes share two), which no page change can fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// pageTrace collects trace events between start and stop. Its events are
// appended by chromedp's listener goroutine, read after stop: mu guards
// them.
type pageTrace struct {
	mu     sync.Mutex
	chunks [][]byte
	done   chan struct{}
}

func startPageTrace(tb testing.TB, ctx context.Context) *pageTrace {
	tb.Helper()
	tr := &pageTrace{done: make(chan struct{})}
	var once sync.Once
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			tr.mu.Lock()
			for _, v := range e.Value {
				tr.chunks = append(tr.chunks, slices.Clone([]byte(v)))
			}
			tr.mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(tr.done) })
		}
	}); err != nil {
		tb.Fatalf("trace listen: %v", err)
	}
	_, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReportEvents,
		TraceConfig: &tracing.TraceConfig{IncludedCategories: []string{
			"toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink"}},
	})
	if err != nil {
		tb.Fatalf("trace start: %v", err)
	}
	return tr
}

// traceEvent is the part of a Chrome trace event we read; times in µs.
type traceEvent struct {
	Name string  `json:"name"`
	Ph   string  `json:"ph"`
	Pid  int     `json:"pid"`
	Tid  int     `json:"tid"`
	Ts   float64 `json:"ts"`
	Dur  float64 `json:"dur"`
	Tdur float64 `json:"tdur"`
	Args struct {
		Name         string `json:"name"`
		ElementCount int    `json:"elementCount"` // UpdateLayoutTree
		BeginData    struct {
			DirtyObjects int `json:"dirtyObjects"` // Layout
			TotalObjects int `json:"totalObjects"`
		} `json:"beginData"`
	} `json:"args"`
}

// longTask is a long main-thread task of the page, in ms (the parts are
// wall times too: a part may have waited for a core), with how many
// elements its style recalcs touched and its layouts found dirty.
type longTask struct {
	Wall, CPU, Script, Style, Layout, Paint float64
	Styled, LaidOut                         int
}

func (l longTask) String() string {
	return fmt.Sprintf("wall %.0f ms, cpu %.0f ms (script %.0f, style %.0f for %d elements, layout %.0f for %d objects, paint %.0f)",
		l.Wall, l.CPU, l.Script, l.Style, l.Styled, l.Layout, l.LaidOut, l.Paint)
}

// kinds says what a trace event's time counts as.
var kinds = map[string]int{
	"FunctionCall": 1, "EvaluateScript": 1, "FireAnimationFrame": 1, "TimerFire": 1, "EventDispatch": 1,
	"RunMicrotasks": 1, "v8.run": 1, "V8.Execute": 1,
	"UpdateLayoutTree": 2, "RecalculateStyles": 2,
	"Layout": 3,
	"Paint":  4, "PrePaint": 4, "Layerize": 4, "UpdateLayer": 4, "CompositeLayers": 4, "Commit": 4,
}

// threadLoad is what the page's main thread ran in the whole trace, in ms
// of its own CPU time: robust to the machine's other load, unlike wall
// times.
type threadLoad struct {
	CPU      float64 // all tasks
	Tasks    int
	Over16   int     // tasks over 16 ms of CPU (a 60 Hz frame)
	Longest  float64 // the longest task's CPU
	Rendered float64 // CPU of style, layout and paint (thread time)
}

func (l threadLoad) String() string {
	return fmt.Sprintf("%.0f ms CPU in %d tasks (style+layout+paint %.0f ms), %d over 16 ms of CPU, longest %.0f ms",
		l.CPU, l.Tasks, l.Rendered, l.Over16, l.Longest)
}

// stop ends the trace and answers the page main thread's tasks over
// 50 ms wall time and its load over the whole trace.
func (tr *pageTrace) stop(tb testing.TB, ctx context.Context) ([]longTask, threadLoad) {
	tb.Helper()
	if _, err := chromedp.Call(ctx, tracing.End, struct{}{}); err != nil {
		tb.Fatalf("trace end: %v", err)
	}
	select {
	case <-tr.done:
	case <-time.After(60 * time.Second):
		tb.Fatal("trace: not complete within 60 s")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	type thread struct{ pid, tid int }
	mains := map[thread]bool{}
	var evs []traceEvent
	for _, c := range tr.chunks {
		var e traceEvent
		if json.Unmarshal(c, &e) != nil {
			continue
		}
		if e.Ph == "M" && e.Name == "thread_name" && e.Args.Name == "CrRendererMain" {
			mains[thread{e.Pid, e.Tid}] = true
		}
		if e.Ph == "X" {
			evs = append(evs, e)
		}
	}
	slices.SortFunc(evs, func(a, b traceEvent) int {
		if a.Ts != b.Ts {
			if a.Ts < b.Ts {
				return -1
			}
			return 1
		}
		return int(b.Dur - a.Dur) // outer first
	})
	var out []longTask
	var load threadLoad
	var taskEnd, renderEnd float64
	var cur *longTask
	var curEnd float64
	// The end of the last counted event of each kind in the current task,
	// so that nested events of one kind count once.
	var kindEnd [5]float64
	for _, e := range evs {
		if !mains[thread{e.Pid, e.Tid}] {
			continue
		}
		if k := kinds[e.Name]; k >= 2 && e.Ts >= renderEnd {
			load.Rendered += e.Tdur / 1000
			renderEnd = e.Ts + e.Dur
		}
		if e.Name == "RunTask" || e.Name == "ThreadControllerImpl::RunTask" {
			if e.Ts < taskEnd {
				continue // nested in the task we are in
			}
			taskEnd = e.Ts + e.Dur
			load.CPU += e.Tdur / 1000
			load.Tasks++
			load.Longest = max(load.Longest, e.Tdur/1000)
			if e.Tdur > 16_000 {
				load.Over16++
			}
			cur = nil
			if e.Dur > 50_000 {
				out = append(out, longTask{Wall: e.Dur / 1000, CPU: e.Tdur / 1000})
				cur = &out[len(out)-1]
				curEnd = e.Ts + e.Dur
				kindEnd = [5]float64{}
			}
			continue
		}
		k := kinds[e.Name]
		if cur == nil || k == 0 || e.Ts >= curEnd || e.Ts < kindEnd[k] {
			continue
		}
		kindEnd[k] = e.Ts + e.Dur
		cur.Styled += e.Args.ElementCount
		cur.LaidOut += e.Args.BeginData.DirtyObjects
		ms := e.Dur / 1000
		switch k {
		case 1:
			cur.Script += ms
		case 2:
			cur.Style += ms
		case 3:
			cur.Layout += ms
		case 4:
			cur.Paint += ms
		}
	}
	return out, load
}
