package main

// The detail pane (httpapi/web/detail.js) driven in a real headless
// Chromium against the real daemon and a python3-libtorrent seed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gotorrentserver/netio/peertest"
)

// browserTab is a headless Chromium tab; its console is collected so a
// test can fail on exceptions and CSP refusals.
type browserTab struct {
	ctx context.Context
	mu  sync.Mutex
	msg []chromedp.ConsoleMessage
}

// startChromium launches Debian's chromium headless with a throwaway
// profile, or skips loudly when it is not installed.
func startChromium(t *testing.T) *browserTab {
	t.Helper()
	peertest.Require(t, "chromium")
	bin, _ := exec.LookPath("chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browserTab{ctx: ctx}
	// The first Run starts the browser; Console needs the target.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msg = append(b.msg, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// problems is the console's exceptions and security (CSP) refusals.
func (b *browserTab) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msg {
		if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

func (b *browserTab) console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s []string
	for _, m := range b.msg {
		s = append(s, m.String())
	}
	return strings.Join(s, "\n")
}

// run runs actions with a generous bound, failing the test on error.
func (b *browserTab) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\nconsole:\n%s", what, err, b.console())
	}
}

// eval evaluates expr in the page and decodes its value into out.
func (b *browserTab) eval(t *testing.T, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v\nconsole:\n%s", expr, err, b.console())
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("evaluate %s: %v: %s", expr, err, raw)
		}
	}
}

