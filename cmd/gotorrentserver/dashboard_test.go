package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The daemon serves the dashboard's page without the token, signs a
// browser in with it, and shows its own log lines on GET /logs.
func TestServeDashboardAndLogs(t *testing.T) {
	d := startServe(t, t.TempDir(), t.TempDir(), freePort(t))

	res, err := http.Get(d.api + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), `id="login"`) || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /: %d %v %.200s", res.StatusCode, res.Header, page)
	}

	res, err = http.Post(d.api+"/login", "application/json", strings.NewReader(`{"token":"`+d.token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "gts_session" {
			cookie = c
		}
	}
	if res.StatusCode != 200 || cookie == nil {
		t.Fatalf("login: %d %v", res.StatusCode, res.Header)
	}
	req, _ := http.NewRequest("GET", d.api+"/alldata", nil)
	req.AddCookie(cookie)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("/alldata with the cookie: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// The ready line ("peers on ..., API on ...") is logged after the API
	// starts: poll for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, code := d.get("/logs?after=0")
		var logs struct {
			Lines []struct {
				ID    uint64            `json:"id"`
				Level string            `json:"level"`
				Msg   string            `json:"msg"`
				Attrs map[string]string `json:"attrs"`
			} `json:"lines"`
			Last uint64 `json:"last"`
		}
		if err := json.Unmarshal(body, &logs); code != 200 || err != nil {
			t.Fatalf("/logs: %d %v %s", code, err, body)
		}
		found := false
		for _, l := range logs.Lines {
			if strings.Contains(l.Msg, "API on") && l.Level == "INFO" && l.Attrs["component"] == "serve" && l.Attrs["api"] != "" {
				found = true
			}
		}
		if found && logs.Last >= logs.Lines[len(logs.Lines)-1].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/logs lacks the ready line: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop(t)
}
