package suite

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// scope stands in for testing.TB outside `go test`, so netio/peertest's
// helpers (which take a testing.TB) run in the benchmark binary. Fatal and
// Skip abort the calling goroutine's scenario through a panic that run
// recovers; cleanups run in reverse order when the scope closes. Only the
// goroutine that called run may use it, like a test's TB.
type scope struct {
	testing.TB // nil: only to satisfy the interface's unexported method
	name       string
	dir        string
	log        io.Writer
	mu         sync.Mutex
	cleanups   []func()
	nTemp      int
	failed     bool
	skipped    bool
}

// abort is the panic value of Fatal and Skip.
type abort struct {
	skip bool
	msg  string
}

func newScope(name, dir string, log io.Writer) *scope {
	return &scope{name: name, dir: dir, log: log}
}

// run calls f, turning Fatal/Skip into a returned error (skip reports
// whether it was a skip), and then runs the cleanups.
func (s *scope) run(f func(tb *scope)) (skip bool, err error) {
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(abort)
			if !ok {
				panic(r)
			}
			skip, err = a.skip, fmt.Errorf("%s", a.msg)
		}
	}()
	f(s)
	return false, nil
}

func (s *scope) close() {
	s.mu.Lock()
	cs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (s *scope) Cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *scope) Helper()           {}
func (s *scope) Name() string      { return s.name }
func (s *scope) Failed() bool      { return s.failed }
func (s *scope) Skipped() bool     { return s.skipped }
func (s *scope) Log(a ...any)      { fmt.Fprintln(s.log, a...) }
func (s *scope) Error(a ...any)    { s.failed = true; s.Log(a...) }
func (s *scope) Fail()             { s.failed = true }
func (s *scope) Output() io.Writer { return s.log }
func (s *scope) Context() context.Context {
	return context.Background()
}
func (s *scope) Logf(f string, a ...any) { fmt.Fprintf(s.log, strings.TrimSuffix(f, "\n")+"\n", a...) }
func (s *scope) Errorf(f string, a ...any) {
	s.failed = true
	s.Logf(f, a...)
}
func (s *scope) FailNow() { s.failed = true; panic(abort{msg: "failed"}) }
func (s *scope) Fatal(a ...any) {
	s.failed = true
	panic(abort{msg: strings.TrimSpace(fmt.Sprintln(a...))})
}
func (s *scope) Fatalf(f string, a ...any) { s.failed = true; panic(abort{msg: fmt.Sprintf(f, a...)}) }
func (s *scope) SkipNow()                  { s.skipped = true; panic(abort{skip: true, msg: "skipped"}) }
func (s *scope) Skip(a ...any) {
	s.skipped = true
	panic(abort{skip: true, msg: strings.TrimSpace(fmt.Sprintln(a...))})
}
func (s *scope) Skipf(f string, a ...any) {
	s.skipped = true
	panic(abort{skip: true, msg: fmt.Sprintf(f, a...)})
}
func (s *scope) Setenv(k, v string)  { os.Setenv(k, v) }
func (s *scope) Chdir(string)        { s.Fatal("suite: Chdir is not supported") }
func (s *scope) Attr(string, string) {}
func (s *scope) ArtifactDir() string { return s.TempDir() }

// TempDir makes a new folder under the scope's work folder; it is removed
// when the scope closes.
func (s *scope) TempDir() string {
	s.mu.Lock()
	s.nTemp++
	n := s.nTemp
	s.mu.Unlock()
	d, err := os.MkdirTemp(s.dir, fmt.Sprintf("%s-%03d-", strings.ReplaceAll(s.name, "/", "_"), n))
	if err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(d) })
	return d
}
