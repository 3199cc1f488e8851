package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// msg is a compact message description for tests: at seconds since the
// start.
type msg struct {
	at      float64
	topic   string
	payload string
	qos     byte
	retain  bool
	store   bool
	props   *mqtt.Properties
}

const t0 = int64(1_790_000_000_000_000_000)

// capture writes msgs into a new capture file and opens it for reading.
func capture(t *testing.T, msgs []msg) *storage.Capture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	w, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := w.BeginSession(ctx, storage.SessionInfo{Source: "import", StartedNS: t0})
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.Message
	for _, m := range msgs {
		off := int64(m.at * 1e9)
		out = append(out, storage.Message{TimeNS: t0 + off, OffsetNS: off, Topic: m.topic, QoS: m.qos,
			Retain: m.retain || m.store, FromStore: m.store, Payload: []byte(m.payload), Props: m.props})
	}
	if err := s.Write(ctx, out, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, t0+1e9, "import", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// base is a small deterministic recording: a thermostat at 1 Hz for 10 s, a
// retained door state, a binary frame.
func base(jitter float64) []msg {
	var out []msg
	out = append(out, msg{0, "home/door", "closed", 1, false, true, nil})
	for i := range 10 {
		at := float64(i) + 0.1 + jitter*float64(i%3)
		out = append(out, msg{at, "home/temp", fmt.Sprintf(`{"t":%d.5,"unit":"C","ts":%d,"seq":%d}`, 20+i%2, 1000+i, i), 1, false, false, nil})
		if i%5 == 0 {
			out = append(out, msg{at + 0.01, "plant/frame", "\x00\x01\x02\xff" + strings.Repeat("x", i), 0, false, false, nil})
		}
	}
	return out
}

func mapMsgs(in []msg, f func(i int, m msg) (msg, bool)) []msg {
	var out []msg
	for i, m := range in {
		if n, keep := f(i, m); keep {
			out = append(out, n)
		}
	}
	return out
}

func paths(t *testing.T, s ...string) []Path {
	var out []Path
	for _, x := range s {
		p, err := ParsePath(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// compareCase is one B capture compared against base(0): either equal is
// the whole expectation, or check looks into the report.
type compareCase struct {
	name  string
	b     []msg
	opts  Options
	equal bool
	check func(t *testing.T, r *Report)
}

// compareFieldCases change payload fields: spelling, values, ignored paths.
func compareFieldCases(t *testing.T) []compareCase {
	return []compareCase{
		{name: "same traffic, other timing", b: base(0.003), equal: true},
		{name: "json key order and number spelling", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.topic == "home/temp" {
				var v map[string]any
				json.Unmarshal([]byte(m.payload), &v)
				m.payload = fmt.Sprintf(`{"seq":%v,"ts":%v,"unit":"C","t":%se0}`, v["seq"], v["ts"], fmt.Sprint(v["t"]))
			}
			return m, true
		}), equal: true},
		{name: "changed field", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.topic == "home/temp" && strings.Contains(m.payload, `"seq":3`) {
				m.payload = strings.Replace(m.payload, `"unit":"C"`, `"unit":"F"`, 1)
			}
			return m, true
		}), check: func(t *testing.T, r *Report) {
			td := r.Topics[0]
			if td.Topic != "home/temp" || td.Changed != 1 || td.Missing != 0 || !td.Significant || len(td.Messages) != 1 {
				t.Fatalf("topic diff = %+v", td)
			}
			m := td.Messages[0]
			if m.IndexA != 4 || m.IndexB != 4 || len(m.Fields) != 1 || m.Fields[0].Path != "unit" ||
				string(m.Fields[0].A) != `"C"` || string(m.Fields[0].B) != `"F"` {
				t.Errorf("message diff = %+v", m)
			}
		}},
		{name: "ignored fields", opts: Options{IgnoreFields: paths(t, "ts", "seq")}, b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			m.payload = strings.Replace(m.payload, `"ts":10`, `"ts":20`, 1)
			m.payload = strings.Replace(m.payload, `"seq":`, `"seq":1`, 1)
			return m, true
		}), equal: true},
		{name: "not ignored fields", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			m.payload = strings.Replace(m.payload, `"ts":10`, `"ts":20`, 1)
			return m, true
		}), check: func(t *testing.T, r *Report) {
			if r.Topics[0].Changed != 10 || r.Topics[0].Messages[0].Fields[0].Path != "ts" {
				t.Errorf("%+v", r.Topics[0])
			}
		}},
	}
}

