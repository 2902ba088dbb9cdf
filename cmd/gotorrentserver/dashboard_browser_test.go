package main

// The dashboard page (httpapi/web: index.html, app.js and its modules)
// driven in a real headless Chromium against the real daemon, which serves
// it, and a python3-libtorrent seed. The browser helpers (startChromium,
// run, eval, waitJS, pick) are in detail_browser_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

type css = chromedp.CSS

// rowJS is a JavaScript expression for the list row of ih.
func rowJS(ih metainfo.Hash) string {
	return fmt.Sprintf(`document.querySelector('.torrent-row[data-infohash="%s"]')`, ih)
}

// cellJS is the text of a row's cell (null without the row).
func cellJS(ih metainfo.Hash, cell string) string {
	return fmt.Sprintf(`(%s?.querySelector('.%s')?.textContent ?? null)`, rowJS(ih), cell)
}

// signIn opens the page, types token and submits the form.
func (b *browserTab) signIn(t *testing.T, api, token string) {
	t.Helper()
	b.run(t, "open the page", chromedp.Navigate(api+"/"), chromedp.WaitVisible(css("#token")))
	b.pick(t, "#token", token)
	b.run(t, "sign in", chromedp.Click(css("#login-submit")))
}

// TestDashboardInChromium: in the page the daemon serves, a wrong token is
// refused with the error shown and the right one shows the app; a torrent
// added by uploading its file downloads from a python3-libtorrent seed and
// its row turns "seeding", "100.0%" from /events with no reload (a mark
// set on the window before stays); the toolbar stops and starts it,
// labels it (the label filter then lists it) and removes it with its data;
// sign-out ends the session. Each step is checked in the daemon too, and
// the console has no exception and no CSP refusal.
func TestDashboardInChromium(t *testing.T) {
	peertest.Require(t, "libtorrent", "chromium")
	const size = 3 << 20
	src := t.TempDir()
	raw, mi := makeFolderTorrent(t, src, "ui-payload", nil, fileSpec{"data.bin", size})
	tfile := filepath.Join(t.TempDir(), "ui-payload.torrent")
	if err := os.WriteFile(tfile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// Capped, so the download lasts a moment and progress flows.
	seed := peertest.Libtorrent(t, "--torrent", tfile, "--dir", src, "--keep", "--upload-limit", fmt.Sprint(2<<20))
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()
	d := startServe(t, t.TempDir(), downloads, freePort(t))
	b := startChromium(t)
	ih := mi.InfoHash

	b.signIn(t, d.api, "not-the-token")
	b.waitJS(t, "wrong token refused", `document.getElementById('login-error').textContent !== ''`,
		`document.getElementById('login-error').textContent`, 15*time.Second)
	var appHidden bool
	b.eval(t, `document.getElementById('app').hidden`, &appHidden)
	if !appHidden {
		t.Fatal("the app shows after a wrong token")
	}
	b.pick(t, "#token", d.token)
	b.run(t, "sign in", chromedp.Click(css("#login-submit")))
	b.waitJS(t, "signed in, list ready", `document.body.dataset.ready === '1' && !document.getElementById('app').hidden`,
		`[document.body.dataset.ready, document.getElementById('login-error').textContent]`, 20*time.Second)
	b.eval(t, `window.gtsNoReload = 1`, nil)

	// Add by upload, stopped first, so the row shows before any peer.
	b.run(t, "open the add dialog", chromedp.Click(css("#add-open")), chromedp.WaitVisible(css("#add-dialog")),
		chromedp.SetUploadFiles(css("#add-file"), []string{tfile}))
	b.eval(t, `document.getElementById('add-start').checked = true`, nil)
	b.run(t, "add", chromedp.Click(css("#add-submit")))
	b.waitJS(t, "added", `document.getElementById('add-status').textContent.startsWith('Added ui-payload.torrent')`,
		`document.getElementById('add-status').textContent`, 20*time.Second)
	b.run(t, "close the dialog", chromedp.Click(css("#add-dialog .cancel")), chromedp.WaitNotVisible(css("#add-dialog")))
	b.waitJS(t, "the row", rowJS(ih), `document.getElementById('list-count').textContent`, 20*time.Second)

	d.mustGet(t, fmt.Sprintf("/addpeer?infohash=%s&host=127.0.0.1:%d", ih, seed.Port))
	b.waitJS(t, "seeding at 100.0% without reload",
		cellJS(ih, "t-state")+` === 'seeding' && `+cellJS(ih, "t-progress")+` === '100.0%' && window.gtsNoReload === 1`,
		`[`+cellJS(ih, "t-state")+`, `+cellJS(ih, "t-progress")+`, window.gtsNoReload]`, 90*time.Second)
	want, _ := os.ReadFile(filepath.Join(src, "ui-payload", "data.bin"))
	got, _ := os.ReadFile(filepath.Join(downloads, "ui-payload", "data.bin"))
	if !bytes.Equal(got, want) {
		t.Fatalf("the bytes on disk (%d) differ from the seed's (%d)", len(got), len(want))
	}

	// Select it and use the toolbar.
	b.run(t, "select the row", chromedp.Click(css(`.torrent-row[data-infohash="`+ih.String()+`"] .t-name`)))
	b.waitJS(t, "selected", rowJS(ih)+`.classList.contains('selected')`, `document.getElementById('sel-count').textContent`, 10*time.Second)
	b.run(t, "stop", chromedp.Click(css("#act-stop")))
	b.waitJS(t, "stopped in the list", cellJS(ih, "t-state")+` === 'stopped'`, cellJS(ih, "t-state"), 20*time.Second)
	if c := d.control(t, ih); c.State != "stopped" {
		t.Fatalf("the daemon says %q after Stop", c.State)
	}
	b.run(t, "start", chromedp.Click(css("#act-start")))
	b.waitJS(t, "seeding again", cellJS(ih, "t-state")+` === 'seeding'`, cellJS(ih, "t-state"), 30*time.Second)
	d.waitSeeding(t, ih)

	b.run(t, "label dialog", chromedp.Click(css("#act-label")), chromedp.WaitVisible(css("#label-dialog")))
	b.pick(t, "#label-input", "linux-isos")
	b.run(t, "set the label", chromedp.Click(css("#label-ok")))
	b.waitJS(t, "labelled", cellJS(ih, "t-label")+` === 'linux-isos'`, cellJS(ih, "t-label"), 20*time.Second)
	if c := d.control(t, ih); c.Label != "linux-isos" {
		t.Fatalf("the daemon's label is %q", c.Label)
	}
	b.waitJS(t, "the label filter offers it", `[...document.getElementById('filter-label').options].some(o => o.value === 'linux-isos')`,
		`[...document.getElementById('filter-label').options].map(o => o.value)`, 10*time.Second)
	b.pick(t, "#filter-label", "linux-isos")
	b.waitJS(t, "filtered by label", `document.getElementById('list-count').textContent === '1 of 1 torrents'`,
		`document.getElementById('list-count').textContent`, 10*time.Second)
	b.pick(t, "#filter-state", "stopped")
	b.waitJS(t, "filtered by state", `document.getElementById('list-count').textContent === '0 of 1 torrents' && !`+rowJS(ih),
		`document.getElementById('list-count').textContent`, 10*time.Second)
	b.pick(t, "#filter-state", "")
	b.pick(t, "#filter-label", "")

	b.run(t, "remove dialog", chromedp.Click(css("#act-remove")), chromedp.WaitVisible(css("#remove-dialog")),
		chromedp.Click(css("#remove-data")), chromedp.Click(css("#remove-ok")))
	b.waitJS(t, "removed from the list", `!`+rowJS(ih)+` && document.getElementById('list-count').textContent === '0 of 0 torrents'`,
		`document.getElementById('list-count').textContent`, 20*time.Second)
	if _, code := d.info(ih); code != 404 {
		t.Fatalf("/torrentdata after remove: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(downloads, "ui-payload")); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the data is still on disk after remove with data: %v", dirNames(t, downloads))
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.run(t, "sign out", chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#token")))
	var status int
	ctxStatus := `(async () => (await fetch('/alldata', {credentials: 'same-origin'})).status)()`
	b.evalAwait(t, ctxStatus, &status)
	if status != 401 {
		t.Fatalf("/alldata after sign-out answers %d, want 401", status)
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// evalAwait evaluates expr, a promise, and decodes what it resolves to.
func (b *browserTab) evalAwait(t *testing.T, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v\nconsole:\n%s", expr, err, b.console())
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("evaluate %s: %v: %s", expr, err, raw)
	}
}
