package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

func TestParsePlay(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(playOptions) bool
	}{
		{[]string{"c.db"}, true, func(o playOptions) bool {
			return o.speed == 1 && o.loop == 1 && !o.overrideQoS && o.retainedMode == replay.RetainedKeep &&
				o.maxInflight == 1000 && o.file == "c.db" && o.query.Match == nil
		}},
		{[]string{"c.db", "--speed", "max", "--loop", "0", "--qos", "1", "--retained", "live", "--max-inflight", "5"}, true,
			func(o playOptions) bool {
				c := o.config()
				return math.IsInf(o.speed, 1) && c.Loop == replay.Forever && c.OverrideQoS && c.QoS == 1 &&
					c.Retained == replay.RetainedLive && c.MaxInflight == 5
			}},
		{[]string{"--speed", "0.25", "-t", "plant/#", "-x", "plant/+/debug", "--from", "30s", "--to", "2m", "c.db"}, true,
			func(o playOptions) bool {
				q := o.query
				return o.speed == 0.25 && q.Match("plant/1/temp") && !q.Match("plant/1/debug") && !q.Match("other") &&
					*q.FromOffset == int64(30*time.Second) && *q.ToOffset == int64(2*time.Minute)
			}},
		{[]string{"c.db", "--speed", "4x", "--topic-prefix", "sandbox/", "--remap", "a/=b/", "--remap", "c=", "--max-gap", "5s",
			"--session", "2", "--dry-run", "--json", "--retained", "skip"}, true, func(o playOptions) bool {
			return o.speed == 4 && o.topicPrefix == "sandbox/" && slices.Equal(o.remaps, []replay.Remap{{Old: "a/", New: "b/"}, {Old: "c", New: ""}}) &&
				o.maxGap == 5*time.Second && o.query.Session == 2 && o.dryRun && o.json && o.retainedMode == replay.RetainedSkip
		}},
		{[]string{"c.db", "--from", "2026-11-26T10:00:00Z"}, true, func(o playOptions) bool { return o.query.FromTime != nil }},
		{[]string{}, false, nil},
		{[]string{"a.db", "b.db"}, false, nil},
		{[]string{"c.db", "--speed", "0"}, false, nil},
		{[]string{"c.db", "--speed", "-2"}, false, nil},
		{[]string{"c.db", "--speed", "fast"}, false, nil},
		{[]string{"c.db", "--speed", "NaN"}, false, nil},
		{[]string{"c.db", "--speed", "Inf"}, false, nil},
		{[]string{"c.db", "--loop", "-1"}, false, nil},
		{[]string{"c.db", "--qos", "3"}, false, nil},
		{[]string{"c.db", "--retained", "yes"}, false, nil},
		{[]string{"c.db", "--remap", "nothing"}, false, nil},
		{[]string{"c.db", "--remap", "=x"}, false, nil},
		{[]string{"c.db", "--remap", "a/=b/#"}, false, nil},
		{[]string{"c.db", "--topic-prefix", "+/"}, false, nil},
		{[]string{"c.db", "--max-gap", "-1s"}, false, nil},
		{[]string{"c.db", "--max-inflight", "0"}, false, nil},
		{[]string{"c.db", "-t", "a/#/b"}, false, nil},
		{[]string{"c.db", "-x", "a+"}, false, nil},
		{[]string{"c.db", "--from", "yesterday"}, false, nil},
		{[]string{"c.db", "--session", "-1"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parsePlay(tt.args, testIO())
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if code := exitCode(err); code != exitUsage {
					t.Errorf("exit code %d, want %d (%v)", code, exitUsage, err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if !tt.chk(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

// writeTestCapture writes sessions of messages (offsets as given) into a new capture.
func writeTestCapture(t *testing.T, sessions ...[]storage.Message) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, msgs := range sessions {
		start := int64(1.7e18) + int64(i)*int64(time.Hour)
		for j := range msgs {
			msgs[j].TimeNS = start + msgs[j].OffsetNS
		}
		s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t",
			Protocol: 4, CleanSession: true, StartedNS: start, Version: "test", Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, msgs, nil, start+int64(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, start+int64(time.Minute), "count", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rec(off time.Duration, topic string, qos byte, payload string) storage.Message {
	return storage.Message{OffsetNS: int64(off), Topic: topic, QoS: qos, Payload: []byte(payload)}
}

// received is a message seen by a test subscriber, with its arrival time.
type received struct {
	at     time.Time
	topic  string
	qos    byte
	retain bool
	body   string
}

type subscriber struct {
	mu  sync.Mutex
	got []received
}

// subscribe connects a '#' subscriber at QoS 2.
func subscribe(t *testing.T, url string) *subscriber {
	t.Helper()
	br, _ := mqtt.ParseBroker(url)
	s := &subscriber{}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: fmt.Sprintf("sub-%d", time.Now().UnixNano()%1e9),
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{Message: s.onMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(50 * time.Millisecond) })
	if _, err := c.Subscribe(context.Background(), []mqtt.Subscription{{Filter: "#", QoS: 2}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *subscriber) onMessage(m mqtt.Message) {
	s.mu.Lock()
	s.got = append(s.got, received{time.Now(), m.Topic, m.QoS, m.Retain, string(m.Payload)})
	s.mu.Unlock()
}

func (s *subscriber) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := slices.Clone(s.got)
		s.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("subscriber got %d messages, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPlaySelectionRewriteSpeedLoop(t *testing.T) {
	path := writeTestCapture(t, []storage.Message{
		{OffsetNS: 0, Topic: "plant/1/state", QoS: 1, Retain: true, FromStore: true, Payload: []byte("on")},
		{OffsetNS: 0, Topic: "other/state", QoS: 0, Retain: true, FromStore: true, Payload: []byte("x")},
		rec(1*time.Second, "plant/1/temp", 1, "20"),
		rec(2*time.Second, "plant/1/debug", 0, "dbg"),
		rec(30*time.Second, "plant/2/temp", 2, "21"),
		rec(30*time.Second+400*time.Millisecond, "plant/1/debug", 0, "dbg2"),
		rec(30*time.Second+800*time.Millisecond, "plant/1/temp", 1, "22"),
		rec(50*time.Second, "plant/1/temp", 0, "late"),
	})
	b := startBroker(t)
	sub := subscribe(t, b.URL())
	start := time.Now()
	code, out, errOut := runCLI(t, context.Background(), "play", path, "--broker", b.URL(), "--speed", "2", "--loop", "2",
		"-t", "plant/#", "-x", "plant/+/debug", "--from", "25s", "--to", "45s", "--remap", "plant/1/=p1/",
		"--topic-prefix", "sandbox/", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	elapsed := time.Since(start)
	got := sub.wait(t, 6)
	var lines []string
	for _, m := range got {
		lines = append(lines, fmt.Sprintf("%s %s q%d r%v", m.topic, m.body, m.qos, m.retain))
	}
	// Each pass restores plant/1/state (selected by -t, other/state is not),
	// then plays 30 s and 30.8 s (0.4 s apart at speed 2).
	want := []string{"sandbox/p1/state on q1 rfalse", "sandbox/plant/2/temp 21 q2 rfalse", "sandbox/p1/temp 22 q1 rfalse",
		"sandbox/p1/state on q1 rfalse", "sandbox/plant/2/temp 21 q2 rfalse", "sandbox/p1/temp 22 q1 rfalse"}
	if !slices.Equal(lines, want) {
		t.Errorf("received\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if gap := got[2].at.Sub(got[1].at); gap < 350*time.Millisecond || gap > 500*time.Millisecond {
		t.Errorf("gap at speed 2 = %s, want 400 ms", gap)
	}
	if elapsed < 800*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("play took %s, want about 0.8 s", elapsed)
	}
	var rep PlayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Published != 6 || rep.Restored != 2 || rep.Passes != 2 || rep.Speed != "2" || rep.Lateness.Count != 4 ||
		rep.AckFailures != 0 || rep.Unacked != 0 || rep.Interrupted || math.Abs(rep.IntendedS-0.8) > 1e-9 {
		t.Errorf("report = %+v", rep)
	}
	if !strings.Contains(errOut, "played 6 messages (2 retained restores)") || !strings.Contains(errOut, "lateness:") {
		t.Errorf("human report:\n%s", errOut)
	}
	// The retained state is restored on the target broker.
	late := subscribe(t, b.URL())
	if r := late.wait(t, 1)[0]; r.topic != "sandbox/p1/state" || !r.retain || r.body != "on" {
		t.Errorf("retained on the target: %+v", r)
	}
}

func TestPlayRecordPlayRecordKeepsContentAndGaps(t *testing.T) {
	// 1. Record real traffic with gaps from 0 to 300 ms and a retained state.
	src := startBroker(t)
	pub := connect(t, src.URL())
	mustPublish(t, pub, "dev/1/status", 1, true, []byte("online"))
	mustPublish(t, pub, "dev/2/status", 2, true, []byte{0, 1, 2})
	first := filepath.Join(t.TempDir(), "first.db")
	gaps := []time.Duration{0, 0, 1, 5, 0, 20, 300, 2, 50, 0, 120, 10}
	wait := recordCLI(t, context.Background(), first, "--broker", src.URL(), "--count", fmt.Sprint(2+len(gaps)), "--quiet")
	for i, g := range gaps {
		time.Sleep(g * time.Millisecond)
		payload := bytes.Repeat([]byte{byte(i)}, i*37)
		pub.Publish(fmt.Sprintf("dev/%d/data", i%3), byte(i%3), false, payload)
	}
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record: exit %d %s", code, e)
	}

	// 2. Play it to a fresh broker while recording there.
	dst := startBroker(t)
	second := filepath.Join(t.TempDir(), "second.db")
	wait = recordCLI(t, context.Background(), second, "--broker", dst.URL(), "--count", fmt.Sprint(2+len(gaps)), "--quiet")
	if code, _, e := runCLI(t, context.Background(), "play", first, "--broker", dst.URL(), "--quiet"); code != 0 {
		t.Fatalf("play: exit %d %s", code, e)
	}
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record again: exit %d %s", code, e)
	}
	// 3. A third recording sees the restored retained state in the store.
	third := filepath.Join(t.TempDir(), "third.db")
	wait = recordCLI(t, context.Background(), third, "--broker", dst.URL(), "--count", "2", "--quiet")
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record retained: exit %d %s", code, e)
	}

	a, b := readMessages(t, first), readMessages(t, second)
	if len(a) != len(b) {
		t.Fatalf("%d messages recorded, %d after replay", len(a), len(b))
	}
	for i := range a {
		if a[i].Topic != b[i].Topic || a[i].QoS != b[i].QoS || !bytes.Equal(a[i].Payload, b[i].Payload) {
			t.Errorf("message %d: %s q%d %d bytes, replayed as %s q%d %d bytes", i, a[i].Topic, a[i].QoS, len(a[i].Payload),
				b[i].Topic, b[i].QoS, len(b[i].Payload))
		}
	}
	// Live gaps are kept (the retained restores go first, as a burst): each
	// replayed message sits where the schedule puts it. A loaded CI machine
	// may delay one publish (and so stretch one gap and shrink the next);
	// drift, or gaps that add up errors, would move every later message.
	const tol, hiccup = 10 * time.Millisecond, 50 * time.Millisecond
	var late []string
	for i := 3; i < len(a); i++ {
		pa, pb := time.Duration(a[i].OffsetNS-a[2].OffsetNS), time.Duration(b[i].OffsetNS-b[2].OffsetNS)
		d := (pb - pa).Abs()
		if d > tol {
			late = append(late, fmt.Sprintf("message %d: at %s in the recording, %s in the replay", i, pa, pb))
		}
		if d > hiccup {
			t.Errorf("message %d: at %s in the recording, %s in the replay", i, pa, pb)
		}
	}
	if len(late) > (len(a)-3)/3 {
		t.Errorf("%d of %d messages off by more than %s:\n%s", len(late), len(a)-3, tol, strings.Join(late, "\n"))
	}
	c := readMessages(t, third)
	var retained []string
	for _, m := range c {
		retained = append(retained, fmt.Sprintf("%s %q q%d store=%v", m.Topic, m.Payload, m.QoS, m.FromStore))
	}
	slices.Sort(retained)
	want := []string{`dev/1/status "online" q1 store=true`, `dev/2/status "\x00\x01\x02" q2 store=true`}
	if !slices.Equal(retained, want) {
		t.Errorf("retained state on the target = %q, want %q", retained, want)
	}
}

func readMessages(t *testing.T, path string) []storage.Message {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Page(context.Background(), storage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestPlayErrors(t *testing.T) {
	path := writeTestCapture(t, []storage.Message{rec(0, "a/b", 0, "x")})
	notCapture := filepath.Join(t.TempDir(), "x.txt")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"play", path, "--speed", "fast"}, exitUsage, `--speed "fast"`},
		{[]string{"play", path, "--speed", "0"}, exitUsage, `--speed "0": use a positive number (0.25, 1, 4) or max`},
		{[]string{"play", path, "--remap", "a/b"}, exitUsage, "use OLD=NEW"},
		{[]string{"play", path, "--retained", "maybe"}, exitUsage, "use keep, skip or live"},
		{[]string{"play", path, "-t", "a/#/x"}, exitUsage, "invalid topic filter"},
		{[]string{"play", path, "--session", "7"}, exitUsage, "--session 7"},
		{[]string{"play", path, "--remap", "a/b="}, exitUsage, `"a/b" becomes ""`},
		{[]string{"play", path, "--broker", "ftp://x"}, exitUsage, "invalid broker URL"},
		{[]string{"play", notCapture}, exitCapture, "no such file"},
		{[]string{"play", path, "--broker", "mqtt://127.0.0.1:1", "--connect-timeout", "2s"}, exitConnection, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, context.Background(), tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d (want %d), stderr:\n%s", code, tt.code, errOut)
			}
			if first, _, _ := strings.Cut(errOut, "\n"); !strings.Contains(first, tt.msg) {
				t.Errorf("first stderr line %q lacks %q", first, tt.msg)
			}
		})
	}
}

func TestPlayInterruptedReportsSoFar(t *testing.T) {
	var msgs []storage.Message
	for i := range 20 {
		msgs = append(msgs, rec(time.Duration(i)*100*time.Millisecond, "tick", 1, fmt.Sprint(i)))
	}
	path := writeTestCapture(t, msgs)
	b := startBroker(t)
	sub := subscribe(t, b.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
	defer cancel()
	code, out, errOut := runCLI(t, ctx, "play", path, "--broker", b.URL(), "--json")
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d\n%s", code, exitInterrupted, errOut)
	}
	var rep PlayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Published < 3 || rep.Published > 6 || rep.Error != "" {
		t.Errorf("report = %+v", rep)
	}
	sub.wait(t, int(rep.Published))
	if !strings.Contains(errOut, "interrupted after") {
		t.Errorf("stderr:\n%s", errOut)
	}
}
