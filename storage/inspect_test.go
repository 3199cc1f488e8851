package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/mqtt"
)

// inspectFixture writes two sessions of mixed messages and returns the
// capture (read-only) with the messages as written.
func inspectFixture(t *testing.T) (*Capture, []Message) {
	t.Helper()
	ctx := context.Background()
	c, path := newCapture(t)
	rnd := rand.New(rand.NewPCG(7, 7))
	topics := []string{"a/b", "a/c", "b", "wohnzimmer/temperatür", "odd topic/x"}
	var all []Message
	for si := range 2 {
		s := begin(t, c)
		var msgs []Message
		for i := range 300 {
			p := []byte(fmt.Sprintf(`{"i":%d}`, i))
			if i%17 == 0 {
				p = append(p, " needle"...)
			}
			if i%5 == 0 {
				p = append(p, 0, 0xff)
			}
			msgs = append(msgs, Message{TimeNS: 1e18 + int64(si)*1e12 + int64(i)*1e6, OffsetNS: int64(i) * 1e6,
				Topic: topics[rnd.IntN(len(topics))], QoS: byte(rnd.IntN(3)), FromStore: i < 3, Retain: i < 3, Payload: p})
		}
		if err := s.Write(ctx, msgs, nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, 1e18+int64(si)*1e12+1e9, "count", 0); err != nil {
			t.Fatal(err)
		}
		all = append(all, msgs...)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, all
}

// preparedCase is one selection of TestPreparedMatchesReference with the
// same selection written as a Go predicate over the messages.
type preparedCase struct {
	name string
	sel  Query
	want func(m Message) bool
}

// preparedCases lists the selections; ids maps topic names to their ids.
func preparedCases(ids map[string]int64) []preparedCase {
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	return []preparedCase{
		{"all", Query{}, func(Message) bool { return true }},
		{"no topics", Query{TopicIDs: []int64{}}, func(Message) bool { return false }},
		{"two topics", Query{TopicIDs: []int64{ids["a/b"], ids["odd topic/x"]}},
			func(m Message) bool { return m.Topic == "a/b" || m.Topic == "odd topic/x" }},
		{"qos 1,2", Query{QoS: []byte{1, 2}}, func(m Message) bool { return m.QoS >= 1 }},
		{"no qos", Query{QoS: []byte{}}, func(Message) bool { return false }},
		{"from store", Query{FromStore: &yes}, func(m Message) bool { return m.FromStore }},
		{"live only", Query{FromStore: &no}, func(m Message) bool { return !m.FromStore }},
		{"two substrings", Query{PayloadContains: [][]byte{[]byte("needle"), {0, 0xff}}},
			func(m Message) bool {
				return bytes.Contains(m.Payload, []byte("needle")) && bytes.Contains(m.Payload, []byte{0, 0xff})
			}},
		{"go predicate", Query{PayloadMatch: func(p []byte) bool { return bytes.HasSuffix(p, []byte("7}")) }},
			func(m Message) bool { return bytes.HasSuffix(m.Payload, []byte("7}")) }},
		{"message predicate", Query{MessageMatch: func(m *Message) bool { return m.Topic == "a/b" && bytes.HasSuffix(m.Payload, []byte("7}")) }},
			func(m Message) bool { return m.Topic == "a/b" && bytes.HasSuffix(m.Payload, []byte("7}")) }},
		{"both predicates", Query{PayloadMatch: func(p []byte) bool { return bytes.Contains(p, []byte("1")) },
			MessageMatch: func(m *Message) bool { return m.Session == 2 }},
			func(m Message) bool { return m.Session == 2 && bytes.Contains(m.Payload, []byte("1")) }},
		{"offset range", Query{FromOffset: i64(10e6), ToOffset: i64(20e6), Session: 2},
			func(m Message) bool { return m.Session == 2 && m.OffsetNS >= 10e6 && m.OffsetNS < 20e6 }},
		{"time range", Query{FromTime: i64(1e18 + 250e6), ToTime: i64(1e18 + 1e12 + 5e6), TopicIDs: []int64{ids["b"]}},
			func(m Message) bool { return m.Topic == "b" && m.TimeNS >= 1e18+250e6 && m.TimeNS < 1e18+1e12+5e6 }},
		{"empty time range", Query{FromTime: i64(5e18)}, func(Message) bool { return false }},
	}
}

func TestPreparedMatchesReference(t *testing.T) {
	ctx := context.Background()
	c, all := inspectFixture(t)
	ids := map[string]int64{}
	topics, err := c.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		ids[tp.Name] = tp.ID
	}
	for _, tc := range preparedCases(ids) {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Prepare(ctx, tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, m := range all {
				if tc.want(m) {
					want = append(want, m.Seq)
				}
			}
			var got []int64
			for seq, err := range p.Seqs(ctx, 0, 1<<62) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, seq)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Seqs = %v\nwant %v", got, want)
			}
			if n, err := p.Count(ctx, 0, 1<<62); err != nil || n != int64(len(want)) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(want))
			}
			checkPreparedWindow(t, p, want)
			checkPreparedMessages(t, p, want)
		})
	}
}

