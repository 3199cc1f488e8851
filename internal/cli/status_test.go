package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestStatusLineShowsDataSafely: the status line keeps its own \r and
// erase-line sequence, and what it shows (e.g. import's input name) has
// its control characters shown visibly.
func TestStatusLineShowsDataSafely(t *testing.T) {
	cio := testIO()
	cio.stderrTTY = true
	stop := newStatusLine(cio, false).start(func() string { return "importing x\x1b]0;pwned\x07\u202e.pcap: 3 messages" })
	stop()
	got := cio.statusTerm.(*bytes.Buffer).String()
	want := "\r\x1b[Kimporting x\\x1b]0;pwned\\x07⟨U+202E⟩.pcap: 3 messages\n"
	if !strings.HasSuffix(got, want) || strings.Count(got, "\x1b") != strings.Count(got, "\r\x1b[K") {
		t.Errorf("status line %q, want it to end %q", got, want)
	}
}