// compareCountCases change how much arrives, where and when: lost messages, topics, rates.
func compareCountCases() []compareCase {
	return []compareCase{
		{name: "one message lost", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			return m, !strings.Contains(m.payload, `"seq":4`)
		}), check: func(t *testing.T, r *Report) {
			td := r.Topics[0]
			if td.CountA != 10 || td.CountB != 9 || !td.CountChanged || td.Missing != 1 || td.Changed != 0 ||
				td.Messages[0].Kind != "missing" || td.Messages[0].IndexA != 5 || !strings.Contains(td.Messages[0].PayloadA, `"seq":4`) {
				t.Errorf("%+v", td)
			}
		}},
		{name: "one message lost, tolerated", opts: Options{CountTolerance: 1}, b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			return m, !strings.Contains(m.payload, `"seq":4`)
		}), equal: true, check: func(t *testing.T, r *Report) {
			if len(r.Topics) != 1 || r.Topics[0].Significant || r.Topics[0].Missing != 1 {
				t.Errorf("tolerated difference not listed: %+v", r.Topics)
			}
		}},
		{name: "topic only in B, topic only in A", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.topic == "plant/frame" {
				m.topic = "plant/frame2"
			}
			return m, true
		}), check: func(t *testing.T, r *Report) {
			if len(r.OnlyInA) != 1 || r.OnlyInA[0] != (TopicCount{"plant/frame", 2}) || len(r.OnlyInB) != 1 || r.OnlyInB[0].Topic != "plant/frame2" {
				t.Errorf("only in: %+v %+v", r.OnlyInA, r.OnlyInB)
			}
		}},
		{name: "rate halved", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			m.at *= 2
			return m, true
		}), check: func(t *testing.T, r *Report) {
			td := r.Topics[0]
			if !td.RateChanged || td.RateB > td.RateA*0.6 || td.Changed != 0 {
				t.Errorf("%+v", td)
			}
		}},
		{name: "rate halved, timing ignored", opts: Options{IgnoreTiming: true}, b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			m.at *= 2
			return m, true
		}), equal: true},
	}
}

