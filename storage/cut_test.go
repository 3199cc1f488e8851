package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// cutInput: session 1 with retained state that changes over time (as
// serve records it: live retained messages keep retain=1), and a short
// session 2 an hour later.
func cutInput(t *testing.T) string {
	t.Helper()
	s1 := testSession{
		info: SessionInfo{Source: "subscriber", Broker: "mqtt://a", ClientID: "rec", Protocol: 5, StartedNS: t0, Dropped: 3,
			Filters: []Filter{{Filter: "home/#", QoS: 1, Granted: 1}}},
		msgs: []Message{
			{OffsetNS: 0, Topic: "home/door", QoS: 1, Retain: true, FromStore: true, Payload: []byte("closed")},
			{OffsetNS: 0, Topic: "home/light", QoS: 1, Retain: true, FromStore: true, Payload: []byte("off")},
			{OffsetNS: 1e9, Topic: "home/light", Retain: true, Payload: []byte("on"), PacketID: 4, Dup: true},
			{OffsetNS: 15e8, Topic: "home/temp", Payload: []byte("20")},
			{OffsetNS: 2e9, Topic: "home/fan", Retain: true, Payload: []byte("fast")},
			{OffsetNS: 3e9, Topic: "home/light", Retain: true, Payload: []byte{}}, // clears the light
			{OffsetNS: 4e9, Topic: "home/door", Retain: true, Payload: []byte("open")},
			{OffsetNS: 5e9, Topic: "home/temp", Payload: []byte("21")},
			{OffsetNS: 6e9, Topic: "home/temp", Payload: []byte("22")},
		},
		events: []Event{{OffsetNS: 0, Kind: EventConnected}, {OffsetNS: 45e8, Kind: "lost"}, {OffsetNS: 55e8, Kind: "back"}},
	}
	s2 := testSession{
		info: SessionInfo{Source: "subscriber", Broker: "mqtt://a", StartedNS: t0 + 3600e9},
		msgs: []Message{
			{OffsetNS: 0, Topic: "a/x", Payload: []byte("1")},
			{OffsetNS: 1e9, Topic: "a/y", Payload: []byte("2")},
		},
	}
	return writeSessions(t, filepath.Join(t.TempDir(), "in.db"), s1, s2)
}

// cutCase is one slice of cutInput and what Cut writes for it.
type cutCase struct {
	name       string
	sel        Query
	want       CutReport
	wantMsgs   string
	wantEvents string
	wantStart  []int64 // the sessions' starts, relative to t0
	wantDrops  []int64 // the sessions' drop counts; nil: not checked
}

func cutCases() []cutCase {
	return []cutCase{
		{
			name: "slice carries the retained state at its start",
			sel:  Query{Session: 1, FromOffset: ptr(int64(35e8)), ToOffset: ptr(int64(55e8))},
			want: CutReport{Messages: 4, Carried: 2, Sessions: 1},
			wantMsgs: strings.Join([]string{
				"s1 0.0s home/door=closed (store)", // the light was cleared at 3 s
				"s1 0.0s home/fan=fast (store)",
				"s1 0.5s home/door=open",
				"s1 1.5s home/temp=21",
			}, "\n"),
			wantEvents: "s1 0.0s cut\ns1 1.0s lost", // "back" at 5.5 s is outside [from, to)
			wantStart:  []int64{35e8},
			wantDrops:  []int64{0}, // drops are not known for a part of the session
		},
		{
			name: "topic selection applies to the carried state too",
			sel:  Query{Session: 1, FromOffset: ptr(int64(35e8)), Match: func(s string) bool { return s == "home/fan" || s == "home/temp" }},
			want: CutReport{Messages: 3, Carried: 1, Sessions: 1},
			wantMsgs: strings.Join([]string{
				"s1 0.0s home/fan=fast (store)",
				"s1 1.5s home/temp=21",
				"s1 2.5s home/temp=22",
			}, "\n"),
			wantEvents: "s1 0.0s cut\ns1 1.0s lost\ns1 2.0s back",
			wantStart:  []int64{35e8},
			wantDrops:  []int64{0},
		},
		{
			name: "no start: every session, a plain copy of the selection",
			sel:  Query{ToOffset: ptr(int64(12e8)), Match: func(s string) bool { return s != "home/temp" }},
			want: CutReport{Messages: 5, Carried: 0, Sessions: 2},
			wantMsgs: strings.Join([]string{
				"s1 0.0s home/door=closed (store)",
				"s1 0.0s home/light=off (store)",
				"s1 1.0s home/light=on",
				"s2 0.0s a/x=1",
				"s2 1.0s a/y=2",
			}, "\n"),
			wantEvents: "s1 0.0s cut\ns1 0.0s connected\ns2 0.0s cut",
			wantStart:  []int64{0, 3600e9},
			wantDrops:  []int64{3, 0}, // each session's own (session 1 once got session 2's)
		},
		{
			name:       "no start: the session's drop count is kept",
			sel:        Query{Session: 1, ToOffset: ptr(int64(1))},
			want:       CutReport{Messages: 2, Carried: 0, Sessions: 1},
			wantMsgs:   "s1 0.0s home/door=closed (store)\ns1 0.0s home/light=off (store)",
			wantEvents: "s1 0.0s cut\ns1 0.0s connected",
			wantStart:  []int64{0},
			wantDrops:  []int64{3},
		},
		{
			name:       "absolute start: a session that ends before it is skipped",
			sel:        Query{FromTime: ptr(t0 + 3600e9 + 5e8)},
			want:       CutReport{Messages: 1, Carried: 0, Sessions: 1},
			wantMsgs:   "s1 0.5s a/y=2",
			wantEvents: "s1 0.0s cut",
			wantStart:  []int64{3600e9 + 5e8},
			wantDrops:  []int64{0},
		},
		{
			name: "empty slice writes nothing",
			sel:  Query{Session: 1, FromOffset: ptr(int64(3600e9))},
			want: CutReport{},
		},
	}
}

