package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// cutSample: a session with retained state that changes over time, as
// mqtape serve records it (live retained messages keep retain=1).
func cutSample() []storage.Message {
	msgs := []storage.Message{
		{OffsetNS: 0, Topic: "home/door", QoS: 1, Retain: true, FromStore: true, Payload: []byte("closed")},
		{OffsetNS: 0, Topic: "home/light", QoS: 1, Retain: true, FromStore: true, Payload: []byte("off")},
		{OffsetNS: 1e9, Topic: "home/light", Retain: true, Payload: []byte("on"), ClientID: "switch"},
		{OffsetNS: 1e9 + 1, Topic: "home/fan", Retain: true, Payload: []byte("fast"), ClientID: "fan"},
		{OffsetNS: 5e9, Topic: "home/light", Retain: true, Payload: []byte{}}, // cleared
		{OffsetNS: 6e9, Topic: "home/door", Retain: true, Payload: []byte("open")},
	}
	for i := range 10 {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i)*1e9 + 5e8, Topic: "home/temp", Payload: []byte(fmt.Sprintf(`{"t":%d}`, 20+i))})
	}
	// Keep offsets in order (a capture's invariant).
	for i := 1; i < len(msgs); i++ {
		for j := i; j > 0 && msgs[j].OffsetNS < msgs[j-1].OffsetNS; j-- {
			msgs[j], msgs[j-1] = msgs[j-1], msgs[j]
		}
	}
	return msgs
}

// readCapture reads a capture (capturetest.Read) and checks that times
// and offsets never decrease within a session.
func readCapture(t *testing.T, path string) ([]storage.Message, []storage.SessionInfo, []storage.Event) {
	t.Helper()
	msgs, sessions, events := capturetest.Read(t, path)
	for i := 1; i < len(msgs); i++ {
		a, b := msgs[i-1], msgs[i]
		if a.Session == b.Session && (b.TimeNS < a.TimeNS || b.OffsetNS < a.OffsetNS) {
			t.Fatalf("order broken at seq %d", b.Seq)
		}
	}
	return msgs, sessions, events
}

func describe(msgs []storage.Message) string {
	var out []string
	for _, m := range msgs {
		flag := ""
		if m.FromStore {
			flag = " (store)"
		}
		out = append(out, fmt.Sprintf("s%d %.1fs %s=%s%s", m.Session, float64(m.OffsetNS)/1e9, m.Topic, m.Payload, flag))
	}
	return strings.Join(out, "\n")
}

func TestCut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.db")
	second := cutSample()[:8]
	writeCapture(t, in, cutSample(), second)
	hash := fileHash(t, in)
	start := int64(1_790_000_000_000_000_000)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"from/to keep the retained state", []string{"--from", "5500ms", "--to", "8s", "--session", "1"}, strings.Join([]string{
			"s1 0.0s home/door=closed (store)", // the door's state at 5.5 s; the light was cleared at 5 s
			"s1 0.0s home/fan=fast (store)",
			`s1 0.0s home/temp={"t":25}`, // at 5.5 s: [from, to) includes from
			"s1 0.5s home/door=open",
			`s1 1.0s home/temp={"t":26}`,
			`s1 2.0s home/temp={"t":27}`, // 8.5 s is after --to
		}, "\n")},
		{"topic filter", []string{"--from", "5500ms", "--to", "7s", "-t", "home/temp", "--session", "1"}, `s1 0.0s home/temp={"t":25}` + "\n" + `s1 1.0s home/temp={"t":26}`},
		{"absolute times, every session", []string{"--from", "FROM", "--to", "TO"}, strings.Join([]string{
			"s1 0.0s home/door=closed (store)", "s1 0.0s home/light=on (store)", "s1 0.0s home/fan=fast (store)", `s1 0.5s home/temp={"t":23}`,
		}, "\n")},
		{"no --from: a plain copy of the selection", []string{"-x", "home/temp", "--to", "1500ms", "--session", "2"}, strings.Join([]string{
			"s1 0.0s home/door=closed (store)", "s1 0.0s home/light=off (store)", "s1 1.0s home/light=on", "s1 1.0s home/fan=fast",
		}, "\n")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out%d.db", i))
			for k, a := range tt.args {
				switch a {
				case "FROM":
					tt.args[k] = time.Unix(0, start+3e9).UTC().Format(time.RFC3339Nano)
				case "TO":
					tt.args[k] = time.Unix(0, start+4e9).UTC().Format(time.RFC3339Nano)
				}
			}
			code, stdout, stderr := runCLI(t, ctx, append([]string{"cut", in, "-o", out}, tt.args...)...)
			if code != 0 || stdout != "" || !strings.Contains(stderr, "cut ") {
				t.Fatalf("exit %d: %s%s", code, stdout, stderr)
			}
			msgs, sessions, events := readCapture(t, out)
			if got := describe(msgs); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if sessions[0].Source != "cut" || sessions[0].Broker != "mqtt://x" || len(events) == 0 || events[0].Kind != "cut" {
				t.Errorf("session %+v, events %+v", sessions[0], events)
			}
		})
	}
	if fileHash(t, in) != hash {
		t.Fatal("cut changed its input")
	}
	// The first cut starts 5.5 s into session 1, with its own start time.
	msgs, sessions, _ := readCapture(t, filepath.Join(dir, "out0.db"))
	if sessions[0].StartedNS != start+5.5e9 || msgs[3].TimeNS != start+6e9 {
		t.Errorf("start %d, time %d", sessions[0].StartedNS-start, msgs[3].TimeNS-start)
	}
	// play restores the retained state at the slice's start first.
	c, err := storage.Open(filepath.Join(dir, "out0.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := replay.New(c, nopPublisher{}, replay.Config{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := p.Plan(ctx)
	if err != nil || plan.Restored != 2 || plan.Messages != 6 || !plan.First.Restore || plan.First.Topic != "home/door" {
		t.Errorf("plan %+v, %v", plan, err)
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, byte, bool, []byte) mqtt.Token {
	return replay.DoneToken(nil)
}

func TestCutErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.db")
	writeCapture(t, in, cutSample())
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{in}, exitUsage, "missing -o"},
		{[]string{"-o", filepath.Join(dir, "x.db")}, exitUsage, "missing capture file"},
		{[]string{in, "-o", in}, exitUsage, "is the input"},
		{[]string{in, "-o", filepath.Join(dir, "y.db"), "--from", "soon"}, exitUsage, "--from"},
		{[]string{filepath.Join(dir, "nope.db"), "-o", filepath.Join(dir, "z.db")}, exitCapture, "no such file"},
		{[]string{in, "-o", filepath.Join(dir, "empty.db"), "--from", "1h"}, exitError, "nothing selected: " + in + " holds 1 session of 9.5s"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, ctx, append([]string{"cut"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, %s", tt.args, code, stderr)
		}
	}
	for _, f := range []string{"y.db", "z.db", "empty.db"} {
		if fileExists(filepath.Join(dir, f)) {
			t.Errorf("%s left behind", f)
		}
	}
}