// compareContentCases change payload kind, QoS, size, retained state and the topic filter.
func compareContentCases(t *testing.T) []compareCase {
	return []compareCase{
		{name: "binary payload and qos", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.topic == "plant/frame" && m.at < 1 {
				m.payload = "\x00\x01\x02\xfe"
			}
			if m.topic == "home/temp" && m.at > 9 {
				m.qos = 0
			}
			return m, true
		}), check: func(t *testing.T, r *Report) {
			if len(r.Topics) != 2 {
				t.Fatalf("%+v", r.Topics)
			}
			if f := r.Topics[0].Messages[0].Fields; len(f) != 1 || f[0].Path != "(qos)" {
				t.Errorf("qos diff: %+v", r.Topics[0].Messages[0])
			}
			if m := r.Topics[1].Messages[0]; m.PayloadA != "0x000102ff" || m.PayloadB != "0x000102fe" {
				t.Errorf("binary diff: %+v", m)
			}
		}},
		{name: "size grew", b: mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.topic == "home/temp" {
				m.payload = m.payload[:len(m.payload)-1] + `,"pad":"` + strings.Repeat("p", 40) + `"}`
			}
			return m, true
		}), opts: Options{IgnoreFields: paths(t, "pad")}, check: func(t *testing.T, r *Report) {
			td := r.Topics[0]
			if !td.SizeChanged || td.Changed != 0 || !td.Significant {
				t.Errorf("%+v", td)
			}
		}},
		{name: "retained state", b: append(mapMsgs(base(0), func(i int, m msg) (msg, bool) {
			if m.store {
				m.payload = "open"
			}
			return m, true
		}), msg{11, "home/light", "on", 0, true, false, nil}), check: func(t *testing.T, r *Report) {
			if len(r.Retain) != 2 || r.Retain[0].Topic != "home/door" || r.Retain[0].Kind != "changed" ||
				r.Retain[0].PayloadA != "closed" || r.Retain[1].Kind != "only_in_b" {
				t.Errorf("retained: %+v", r.Retain)
			}
			if len(r.OnlyInB) != 1 || r.OnlyInB[0].Topic != "home/light" {
				t.Errorf("live retained message not live traffic: %+v", r.OnlyInB)
			}
		}},
		{name: "topic filter", opts: Options{Query: storage.Query{Match: func(s string) bool { return s == "home/temp" }}},
			b: mapMsgs(base(0), func(i int, m msg) (msg, bool) { return m, m.topic != "plant/frame" }), equal: true},
	}
}

// swapped is base(0) with the 3rd and 4th home/temp messages exchanged in
// arrival order (as two publishers or two QoS levels may interleave).
func swapped() []msg {
	out := base(0)
	var idx []int
	for i, m := range out {
		if m.topic == "home/temp" {
			idx = append(idx, i)
		}
	}
	x, y := idx[2], idx[3]
	out[x].payload, out[y].payload = out[y].payload, out[x].payload
	return out
}

// asReplayed is base(0) as a recording of its replay sees it: the restored
// retained message arrives as the first live message (retain=0 over MQTT
// 3.1.1, retain=1 over MQTT 5 with retain-as-published).
func asReplayed(retain bool) []msg {
	return mapMsgs(base(0), func(i int, m msg) (msg, bool) {
		if m.store {
			m.store, m.retain, m.at = false, retain, 0.05
		}
		return m, true
	})
}

// replayedAgain is base(0) as a recording of its replay into a broker that
// already held the retained state (an earlier replay left it there): the
// retained-store messages, then the same payloads again as the first live
// messages (play's restore), then the live traffic.
func replayedAgain() []msg {
	var store, restore, live []msg
	for _, m := range base(0) {
		if m.store {
			store = append(store, m)
			m.store = false
			restore = append(restore, m)
		} else {
			live = append(live, m)
		}
	}
	return slices.Concat(store, restore, live)
}