// checkPreparedWindow reads a middle window of seqs in both directions with
// a limit, and counts it, against the reference seqs want.
func checkPreparedWindow(t *testing.T, p *Prepared, want []int64) {
	t.Helper()
	ctx := context.Background()
	lo, hi := int64(150), int64(450)
	var win []int64
	for _, s := range want {
		if s >= lo && s <= hi {
			win = append(win, s)
		}
	}
	rows, err := p.Rows(ctx, lo, hi, 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := rowSeqs(rows), win[:min(10, len(win))]; !slices.Equal(got, w) {
		t.Errorf("Rows = %v, want %v", got, w)
	}
	back, err := p.RowsBefore(ctx, lo, hi, 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	w := slices.Clone(win)
	slices.Reverse(w)
	if got := rowSeqs(back); !slices.Equal(got, w[:min(10, len(w))]) {
		t.Errorf("RowsBefore = %v, want %v", got, w[:min(10, len(w))])
	}
	if n, err := p.Count(ctx, lo, hi); err != nil || n != int64(len(win)) {
		t.Errorf("Count(window) = %d, %v; want %d", n, err, len(win))
	}
}

// checkPreparedMessages reads whole messages forward from seq 100 and
// backward from the end against the reference seqs want.
func checkPreparedMessages(t *testing.T, p *Prepared, want []int64) {
	t.Helper()
	ctx := context.Background()
	var fwd, rev []int64
	for m, err := range p.Messages(ctx, 100, false) {
		if err != nil {
			t.Fatal(err)
		}
		fwd = append(fwd, m.Seq)
	}
	for m, err := range p.Messages(ctx, 0, true) {
		if err != nil {
			t.Fatal(err)
		}
		rev = append(rev, m.Seq)
	}
	var after []int64
	for _, s := range want {
		if s > 100 {
			after = append(after, s)
		}
	}
	rw := slices.Clone(want)
	slices.Reverse(rw)
	if !slices.Equal(fwd, after) || !slices.Equal(rev, rw) {
		t.Errorf("Messages: forward %v, reverse %v", fwd, rev)
	}
}

func rowSeqs(rows []Row) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.Seq)
	}
	return out
}

