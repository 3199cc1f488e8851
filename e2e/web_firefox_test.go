package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/internal/testbroker"
)

// firefoxPage is what e2e/js/firefox.mjs prints.
type firefoxPage struct {
	UserAgent string
	FromURL   struct {
		Q      string
		Topics []string
	}
	Topics   []string
	Title    string
	Injected bool
	Pwned    bool
	Header   string
	Search   string
	Detail   string
	Filtered []string
	Errors   []string
}

// TestWebInFirefox: the page works in Firefox as in Chromium (the issue
// asks for both): Debian's firefox-esr driven by puppeteer-core over
// WebDriver BiDi opens a filter from the URL, keeps hostile data as text,
// moves with j and filters from the box.
func TestWebInFirefox(t *testing.T) {
	node := nodeWith(t, "puppeteer-core")
	firefox := testbroker.Binary(t, "firefox-esr", "firefox-esr")
	live := newWebCapture(t)
	base := startWeb(t, live.path)
	out, err := exec.Command(node, filepath.Join("js", "firefox.mjs"), firefox, base).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("firefox.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var p firefoxPage
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("firefox.mjs printed %q: %v", out, err)
	}
	t.Logf("browser %s", p.UserAgent)
	only := func(topics []string, want string, n int) bool {
		return len(topics) == n && !slices.ContainsFunc(topics, func(s string) bool { return s != want })
	}
	if p.FromURL.Q != "plant/1/temp .celsius>30" || !only(p.FromURL.Topics, "plant/1/temp", 7) {
		t.Errorf("?q= filter box %q, rows %q; want 7 rows of plant/1/temp", p.FromURL.Q, p.FromURL.Topics)
	}
	if p.Title != "mqtape web" || p.Injected || p.Pwned {
		t.Errorf("hostile data ran: title %q, injected elements %v, script ran %v", p.Title, p.Injected, p.Pwned)
	}
	for i, h := range webHostile {
		if i >= len(p.Topics) || p.Topics[i] != termsafe.String(h.topic) {
			t.Errorf("row %d of %q, want %q", i, p.Topics, termsafe.String(h.topic))
		}
	}
	if want := fmt.Sprintf("%s · %d messages", live.path, len(webHostile)+40); p.Header != want {
		t.Errorf("header %q, want %q", p.Header, want)
	}
	if p.Search != "?seq=2" || !strings.Contains(p.Detail, "</td></tr></table><h1 id=injected>big</h1>") {
		t.Errorf("after j j: URL %q, detail pane %q; want ?seq=2 and message 2's payload as text", p.Search, p.Detail)
	}
	if !only(p.Filtered, "plant/2/temp", 10) {
		t.Errorf("filter plant/2/# typed in the box shows %q, want the 10 messages of plant/2/temp", p.Filtered)
	}
	if len(p.Errors) > 0 {
		t.Errorf("the page threw in Firefox: %q", p.Errors)
	}
}