// compareReplayCases: order within a topic and the retained state restored by play.
func compareReplayCases() []compareCase {
	moved := func(t *testing.T, r *Report) {
		if len(r.Topics) != 1 || r.Topics[0].Moved != 1 || r.Topics[0].Missing+r.Topics[0].Extra+r.Topics[0].Changed != 0 ||
			r.Topics[0].Messages[0].Kind != "moved" || r.Topics[0].Messages[0].IndexA != 3 || r.Topics[0].Messages[0].IndexB != 4 {
			t.Errorf("moved message not paired: %+v", r.Topics)
		}
	}
	return []compareCase{
		{name: "order within a topic", b: swapped(), equal: true, check: func(t *testing.T, r *Report) {
			moved(t, r)
			if r.Topics[0].Significant {
				t.Errorf("order difference significant without StrictOrder")
			}
		}},
		{name: "order within a topic, strict", b: swapped(), opts: Options{StrictOrder: true}, check: func(t *testing.T, r *Report) {
			moved(t, r)
			if r.Equal || !r.Topics[0].Significant {
				t.Errorf("order difference not significant with StrictOrder")
			}
		}},
		{name: "retained state restored by play (3.1.1)", b: asReplayed(false), equal: true, check: func(t *testing.T, r *Report) {
			if r.B.Retained != 1 || r.B.Messages != r.A.Messages || len(r.Topics) != 0 {
				t.Errorf("restored state not recognised: %+v %+v", r.B, r.Topics)
			}
		}},
		{name: "retained state restored by play (5)", b: asReplayed(true), equal: true},
		{name: "retained state restored into a broker that held it", b: replayedAgain(), equal: true, check: func(t *testing.T, r *Report) {
			if r.B.Retained != 1 || r.B.Messages != r.A.Messages || len(r.Topics) != 0 || len(r.Retain) != 0 {
				t.Errorf("repeated restore not recognised: %+v %+v %+v", r.B, r.Topics, r.Retain)
			}
		}},
		{name: "retained payload as live traffic, not a restore", b: append(asReplayed(false), msg{12, "home/door", "open", 1, false, false, nil}),
			check: func(t *testing.T, r *Report) {
				if len(r.OnlyInB) != 1 || r.OnlyInB[0] != (TopicCount{"home/door", 2}) || len(r.Retain) != 1 {
					t.Errorf("two live messages taken for a restore: %+v %+v", r.OnlyInB, r.Retain)
				}
			}},
	}
}

func TestCompare(t *testing.T) {
	ctx := context.Background()
	a := capture(t, base(0))
	tests := slices.Concat(compareFieldCases(t), compareCountCases(), compareContentCases(t), compareReplayCases())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compare(ctx, a, "a.db", capture(t, tt.b), "b.db", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if r.Equal != tt.equal && tt.check == nil || (tt.check != nil && r.Equal && !tt.equal) {
				t.Fatalf("equal = %v, want %v\n%s", r.Equal, tt.equal, text.String())
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if !strings.Contains(text.String(), r.Verdict()) {
				t.Errorf("text report lacks the verdict:\n%s", text.String())
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				t.Log("\n" + text.String())
			}
		})
	}
}

func TestFieldDiffsAndPaths(t *testing.T) {
	tests := []struct {
		a, b, ignore string
		want         string // path=a>b;...
	}{
		{`{"a":1}`, `{"a":1.0}`, "", ""},
		{`{"a":21.0,"b":[1,2]}`, `{"a":22.50,"b":[1]}`, "b[0]", "a=21.0>22.50;b[1]=2>"},
		{`{"a":{"b":[1,2,3]}}`, `{"a":{"b":[1,5]}}`, "", "a.b[1]=2>5;a.b[2]=3>"},
		{`{"a":{"b":[1,2,3]}}`, `{"a":{"b":[1,5,3]}}`, "a.b[1]", ""},
		{`{"r":[{"t":1,"v":2},{"t":3,"v":4}]}`, `{"r":[{"t":9,"v":2},{"t":8,"v":5}]}`, "r[*].t", "r[1].v=4>5"},
		{`{"x":{"ts":1},"ts":2,"y":[{"ts":3}]}`, `{"x":{"ts":5},"ts":6,"y":[{"ts":7}]}`, "**.ts", ""},
		{`{"x":{"ts":1},"ts":2}`, `{"x":{"ts":5},"ts":6}`, "*.ts", "ts=2>6"},
		{`{"a b":1,"k":"v"}`, `{"a b":2}`, "", `["a b"]=1>2;k="v">`},
		{`[1,{"z":null}]`, `[1,{"z":false}]`, "", "[1].z=null>false"},
		{`{"a":"1"}`, `{"a":1}`, "", `a="1">1`},
		{`{"big":12345678901234567890}`, `{"big":12345678901234567891}`, "", "big=12345678901234567890>12345678901234567891"},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			var ignore []Path
			if tt.ignore != "" {
				ignore = paths(t, tt.ignore)
			}
			va, ok1 := parseJSON([]byte(tt.a))
			vb, ok2 := parseJSON([]byte(tt.b))
			if !ok1 || !ok2 {
				t.Fatal("not JSON")
			}
			fd, _ := fieldDiffs(prune(va, ignore, nil), prune(vb, ignore, nil))
			var got []string
			for _, f := range fd {
				got = append(got, fmt.Sprintf("%s=%s>%s", f.Path, f.A, f.B))
			}
			if s := strings.Join(got, ";"); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
			// The hash agrees with the field comparison.
			c := &comparer{opts: Options{IgnoreFields: ignore}, seed: maphash.MakeSeed()}
			if eq := c.payloadHash([]byte(tt.a)) == c.payloadHash([]byte(tt.b)); eq != (tt.want == "") {
				t.Errorf("hash equal = %v, field diffs %q", eq, tt.want)
			}
		})
	}
	for _, bad := range []string{"", ".", "a..b", "a[", "a[x]", "a]b", "a[-1]"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
	for _, notJSON := range []string{`21.5`, `"s"`, `{"a":1} x`, `{"a":`, `[1,2`, ``} {
		if _, ok := parseJSON([]byte(notJSON)); ok {
			t.Errorf("parseJSON(%q) accepted", notJSON)
		}
	}
}