func TestRowsCarryPreviewAndMetadata(t *testing.T) {
	ctx := context.Background()
	c, all := inspectFixture(t)
	p, err := c.Prepare(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, preview := range []int{0, 3, 1000} {
		rows, err := p.Rows(ctx, 1, 600, 600, preview)
		if err != nil {
			t.Fatal(err)
		}
		bySeq, err := c.RowsBySeq(ctx, []int64{5, 1, 600, 9999}, preview)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowSeqs(bySeq); !slices.Equal(got, []int64{1, 5, 600}) {
			t.Errorf("RowsBySeq seqs = %v", got)
		}
		if len(rows) != len(all) {
			t.Fatalf("got %d rows, want %d", len(rows), len(all))
		}
		for i, r := range rows {
			m := all[i]
			if r.Seq != m.Seq || r.Topic != m.Topic || r.QoS != m.QoS || r.FromStore != m.FromStore || r.Retain != m.Retain ||
				r.TimeNS != m.TimeNS || r.OffsetNS != m.OffsetNS || r.Session != m.Session || r.Size != len(m.Payload) ||
				!bytes.Equal(r.Preview, m.Payload[:min(preview, len(m.Payload))]) {
				t.Fatalf("row %d = %+v, message %+v", i, r, m)
			}
		}
	}
}

func TestTopicCountsAndNeighbours(t *testing.T) {
	ctx := context.Background()
	c, all := inspectFixture(t)
	topics, _ := c.Topics(ctx)
	name := map[int64]string{}
	for _, tp := range topics {
		name[tp.ID] = tp.Name
	}
	counts, err := c.TopicCounts(ctx, 100, 500)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, m := range all {
		if m.Seq >= 100 && m.Seq <= 500 {
			want[m.Topic]++
		}
	}
	got := map[string]int64{}
	for id, n := range counts {
		got[name[id]] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("TopicCounts = %v, want %v", got, want)
	}

	lo, hi, err := c.SeqBounds(ctx)
	if err != nil || lo != 1 || hi != int64(len(all)) {
		t.Errorf("SeqBounds = %d, %d, %v", lo, hi, err)
	}

	last := all[len(all)-1]
	var prev Message
	for _, m := range all[:len(all)-1] {
		if m.Topic == last.Topic {
			prev = m
		}
	}
	got1, ok, err := c.PrevOnTopic(ctx, last.Seq, last.Topic)
	if err != nil || !ok || got1.Seq != prev.Seq || !bytes.Equal(got1.Payload, prev.Payload) {
		t.Errorf("PrevOnTopic = %d %v %v, want %d", got1.Seq, ok, err, prev.Seq)
	}
	if _, ok, err := c.PrevOnTopic(ctx, 1, all[0].Topic); ok || err != nil {
		t.Errorf("PrevOnTopic before the first = %v, %v", ok, err)
	}
	if _, ok, err := c.PrevOnTopic(ctx, 100, "no/such/topic"); ok || err != nil {
		t.Errorf("PrevOnTopic of unknown topic = %v, %v", ok, err)
	}

	for _, tc := range []struct {
		ts   int64
		want int64
	}{{0, 1}, {1e18 + 10e6, 11}, {1e18 + 10e6 + 1, 12}, {1e18 + 1e12, 301}, {1e18 + 2e12, 0}} {
		if got, err := c.SeqAtTime(ctx, tc.ts); err != nil || got != tc.want {
			t.Errorf("SeqAtTime(%d) = %d, %v; want %d", tc.ts, got, err, tc.want)
		}
	}
	if got, err := c.SeqAtOffset(ctx, 2, 5e6); err != nil || got != 306 {
		t.Errorf("SeqAtOffset(2, 5ms) = %d, %v; want 306", got, err)
	}
	if got, err := c.SeqAtOffset(ctx, 0, 5e6); err != nil || got != 6 {
		t.Errorf("SeqAtOffset(0, 5ms) = %d, %v; want 6", got, err)
	}
}

func TestInspectQueriesOnEmptyCapture(t *testing.T) {
	ctx := context.Background()
	c, path := newCapture(t)
	begin(t, c)
	c.Close()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if lo, hi, err := r.SeqBounds(ctx); lo != 0 || hi != 0 || err != nil {
		t.Errorf("SeqBounds = %d, %d, %v", lo, hi, err)
	}
	p, err := r.Prepare(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := p.Rows(ctx, 0, 1<<62, 10, 10); len(rows) != 0 || err != nil {
		t.Errorf("Rows = %v, %v", rows, err)
	}
	if counts, err := r.TopicCounts(ctx, 0, 1<<62); len(counts) != 0 || err != nil {
		t.Errorf("TopicCounts = %v, %v", counts, err)
	}
	if seq, err := r.SeqAtTime(ctx, 0); seq != 0 || err != nil {
		t.Errorf("SeqAtTime = %d, %v", seq, err)
	}
}

// TestPreparedReadsWholeMessages: the inspector's reads (its export, the
// previous message on a topic) carry the publisher's client id and the MQTT
// 5 properties, like Messages and Get: one column list for every read.
func TestPreparedReadsWholeMessages(t *testing.T) {
	ctx := context.Background()
	c, _ := newCapture(t)
	s := begin(t, c)
	props := &mqtt.Properties{ContentType: "application/json", UserProperties: []mqtt.UserProperty{{Key: "k", Value: "v"}}}
	msgs := []Message{
		{TimeNS: 1e18, Topic: "a", QoS: 1, Payload: []byte("1"), ClientID: "dev-1", Props: props},
		{TimeNS: 1e18 + 1, Topic: "a", QoS: 1, Payload: []byte("2"), ClientID: "dev-2", Props: props},
	}
	if err := s.Write(ctx, msgs, nil, 1e18+1); err != nil {
		t.Fatal(err)
	}
	p, err := c.Prepare(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Message
	for m, err := range p.Messages(ctx, 0, false) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	prev, ok, err := c.PrevOnTopic(ctx, got[1].Seq, "a")
	if err != nil || !ok {
		t.Fatalf("PrevOnTopic: %v %v", ok, err)
	}
	for m, err := range c.MessagesBySeq(ctx, []int64{got[1].Seq, 999, got[0].Seq}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 4 || got[2].Seq != got[0].Seq || got[3].Seq != got[1].Seq {
		t.Errorf("MessagesBySeq: %+v", got[2:])
	}
	for _, m := range append(got, prev) {
		if m.ClientID == "" || m.Props == nil || m.Props.ContentType != "application/json" || len(m.Props.UserProperties) != 1 {
			t.Errorf("message %d read without its client id or properties: %+v", m.Seq, m)
		}
	}
	// A MessageMatch sees the topic and properties in every read: the
	// inspector's table, counts and statistics and the reader.
	q := Query{MessageMatch: func(m *Message) bool {
		return m.Topic == "a" && m.Props != nil && m.Props.ContentType == "application/json" && string(m.Payload) == "2"
	}}
	if p, err = c.Prepare(ctx, q); err != nil {
		t.Fatal(err)
	}
	rows, err := p.Rows(ctx, 0, 1<<62, 10, 1)
	if err != nil || len(rows) != 1 || rows[0].Seq != got[1].Seq || string(rows[0].Preview) != "2" || rows[0].Size != 1 {
		t.Errorf("Rows = %+v, %v", rows, err)
	}
	if n, err := c.Count(ctx, q); n != 1 || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
	if tot, per, err := c.StatsOf(ctx, q); err != nil || tot.Messages != 1 || len(per) != 1 || per[0].Count != 1 {
		t.Errorf("StatsOf = %+v %+v %v", tot, per, err)
	}
}

func TestTopicBucketsMatchReference(t *testing.T) {
	ctx := context.Background()
	c, all := inspectFixture(t)
	topics, _ := c.Topics(ctx)
	name := map[int64]string{}
	for _, tp := range topics {
		name[tp.ID] = tp.Name
	}
	for _, tc := range []struct {
		from, through int64
		shift         uint
	}{{100, 500, 5}, {1, int64(len(all)), 6}, {33, 33, 4}, {0, 1 << 20, 8}, {7, 3, 2}} {
		got, err := c.TopicBuckets(ctx, tc.from, tc.through, tc.shift)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]int64{}
		if tc.from <= tc.through {
			nb := tc.through>>tc.shift - tc.from>>tc.shift + 1
			for _, m := range all {
				if m.Seq < tc.from || m.Seq > tc.through {
					continue
				}
				if want[m.Topic] == nil {
					want[m.Topic] = make([]int64, nb)
				}
				want[m.Topic][m.Seq>>tc.shift-tc.from>>tc.shift]++
			}
		}
		gotNamed := map[string][]int64{}
		for id, v := range got {
			gotNamed[name[id]] = v
		}
		if fmt.Sprint(gotNamed) != fmt.Sprint(want) {
			t.Errorf("TopicBuckets(%d, %d, %d) = %v, want %v", tc.from, tc.through, tc.shift, gotNamed, want)
		}
	}
}

// TestSpreadRowsMatchReference pages selections of several topics with the
// seq-order window too small, so the rest is read topic by topic through
// the index and merged, in both directions.
func TestSpreadRowsMatchReference(t *testing.T) {
	ctx := context.Background()
	c, _ := inspectFixture(t) // the reference is Seqs (one query in seq order)
	defer func(w int64) { spreadWindow = w }(spreadWindow)
	sels := map[string]Query{
		"ids":   {TopicIDs: []int64{1, 3, 4}},
		"match": {Match: func(name string) bool { return strings.HasPrefix(name, "a/") || name == "b" }, QoS: []byte{0, 1}},
	}
	for name, sel := range sels {
		p, err := c.Prepare(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.spread) < 2 {
			t.Fatalf("%s: spread = %v; want the topic ids", name, p.spread)
		}
		var want []int64
		for seq, err := range p.Seqs(ctx, 0, 1<<62) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, seq)
		}
		for _, window := range []int64{1, 7, 1 << 20} {
			spreadWindow = window
			for _, r := range [][2]int64{{0, 1 << 62}, {150, 450}, {599, 601}} {
				var win []int64
				for _, s := range want {
					if s >= r[0] && s <= r[1] {
						win = append(win, s)
					}
				}
				for _, limit := range []int{1, 10, 1000} {
					rows, err := p.Rows(ctx, r[0], r[1], limit, 4)
					if got, w := rowSeqs(rows), win[:min(limit, len(win))]; err != nil || !slices.Equal(got, w) {
						t.Errorf("%s window %d: Rows(%v, %d) = %v, %v; want %v", name, window, r, limit, got, err, w)
					}
					back, err := p.RowsBefore(ctx, r[0], r[1], limit, 4)
					w := slices.Clone(win)
					slices.Reverse(w)
					if got := rowSeqs(back); err != nil || !slices.Equal(got, w[:min(limit, len(w))]) {
						t.Errorf("%s window %d: RowsBefore(%v, %d) = %v, %v; want %v", name, window, r, limit, got, err, w[:min(limit, len(w))])
					}
				}
			}
		}
	}
}

// TestSpreadAndBucketsAfterIndexDropped: a recording that starts on the
// capture while it is inspected drops the topic index; selections prepared
// before, and the bucket counts, read on without it.
func TestSpreadAndBucketsAfterIndexDropped(t *testing.T) {
	ctx := context.Background()
	fixture, all := inspectFixture(t)
	defer func(w int64) { spreadWindow = w }(spreadWindow)
	spreadWindow = 5
	w, err := OpenWrite(fixture.Path()) // its -wal makes readers see what it writes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := Open(fixture.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.Prepare(ctx, Query{TopicIDs: []int64{1, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.spread) < 2 {
		t.Fatalf("spread = %v; want the topic ids", p.spread)
	}
	before, err := p.Rows(ctx, 0, 1<<62, 50, 4)
	if err != nil {
		t.Fatal(err)
	}
	begin(t, w) // drops the topic index
	if indexed, err := c.HasTopicIndex(ctx); indexed || err != nil {
		t.Fatalf("HasTopicIndex = %v, %v after a session began", indexed, err)
	}
	after, err := p.Rows(ctx, 0, 1<<62, 50, 4)
	if err != nil || !slices.Equal(rowSeqs(after), rowSeqs(before)) {
		t.Errorf("Rows without the index = %v, %v; want %v", rowSeqs(after), err, rowSeqs(before))
	}
	buckets, err := c.TopicBuckets(ctx, 1, int64(len(all)), 7)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, v := range buckets {
		for _, n := range v {
			sum += n
		}
	}
	if sum != int64(len(all)) {
		t.Errorf("TopicBuckets without the index counted %d messages, want %d", sum, len(all))
	}
}
