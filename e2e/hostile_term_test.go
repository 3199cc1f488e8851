package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// Data that tries to take over the terminal (issue 15): a title change, a
// screen clear with a colour left on, an OSC 52 clipboard write, a C1 CSI
// (U+009B) and a right-to-left override.
const (
	titleSeq  = "\x1b]0;pwned\x07"
	clearSeq  = "\x1b[2J\x1b[41m"
	osc52Seq  = "\x1b]52;c;cHduZWQ=\x07"
	c1CSI     = "\u009b2J"
	rloSeq    = "\u202egnp.exe"
	hostileID = "dev" + titleSeq
)

var hostileTopics = []string{"plant/" + titleSeq, "plant/" + clearSeq, "plant/" + osc52Seq, "plant/" + c1CSI,
	"plant/" + rloSeq}

// writeHostile writes a capture whose topics, payloads and client ids hold
// the sequences above, into a directory whose name holds one too.
func writeHostile(t *testing.T, name string, payloadSuffix string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dir"+titleSeq)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var msgs []storage.Message
	for i, tp := range hostileTopics {
		m := capturetest.Msg(0, tp, 1, "x"+clearSeq+osc52Seq+c1CSI+rloSeq+payloadSuffix)
		m.TimeNS, m.ClientID, m.Retain = int64(1.7e18)+int64(i)*1e6, hostileID, i == 0
		msgs = append(msgs, m)
	}
	path := filepath.Join(dir, name+rloSeq+".db")
	capturetest.Write(t, path, capturetest.Session{
		Info: storage.SessionInfo{Source: "serve", Broker: "mqtt://127.0.0.1:1883" + titleSeq, ClientID: hostileID,
			Protocol: 4, CleanSession: true, StartedNS: 1.7e18, Version: "test", Host: "h" + clearSeq},
		Messages: msgs, Reason: "stop" + osc52Seq})
	return path
}

// rawControl returns the first character on a terminal's screen that a
// terminal acts on (beyond the CR LF its line discipline makes of "\n").
func rawControl(screen string) (rune, bool) {
	for i, r := range screen {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
		case r == utf8.RuneError && !strings.HasPrefix(screen[i:], "\uFFFD"):
			return r, true
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		}
	}
	return 0, false
}

// TestHostileDataOnTerminal runs every verb that prints a capture's data
// on a pseudo-terminal, with a capture made of escape sequences: nothing
// the terminal would act on reaches it; the sequences show visibly.
func TestHostileDataOnTerminal(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	a := writeHostile(t, "a", "")
	b := writeHostile(t, "b", "changed")
	out := filepath.Join(t.TempDir(), "recovered.db")
	missing := filepath.Join(filepath.Dir(a), "missing"+osc52Seq+".db")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"info", a}, exitOK},
		{[]string{"diff", a, b}, exitError},
		{[]string{"play", "--dry-run", a}, exitOK},
		{[]string{"check", a}, exitOK},
		{[]string{"export", "--format", "csv", a}, exitOK},
		{[]string{"export", a}, exitOK},
		{[]string{"recover", a, "-o", out}, exitOK},
		{[]string{"info", missing}, exitCapture},
		{[]string{"export", "-t", "a/#/b" + titleSeq, a}, exitUsage},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			tm := runOnTerminal(t, bin, tc.args...)
			code := tm.wait(t)
			screen := tm.text()
			if code != tc.code {
				t.Errorf("%s: exit %d, want %d; terminal:\n%q", tc.args[0], code, tc.code, screen)
			}
			if r, bad := rawControl(screen); bad {
				t.Errorf("%s put %U on the terminal:\n%q", tc.args[0], r, screen)
			}
			if !strings.Contains(screen, `\x1b]0;pwned`) && !strings.Contains(screen, `\u001b]0;pwned`) {
				t.Errorf("%s does not show the title sequence visibly:\n%q", tc.args[0], screen)
			}
		})
	}
}

