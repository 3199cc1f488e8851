package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// merge runs Merge on captures written from the given sessions (one
// capture per element) and returns its report and the output's path.
func merge(t *testing.T, inputs ...[]testSession) (MergeReport, string, []string) {
	t.Helper()
	dir := t.TempDir()
	var caps []*Capture
	var paths []string
	for i, sessions := range inputs {
		p := writeSessions(t, filepath.Join(dir, fmt.Sprintf("in%d.db", i)), sessions...)
		c, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		caps, paths = append(caps, c), append(paths, p)
	}
	out := filepath.Join(dir, "out.db")
	oc, err := OpenWrite(out)
	if err != nil {
		t.Fatal(err)
	}
	var progress atomic.Int64
	rep, err := Merge(context.Background(), caps, oc, MergeOptions{Version: "9.9", Host: "box", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if progress.Load() != rep.Messages {
		t.Errorf("progress %d, messages %d", progress.Load(), rep.Messages)
	}
	if err := oc.Close(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, out)
	return rep, out, paths
}

// at is a message at offset ms (milliseconds) with payload p.
func at(ms int64, p string) Message {
	return Message{OffsetNS: ms * 1e6, Topic: "t", Payload: []byte(p)}
}

// store is a retained-store message on topic at offset ms.
func store(ms int64, topic, p string) Message {
	return Message{OffsetNS: ms * 1e6, Topic: topic, Retain: true, FromStore: true, QoS: 1, Payload: []byte(p)}
}

func TestMergeOrder(t *testing.T) {
	start := func(ms int64) SessionInfo { return SessionInfo{Source: "subscriber", StartedNS: t0 + ms*1e6} }
	tests := []struct {
		name   string
		inputs [][]testSession
		want   string // payloads in the output's order
		report MergeReport
	}{
		{
			name: "interleaved inputs",
			inputs: [][]testSession{
				{{info: start(0), msgs: []Message{at(0, "a0"), at(20, "a2"), at(40, "a4")}}},
				{{info: start(0), msgs: []Message{at(10, "b1"), at(30, "b3")}}},
			},
			want:   "a0 b1 a2 b3 a4",
			report: MergeReport{Messages: 5, Sessions: 2},
		},
		{
			name: "ties keep the inputs' order, then seq",
			inputs: [][]testSession{
				{{info: start(0), msgs: []Message{at(10, "a1"), at(10, "a2")}}},
				{{info: start(0), msgs: []Message{at(0, "b0"), at(10, "b1")}}},
				{{info: start(10), msgs: []Message{at(0, "c1")}}},
			},
			want:   "b0 a1 a2 b1 c1",
			report: MergeReport{Messages: 5, Sessions: 3},
		},
		{
			name: "sessions of one input, and empty sessions skipped",
			inputs: [][]testSession{
				{{info: start(0), msgs: []Message{at(0, "a0")}}, {info: start(50)}, {info: start(100), msgs: []Message{at(0, "a100")}}},
				{{info: start(60), msgs: []Message{at(0, "b60")}}},
			},
			want:   "a0 b60 a100",
			report: MergeReport{Messages: 3, Sessions: 3},
		},
		{
			name: "identical retained-store messages kept once",
			inputs: [][]testSession{
				{{info: start(0), msgs: []Message{store(0, "s", "on"), store(0, "u", "1"), at(10, "a1")}}},
				{{info: start(5), msgs: []Message{store(0, "s", "on"), store(0, "u", "2"), at(10, "b1")}}},
			},
			want:   "on 1 2 a1 b1",
			report: MergeReport{Messages: 5, Sessions: 2, RetainedDuplicates: 1},
		},
		{
			name: "no messages at all writes nothing",
			inputs: [][]testSession{
				{{info: start(0)}},
				{},
			},
			report: MergeReport{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, out, _ := merge(t, tt.inputs...)
			if rep != tt.report {
				t.Errorf("report %+v, want %+v", rep, tt.report)
			}
			sessions, msgs, _ := readAll(t, out)
			var got []string
			for i, m := range msgs {
				got = append(got, string(m.Payload))
				if m.Session != sessions[0].ID || m.OffsetNS != m.TimeNS-sessions[0].StartedNS || (i > 0 && m.TimeNS < msgs[i-1].TimeNS) {
					t.Errorf("message %d: %+v", i, m)
				}
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("order %q, want %q", strings.Join(got, " "), tt.want)
			}
			if wantSessions := min(len(msgs), 1); len(sessions) != wantSessions {
				t.Errorf("%d sessions, want %d", len(sessions), wantSessions)
			}
		})
	}
}

// TestMergeSessionUnion checks the merged session's description and events.
func TestMergeSessionUnion(t *testing.T) {
	a := []testSession{{
		info: SessionInfo{Source: "subscriber", Broker: "mqtt://n1", ClientID: "r1", Protocol: 4, StartedNS: t0 + 2e9, Dropped: 2,
			Filters: []Filter{{Filter: "$share/g/#", QoS: 1, Granted: 1}}},
		msgs:   []Message{{OffsetNS: 0, Topic: "x", Retain: true, FromStore: true, Payload: []byte("r")}},
		events: []Event{{OffsetNS: 1e9, Kind: "lost"}},
	}}
	b := []testSession{{
		info: SessionInfo{Source: "broker", Broker: "mqtt://n2", ClientID: "r2", Protocol: 5, StartedNS: t0, Dropped: 5,
			Filters: []Filter{{Filter: "$share/g/#", QoS: 1, Granted: 1}, {Filter: "extra", QoS: 0}}},
		msgs:   []Message{{OffsetNS: 5e9, Topic: "y", Payload: []byte("live")}},
		events: []Event{{OffsetNS: 0, Kind: EventConnected}},
	}, {
		info: SessionInfo{Source: "subscriber", Broker: "mqtt://n1", ClientID: "r2", StartedNS: t0 + 10e9},
		msgs: []Message{{OffsetNS: 0, Topic: "z", Payload: []byte("late")}},
	}}
	rep, out, paths := merge(t, a, b)
	if rep != (MergeReport{Messages: 3, Sessions: 3}) {
		t.Errorf("report %+v", rep)
	}
	sessions, msgs, events := readAll(t, out)
	s := sessions[0]
	if len(sessions) != 1 || s.Source != "merge" || s.StartedNS != t0 || s.Broker != "mqtt://n1 mqtt://n2" || s.ClientID != "r1 r2" ||
		s.Protocol != 5 || s.Dropped != 7 || s.Version != "9.9" || s.Host != "box" || s.StopReason != "merge" || len(s.Filters) != 2 {
		t.Errorf("session %+v", sessions)
	}
	if !msgs[0].FromStore || !msgs[0].Retain || msgs[0].OffsetNS != 2e9 || msgs[2].OffsetNS != 10e9 {
		t.Errorf("messages %+v", msgs)
	}
	want := strings.Join([]string{"s1 0.0s merged", "s1 0.0s connected", "s1 2.0s merged", "s1 3.0s lost", "s1 10.0s merged"}, "\n")
	if got := describeEvents(events); got != want {
		t.Errorf("events:\n%s\nwant\n%s", got, want)
	}
	var detail map[string]any
	if err := json.Unmarshal([]byte(events[2].Detail), &detail); err != nil || detail["input"] != paths[0] ||
		detail["session"] != 1.0 || detail["broker"] != "mqtt://n1" || detail["client_id"] != "r1" || detail["source"] != "subscriber" {
		t.Errorf("merged event %s (%v)", events[2].Detail, err)
	}
}