func TestCut(t *testing.T) {
	ctx := context.Background()
	in := cutInput(t)
	before, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range cutCases() {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.db")
			ic, oc := openPair(t, in, out)
			var progress atomic.Int64
			rep, err := Cut(ctx, ic, oc, CutOptions{Select: tt.sel, Version: "9.9", Host: "box", Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			if rep != tt.want {
				t.Errorf("report %+v, want %+v", rep, tt.want)
			}
			if got := progress.Load(); got != rep.Messages-rep.Carried {
				t.Errorf("progress %d, want %d", got, rep.Messages-rep.Carried)
			}
			if err := oc.Close(); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			sessions, msgs, events := readAll(t, out)
			if got := describeMsgs(msgs); got != tt.wantMsgs {
				t.Errorf("messages:\n%s\nwant\n%s", got, tt.wantMsgs)
			}
			if got := describeEvents(events); got != tt.wantEvents {
				t.Errorf("events:\n%s\nwant\n%s", got, tt.wantEvents)
			}
			if len(sessions) != len(tt.wantStart) {
				t.Fatalf("%d sessions, want %d", len(sessions), len(tt.wantStart))
			}
			for i, s := range sessions {
				if s.Source != "cut" || s.Version != "9.9" || s.Host != "box" || s.Broker != "mqtt://a" || s.StopReason != "cut" ||
					s.StartedNS-t0 != tt.wantStart[i] || (tt.wantDrops != nil && s.Dropped != tt.wantDrops[i]) {
					t.Errorf("session %d: %+v", i, s)
				}
			}
		})
	}
	if after, _ := os.ReadFile(in); !bytes.Equal(before, after) {
		t.Fatal("cut changed its input")
	}
}

// TestCutCarried checks what a carried message looks like and what the
// "cut" event says.
func TestCutCarried(t *testing.T) {
	ctx := context.Background()
	in := cutInput(t)
	out := filepath.Join(t.TempDir(), "out.db")
	ic, oc := openPair(t, in, out)
	if _, err := Cut(ctx, ic, oc, CutOptions{Select: Query{Session: 1, FromOffset: ptr(int64(25e8))}}); err != nil {
		t.Fatal(err)
	}
	oc.Close()
	sessions, msgs, events := readAll(t, out)
	// At 2.5 s: the door (store), the light turned on live (retain=1,
	// packet id 4, dup) and the fan.
	light := msgs[1]
	if light.Topic != "home/light" || string(light.Payload) != "on" || !light.Retain || !light.FromStore || light.Dup ||
		light.PacketID != 0 || light.TimeNS != t0+25e8 || light.OffsetNS != 0 {
		t.Errorf("carried %+v", light)
	}
	if sessions[0].Protocol != 5 || sessions[0].ClientID != "rec" || len(sessions[0].Filters) != 1 {
		t.Errorf("session %+v", sessions[0])
	}
	var detail map[string]any
	if err := json.Unmarshal([]byte(events[0].Detail), &detail); err != nil || events[0].Kind != "cut" ||
		detail["input"] != in || detail["session"] != 1.0 || detail["from_offset_ns"] != 25e8 || detail["carried_retained"] != 3.0 {
		t.Errorf("cut event %+v (%v)", events[0], err)
	}
}