// TestHostileDataToPipes: to a file or pipe CSV stays byte-exact, and JSON
// escapes C1 and bidi controls yet parses to the capture's exact data.
func TestHostileDataToPipes(t *testing.T) {
	ctx := context.Background()
	a := writeHostile(t, "a", "")
	payload := "x" + clearSeq + osc52Seq + c1CSI + rloSeq

	code, out, stderr := runCLI(t, ctx, "export", "--format", "csv", a)
	if code != exitOK {
		t.Fatalf("export csv: exit %d %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 1+len(hostileTopics) {
		t.Fatalf("csv: %v, %d rows", err, len(rows))
	}
	for i, row := range rows[1:] {
		if row[5] != hostileTopics[i] || row[11] != hostileID || row[13] != payload {
			t.Errorf("csv row %d is not the capture's bytes: %q", i, row)
		}
	}

	for _, args := range [][]string{{"export", a}, {"info", "--json", a}, {"play", "--dry-run", "--json", a}} {
		code, out, stderr = runCLI(t, ctx, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d %s", args, code, stderr)
		}
		if r, bad := rawControl(out); bad {
			t.Errorf("%s: JSON holds %U raw", args, r)
		}
		if args[0] != "export" {
			continue
		}
		if !strings.Contains(out, `\u009b`) || !strings.Contains(out, `\u202e`) {
			t.Errorf("C1 and bidi controls are not \\u escapes in JSON lines:\n%s", out)
		}
		dec := json.NewDecoder(strings.NewReader(out))
		for i := range hostileTopics {
			var rec struct {
				Topic, Payload string
				ClientID       string `json:"client_id"`
			}
			if err := dec.Decode(&rec); err != nil {
				t.Fatal(err)
			}
			if rec.Topic != hostileTopics[i] || rec.Payload != payload || rec.ClientID != hostileID {
				t.Errorf("JSON line %d parses to other data: %q", i, rec)
			}
		}
	}
}

// TestHugeTopicsInTables: one legal 65,000-byte topic among 2,000 does not
// widen every row of info's table, a 10 MB topic is printed at once, and
// --json keeps the whole names.
func TestHugeTopicsInTables(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("l", 65000)
	var msgs []storage.Message
	for i := range 2000 {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Millisecond, fmt.Sprintf("plant/%d/temp", i), 0, "1"))
	}
	msgs = append(msgs, capturetest.Msg(3*time.Second, long, 0, "1"))
	many := capturetest.WriteOffsets(t, msgs)
	code, out, stderr := runCLI(t, ctx, "info", many)
	if code != exitOK {
		t.Fatalf("info: exit %d %s", code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(line) > 200 {
			t.Fatalf("info printed a %d-character line: %.200q…", utf8.RuneCountInString(line), line)
		}
	}
	if code, out, _ = runCLI(t, ctx, "info", "--json", many); code != exitOK || !strings.Contains(out, `"topic": "`+long+`"`) {
		t.Errorf("info --json: exit %d, the long topic is not whole", code)
	}

	huge := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, strings.Repeat("h/", 5<<20), 0, "1")})
	for _, args := range [][]string{{"info", huge}, {"play", "--dry-run", huge}} {
		start := time.Now()
		code, out, stderr := runCLI(t, ctx, args...)
		if d := time.Since(start); code != exitOK || d > 3*time.Second || len(out) > 16<<10 {
			t.Errorf("%s with a 10 MB topic: exit %d in %v, %d bytes of output %s", args[0], code, d, len(out), stderr)
		}
	}
}

// TestBrokerURLErrorsHidePassword: a broker URL with a password that fails
// to parse is refused (exit 2) by every verb that connects, without the
// password on stdout or stderr, given as a flag or in $MQTAPE_BROKER.
func TestBrokerURLErrorsHidePassword(t *testing.T) {
	capture := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a", 0, "x")})
	out := filepath.Join(t.TempDir(), "r.db")
	for _, url := range []string{"gopher://bob:" + secret + "@127.0.0.1:1883", "mqtt://bob:" + secret + "@127.0.0.1:1883 x",
		"mqtt://bob:" + secret + "/x@127.0.0.1:1883"} {
		for _, args := range [][]string{{"record", "-o", out}, {"play", "--yes", capture}, {"inspect", capture}} {
			code, stdout, stderr := runCLI(t, context.Background(), append(args, "-b", url)...)
			if code != exitUsage || !strings.Contains(stderr, "invalid broker URL") {
				t.Errorf("%s -b %q: exit %d %s", args[0], url, code, stderr)
			}
			for _, piece := range []string{secret, secret[:8], secret[8:]} {
				if strings.Contains(stdout+stderr, piece) {
					t.Errorf("%s -b %q shows %q: %s", args[0], url, piece, stderr)
				}
			}
		}
	}
}