// waitJS polls the page until expr is true, failing with what's value of
// show when the deadline passes.
func (b *browserTab) waitJS(t *testing.T, what, expr, show string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		b.eval(t, "!!("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var got any
			b.eval(t, show, &got)
			t.Fatalf("%s: not within %v; %s = %v\nconsole:\n%s", what, timeout, show, got, b.console())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pick sets a field's value and fires input and change, as typing into it
// or choosing an option does.
func (b *browserTab) pick(t *testing.T, sel, value string) {
	t.Helper()
	b.eval(t, fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q;
		s.dispatchEvent(new Event('input', {bubbles: true}));
		s.dispatchEvent(new Event('change', {bubbles: true})); return s.value; })()`, sel, value), nil)
}

// TestDetailPaneInChromium: a torrent of a.bin, sub/b.bin and sub/c.bin,
// added stopped, selected on the dashboard after signing in. In the detail
// pane the folder's "set all" makes sub's files
// High, then b.bin is set to Skip; the daemon keeps both. Started, it
// downloads from a python3-libtorrent seed found through opentracker: the
// peers tab lists the seed, the trackers tab the tracker, the piece map
// shows pieces had and (b.bin's) missing, and b.bin never appears on disk
// while a.bin and c.bin match the seed's. Limits, ratio, seed time, label
// and sequential saved in the pane reach the daemon, and a move from the
// pane moves the files. The page runs under the daemon's CSP: a console
// exception or CSP refusal fails the test.
func TestDetailPaneInChromium(t *testing.T) {
	peertest.Require(t, "libtorrent", "opentracker", "chromium")
	files := []fileSpec{{"a.bin", 700000}, {"sub/b.bin", 500000}, {"sub/c.bin", 1500000}}
	srcParent := t.TempDir()
	if err := os.MkdirAll(filepath.Join(srcParent, "tree", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, probe := makeFolderTorrent(t, srcParent, "tree", nil, files...)
	tr := peertest.Opentracker(t, probe.InfoHash)
	raw, mi := makeFolderTorrent(t, srcParent, "tree", []string{tr.HTTPURL}, files...)
	// Capped so the download lasts some seconds: the peers tab is looked
	// at while the seed is a peer.
	seed := peertest.Libtorrent(t, "--torrent", writeTorrentFile(t, raw), "--dir", srcParent, "--keep",
		"--upload-limit", fmt.Sprint(192<<10))
	if _, err := seed.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	stateDir, downloads := t.TempDir(), t.TempDir()
	// The API shows folders with symlinks resolved.
	downloads, _ = filepath.EvalSymlinks(downloads)
	d := startServe(t, stateDir, downloads, freePort(t))
	ih := mi.InfoHash.String()
	d.addTorrent(t, "path=dl&start=false", raw, mi.InfoHash)

	// Sign in on the dashboard as an operator does, and select the torrent.
	b := startChromium(t)
	b.signIn(t, d.api, d.token)
	row := fmt.Sprintf(`.torrent-row[data-infohash=%q]`, ih)
	b.waitJS(t, "the list", `document.body.dataset.ready === '1' && document.querySelector('`+row+`')`,
		`[document.body.dataset.ready, document.querySelector('#login-error') && document.querySelector('#login-error').textContent]`, 30*time.Second)
	// Toasts fade: keep every one the page shows.
	b.eval(t, `(() => { window.toastLog = []; new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes)
		window.toastLog.push({text: n.textContent, error: n.classList.contains('error')}); })
		.observe(document.getElementById('toasts'), {childList: true}); return true; })()`, nil)
	b.run(t, "select the torrent", chromedp.Click(row))
	b.waitJS(t, "the files tree", `document.querySelectorAll('#detail .file-row').length === 3`,
		`document.querySelector('#detail') && document.querySelector('#detail').innerHTML.slice(0, 2000)`, 30*time.Second)

	// The tree: sub/ is a folder row over b.bin and c.bin.
	var tree struct {
		Files []string `json:"files"`
		Dirs  []string `json:"dirs"`
		Under []string `json:"under"`
		State string   `json:"state"`
	}
	b.eval(t, `({
		files: [...document.querySelectorAll('.file-row')].map(r => r.dataset.index + ':' + r.querySelector('.f-name').textContent),
		dirs: [...document.querySelectorAll('.dir-row .f-name')].map(e => e.textContent),
		under: [...document.querySelector('.dir-row').nextElementSibling.querySelectorAll('.file-row')].map(r => r.dataset.index),
		state: document.querySelector('#detail-head .d-state').textContent,
	})`, &tree)
	// Folders first, as file managers list them.
	if !slices.Equal(tree.Files, []string{"1:b.bin", "2:c.bin", "0:a.bin"}) || !slices.Equal(tree.Dirs, []string{"sub/"}) ||
		!slices.Equal(tree.Under, []string{"1", "2"}) || tree.State != "stopped" {
		t.Fatalf("files tree: %+v", tree)
	}
	// The folder collapses and opens again.
	b.run(t, "collapse sub/", chromedp.Click(".dir-row .dir-toggle"))
	b.waitJS(t, "sub/ collapsed", `document.querySelector('.dir-children').hidden && document.querySelector('.file-row[data-index="1"]').offsetParent === null`,
		`document.querySelector('.dir-children').hidden`, 5*time.Second)
	b.run(t, "open sub/", chromedp.Click(".dir-row .dir-toggle"))
	b.waitJS(t, "sub/ open", `document.querySelector('.file-row[data-index="1"]').offsetParent !== null`, `document.querySelector('.dir-children').hidden`, 5*time.Second)

	prio := func() []int {
		_, p := d.files(t, mi.InfoHash)
		return p
	}
	waitPrio := func(what string, want []int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !slices.Equal(prio(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: priorities %v, want %v\nconsole:\n%s", what, prio(), want, b.console())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	b.pick(t, ".dir-row select.dir-priority", "2")
	waitPrio("sub/ set to High", []int{1, 2, 2})
	b.pick(t, `.file-row[data-index="1"] select.file-priority`, "0")
	waitPrio("b.bin set to Skip", []int{1, 0, 2})
	// The pane follows: the folder is mixed, b.bin shows Skip.
	b.waitJS(t, "the pane shows the priorities", `document.querySelector('.dir-row select').value === '' &&
		document.querySelector('.file-row[data-index="1"] select').value === '0' &&
		document.querySelector('.file-row[data-index="1"]').classList.contains('skipped')`,
		`[...document.querySelectorAll('#detail select')].map(s => s.value)`, 10*time.Second)

	d.mustGet(t, "/starttorrent?infohash="+ih)

	// Peers: the seed, by its listening port, with its client, 100% and
	// the flags O (we dialed it, from the tracker's list) and S (seed).
	b.run(t, "peers tab", chromedp.Click(`[data-tab="peers"]`))
	seedHost := fmt.Sprintf("127.0.0.1:%d", seed.Port)
	seedRow := fmt.Sprintf(`[...document.querySelectorAll('.peer-row')].find(r => r.querySelector('.c-host').textContent === %q)`, seedHost)
	b.waitJS(t, "the seed in the peers tab", `(r => r && r.offsetParent !== null && r.querySelector('.c-client').textContent !== '' &&
		r.querySelector('.c-progress').textContent === '100.0%' && /O/.test(r.querySelector('.c-flags').textContent) &&
		/S/.test(r.querySelector('.c-flags').textContent))(`+seedRow+`)`,
		`[...document.querySelectorAll('.peer-row')].map(r => r.textContent)`, 30*time.Second)
	// Updates rewrite the row's figures in place: the same element shows
	// the bytes downloaded growing.
	b.eval(t, `(r => { window.seedRow = r; window.seedGot = r.querySelector('.c-downloaded').textContent; return true; })(`+seedRow+`)`, nil)
	b.waitJS(t, "the seed's row updated in place", `document.contains(window.seedRow) &&
		window.seedRow.querySelector('.c-downloaded').textContent !== window.seedGot`,
		`[document.contains(window.seedRow), window.seedGot, window.seedRow.textContent]`, 30*time.Second)

	// Pieces: while downloading, the map has columns of pieces had.
	b.run(t, "pieces tab", chromedp.Click(`[data-tab="pieces"]`))
	const pixels = `(() => { const c = document.getElementById('piece-map');
		if (!c.width || !c.height) return {have: 0, missing: 0, width: 0};
		const d = c.getContext('2d').getImageData(0, 0, c.width, 1).data; let have = 0, missing = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i] === 46 && d[i+1] === 160 && d[i+2] === 67) have++;
			else if (d[i] === 225 && d[i+1] === 228 && d[i+2] === 232) missing++;
		}
		return {have, missing, width: c.width}; })()`
	b.waitJS(t, "pieces on the map", pixels+`.have > 0`, pixels, 30*time.Second)

	d.waitFor(t, mi.InfoHash, "seeding", 90*time.Second, func(td torrentJSON) bool { return td.State == "seeding" })
	dl := filepath.Join(downloads, "dl", "tree")
	same := func(dir, name string) {
		t.Helper()
		want, _ := os.ReadFile(filepath.Join(srcParent, "tree", name))
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(want, got) {
			t.Fatalf("%s in %s differs from the seed's: %v", name, dir, err)
		}
	}
	same(dl, "a.bin")
	same(dl, "sub/c.bin")
	if _, err := os.Stat(filepath.Join(dl, "sub", "b.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the skipped b.bin exists: %v", err)
	}
	// Complete but for b.bin: the map shows both, the header says seeding.
	b.waitJS(t, "the map of a torrent complete but for b.bin", `(() => { const p = `+pixels+`;
		return p.have > 0 && p.missing > 0 && p.have + p.missing === p.width; })() &&
		document.querySelector('#detail-head .d-state').textContent === 'seeding'`, pixels, 15*time.Second)

	// Trackers: opentracker's announce URL, answered without error.
	b.run(t, "trackers tab", chromedp.Click(`[data-tab="trackers"]`))
	b.waitJS(t, "the tracker in the trackers tab", fmt.Sprintf(`[...document.querySelectorAll('.tracker-row')].some(r =>
		r.querySelector('.c-url').textContent === %q && r.querySelector('.c-status').textContent !== '' &&
		r.querySelector('.c-error').textContent === '' && r.offsetParent !== null)`, tr.HTTPURL),
		`[...document.querySelectorAll('.tracker-row, .webseed-row')].map(r => r.textContent)`, 30*time.Second)
	var noSeeds bool
	b.eval(t, `document.querySelectorAll('.webseed-row').length === 0`, &noSeeds)
	if !noSeeds {
		t.Fatal("web seed rows for a torrent without web seeds")
	}

	// Settings: typed values and the selects' global/none/value.
	b.run(t, "settings tab", chromedp.Click(`[data-tab="settings"]`))
	b.pick(t, "#detail-maxdown", "300")
	b.pick(t, "#detail-maxup", "40")
	b.pick(t, "#detail-ratio", "2.5") // typing a number selects "value"
	b.pick(t, "#detail-seedtime-mode", "none")
	b.pick(t, "#detail-label", "linux isos")
	b.run(t, "save the settings", chromedp.Click("#detail-sequential"), chromedp.Click("#detail-save"))
	var c struct {
		MaxDown       int64   `json:"maxdown"`
		MaxUp         int64   `json:"maxup"`
		RatioLimit    float64 `json:"ratio_limit"`
		SeedTimeLimit int64   `json:"seed_time_limit"`
		Label         string  `json:"label"`
		Sequential    bool    `json:"sequential"`
		Path          string  `json:"path"`
		State         string  `json:"state"`
	}
	read := func() {
		body, code := d.get("/torrentdata?infohash=" + ih)
		if code != 200 || json.Unmarshal(body, &c) != nil {
			t.Fatalf("/torrentdata: %d %s", code, body)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for read(); c.MaxDown != 300 || c.MaxUp != 40 || c.RatioLimit != 2.5 || c.SeedTimeLimit != 0 || c.Label != "linux isos" || !c.Sequential; read() {
		if time.Now().After(deadline) {
			t.Fatalf("settings saved in the pane: %+v\nconsole:\n%s", c, b.console())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.waitJS(t, "saved", `document.getElementById('detail-save-status').textContent === 'Saved.'`,
		`document.getElementById('detail-save-status').textContent`, 10*time.Second)
	// Back to the global ratio limit: the select alone.
	b.pick(t, "#detail-ratio-mode", "global")
	b.run(t, "ratio back to global", chromedp.Click("#detail-save"))
	deadline = time.Now().Add(20 * time.Second)
	for read(); c.RatioLimit != -1; read() {
		if time.Now().After(deadline) {
			t.Fatalf("ratio limit back to global: %+v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Move: the files follow, the pane reports where.
	b.pick(t, "#detail-move-path", "moved")
	b.run(t, "move", chromedp.Click("#detail-move"))
	moved := filepath.Join(downloads, "moved", "tree")
	deadline = time.Now().Add(30 * time.Second)
	for read(); c.Path != filepath.Join(downloads, "moved") || c.State != "seeding"; read() {
		if time.Now().After(deadline) {
			t.Fatalf("move from the pane: %+v\nconsole:\n%s", c, b.console())
		}
		time.Sleep(50 * time.Millisecond)
	}
	same(moved, "a.bin")
	same(moved, "sub/c.bin")
	if _, err := os.Stat(filepath.Join(dl, "a.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a.bin still in the old folder: %v", err)
	}
	b.waitJS(t, "the pane reports the move", `document.getElementById('detail-move-status').textContent.startsWith('Moved to ') &&
		document.querySelector('#detail-head .d-path').textContent.endsWith('/moved')`,
		`[document.getElementById('detail-move-status').textContent, document.querySelector('#detail-head .d-path').textContent]`, 15*time.Second)

	var toasts []struct {
		Text  string `json:"text"`
		Error bool   `json:"error"`
	}
	b.eval(t, `window.toastLog`, &toasts)
	for _, m := range toasts {
		if m.Error {
			t.Fatalf("the page reported errors: %+v", toasts)
		}
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("console exceptions or CSP refusals:\n%s", strings.Join(p, "\n"))
	}
}