// checkOps checks that ops pair every element of a and b once, equal,
// change, delete and insert steps in order, with equal steps and moves only
// on equal elements. A move counts as two edits (a deletion and an
// insertion), like a change.
func checkOps(t *testing.T, a, b []uint64, ops []op) (edits int) {
	t.Helper()
	movedA, movedB := map[int]bool{}, map[int]bool{}
	for _, o := range ops {
		if o.kind == opMove {
			if a[o.i] != b[o.j] || movedA[o.i] || movedB[o.j] {
				t.Fatalf("bad move %+v (a=%v b=%v)", o, a, b)
			}
			movedA[o.i], movedB[o.j] = true, true
			edits += 2
		}
	}
	i, j := 0, 0
	skip := func() {
		for movedA[i] {
			i++
		}
		for movedB[j] {
			j++
		}
	}
	for _, o := range ops {
		skip()
		switch o.kind {
		case opEqual, opChange:
			if o.i != i || o.j != j || (o.kind == opEqual) != (a[i] == b[j]) {
				t.Fatalf("bad step %+v at i=%d j=%d (a=%v b=%v)", o, i, j, a, b)
			}
			i, j = i+1, j+1
		case opDelete:
			if o.i != i {
				t.Fatalf("bad delete %+v at %d", o, i)
			}
			i++
		case opInsert:
			if o.j != j {
				t.Fatalf("bad insert %+v at %d", o, j)
			}
			j++
		}
		switch o.kind {
		case opChange:
			edits += 2 // a deletion and an insertion, paired
		case opDelete, opInsert:
			edits++
		}
	}
	skip()
	if i != len(a) || j != len(b) {
		t.Fatalf("ops cover %d/%d and %d/%d", i, len(a), j, len(b))
	}
	return edits
}

func TestAlign(t *testing.T) {
	tests := []struct {
		a, b  string
		edits int
	}{
		{"abcdef", "abcdef", 0},
		{"abcdef", "abdef", 1},
		{"abcdef", "abXdef", 2},
		{"abcdef", "abcXdef", 1},
		{"", "abc", 3},
		{"abc", "", 3},
		{"abcabba", "cbabac", 5},
	}
	for _, tt := range tests {
		a, b := runes(tt.a), runes(tt.b)
		if got := checkOps(t, a, b, align(a, b)); got != tt.edits {
			t.Errorf("align(%q, %q): %d edits, want %d", tt.a, tt.b, got, tt.edits)
		}
	}
	// A message that moved is paired, not deleted and inserted.
	if ops := align(runes("abcd"), runes("acbd")); len(ops) != 4 || ops[1].kind != opMove {
		t.Errorf("align(abcd, acbd) = %+v, want one move", ops)
	}
	// Beyond maxEdits, matched by content: a shuffle is all moves and equal steps.
	rng := rand.New(rand.NewPCG(1, 2))
	var p []uint64
	for k := range 4 * maxEdits {
		p = append(p, uint64(k%500))
	}
	q := slices.Clone(p)
	rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
	for _, o := range align(p, q) {
		if o.kind != opEqual && o.kind != opMove {
			t.Fatalf("shuffle aligned with %+v", o)
		}
	}
	checkOps(t, p, q, align(p, q))
	// Unrelated sequences beyond maxEdits: paired as changes.
	var a, b []uint64
	for range 3 * maxEdits {
		a, b = append(a, rng.Uint64()), append(b, rng.Uint64())
	}
	if got := checkOps(t, a, b, align(a, b)); got != 2*len(a) {
		t.Errorf("unrelated sequences: %d edits", got)
	}
}

func runes(s string) []uint64 {
	var out []uint64
	for _, r := range s {
		out = append(out, uint64(r))
	}
	return out
}

func FuzzAlign(f *testing.F) {
	f.Add([]byte("abcabba"), []byte("cbabac"))
	f.Add([]byte(""), []byte("x"))
	f.Fuzz(func(t *testing.T, x, y []byte) {
		var a, b []uint64
		for _, c := range x {
			a = append(a, uint64(c%4))
		}
		for _, c := range y {
			b = append(b, uint64(c%4))
		}
		checkOps(t, a, b, align(a, b))
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"a.b[2].c", "**.ts", "r[*].t", "$.x", "a[", "[0][1]"} {
		f.Add(s, `{"a":{"b":[0,1,{"c":2}]},"r":[{"t":1}],"ts":3}`)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		p, err := ParsePath(path)
		if err != nil {
			return
		}
		v, ok := parseJSON([]byte(doc))
		if !ok {
			return
		}
		var b bytes.Buffer
		canonical(&b, prune(v, []Path{p}, nil))
		if _, ok := parseJSON(bytes.ReplaceAll(b.Bytes(), []byte("~"), []byte("null"))); !ok && isJSONDoc(b.Bytes()) {
			t.Errorf("canonical form of %q is not JSON: %s", doc, b.String())
		}
	})
}

// TestCompareProperties: MQTT 5 properties are part of a message's identity
// (subscription identifiers excepted) and show as "(properties)".
func TestCompareProperties(t *testing.T) {
	ctx := context.Background()
	props := func(v string, subID int) *mqtt.Properties {
		return &mqtt.Properties{ContentType: "application/json",
			UserProperties: []mqtt.UserProperty{{Key: "k", Value: v}}, SubscriptionIDs: []int{subID}}
	}
	a := capture(t, []msg{{at: 0, topic: "t", payload: "{}", props: props("1", 1)}, {at: 1, topic: "t", payload: "{}"}})
	same := capture(t, []msg{{at: 0, topic: "t", payload: "{}", props: props("1", 7)}, {at: 1, topic: "t", payload: "{}"}})
	other := capture(t, []msg{{at: 0, topic: "t", payload: "{}", props: props("2", 1)}, {at: 1, topic: "t", payload: "{}"}})
	r, err := Compare(ctx, a, "a.db", same, "same.db", Options{})
	if err != nil || !r.Equal {
		t.Fatalf("same properties (other subscription id): equal=%v %v", r != nil && r.Equal, err)
	}
	r, err = Compare(ctx, a, "a.db", other, "other.db", Options{})
	if err != nil || r.Equal {
		t.Fatalf("different user property compared equal: %v", err)
	}
	var buf strings.Builder
	r.WriteText(&buf)
	if !strings.Contains(buf.String(), "(properties)") {
		t.Errorf("report does not name the properties:\n%s", buf.String())
	}
}
