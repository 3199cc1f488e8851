package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// splitRecording is a split recording written part by part as record
// --split-* writes it, and its messages as the recorder got them.
type splitRecording struct {
	parts []string
	msgs  []Message
	last  *Capture // the last part's writer when left open (live)
	sess  *Session
}

// writeSplit writes n random messages as len(cuts)+1 parts of one
// recording: retained-store rows at the start, retained publishes among
// them (carried into the following parts), new topics appearing in later
// parts. With live the last part's session is left open (its writer in
// the result).
func writeSplit(t *testing.T, dir, recording string, rng *rand.Rand, n int, cuts []int, live bool) *splitRecording {
	t.Helper()
	ctx := context.Background()
	start := t0
	ts := start
	var msgs []Message
	for i := range n {
		ts += rng.Int64N(3e8) // several in one second, some seconds apart
		part := 0
		for _, c := range cuts {
			if i >= c {
				part++
			}
		}
		m := Message{TimeNS: ts, Topic: fmt.Sprintf("dev/%d", rng.IntN(2+2*part)), QoS: byte(rng.IntN(3)),
			Payload: fmt.Appendf(nil, `{"n":%d,"v":%d}`, i, rng.IntN(100))}
		switch {
		case i < 2:
			m.Topic, m.Retain, m.FromStore = fmt.Sprintf("state/%d", i), true, true
		case rng.IntN(6) == 0:
			m.Topic, m.Retain = fmt.Sprintf("state/%d", rng.IntN(3)), true
		case rng.IntN(9) == 0:
			m.Payload = bytes.Repeat([]byte("x"), 300) // over a small MaxPayload
		}
		msgs = append(msgs, m)
	}
	info := SessionInfo{Source: "subscriber", Broker: "mqtt://b", ClientID: "rec", Protocol: 4, CleanSession: true,
		Filters: []Filter{{Filter: "#", QoS: 2, Granted: 2}}, StartedNS: start, Version: "test", Host: "h"}
	r := &splitRecording{msgs: msgs}
	bounds := append(append([]int{0}, cuts...), n)
	var state RetainedState
	prev := ""
	for k := 0; k+1 < len(bounds); k++ {
		path := filepath.Join(dir, PartName("run.db", k+1, time.Time{}))
		if k > 0 {
			info.StartedNS = (msgs[bounds[k]-1].TimeNS + msgs[bounds[k]].TimeNS) / 2
		}
		c, sess, err := CreatePart(ctx, path, info, PartStart{Recording: recording, Number: k + 1, Previous: prev, Retained: state.Messages()})
		if err != nil {
			t.Fatal(err)
		}
		part := append([]Message(nil), msgs[bounds[k]:bounds[k+1]]...)
		for i := range part {
			part[i].OffsetNS = part[i].TimeNS - info.StartedNS
			state.Observe(&part[i])
		}
		lastTS := info.StartedNS
		if len(part) > 0 {
			lastTS = part[len(part)-1].TimeNS
		}
		ev := []Event{{TimeNS: lastTS, OffsetNS: lastTS - info.StartedNS, Kind: EventConnectionLost, Detail: fmt.Sprint(k)}}
		if err := sess.Write(ctx, part, ev, lastTS); err != nil {
			t.Fatal(err)
		}
		switch {
		case k+2 < len(bounds):
			next := filepath.Join(dir, PartName("run.db", k+2, time.Time{}))
			err = EndPart(ctx, c, sess, PartLink{Recording: recording, Part: k + 1, Next: next}, lastTS+1, int64(k))
		case live:
			r.last, r.sess = c, sess
			t.Cleanup(func() { c.Close() })
		default:
			if err = sess.End(ctx, lastTS, "signal", 0); err == nil {
				err = c.Close()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		r.parts, prev = append(r.parts, path), path
	}
	return r
}

// openBoth opens files merged (as before) and in place.
func openBoth(t *testing.T, files []string) (merged, inPlace *Capture) {
	t.Helper()
	ctx := context.Background()
	opts := MergeOptions{Version: "9.9", Host: "box"}
	merged, err := OpenSet(ctx, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { merged.Close() })
	opts.InPlace = true
	inPlace, err = OpenSet(ctx, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inPlace.Close() })
	if inPlace.parts == nil {
		t.Fatal("the parts of one recording were merged, not read in place")
	}
	return merged, inPlace
}

// same fails unless got equals want.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s in place:\n%+v\nmerged:\n%+v", what, got, want)
	}
}

func collect(t *testing.T, seq func(func(Message, error) bool)) []Message {
	t.Helper()
	var out []Message
	for m, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// partQueries are the selections the readers make: every Query field,
// seq bounds on both sides of the seams.
func partQueries(c *Capture, seams []int64) map[string]Query {
	ctx := context.Background()
	topics, _ := c.Topics(ctx)
	var ids []int64
	for _, tp := range topics {
		if tp.Name != "dev/0" {
			ids = append(ids, tp.ID)
		}
	}
	ptr := func(v int64) *int64 { return &v }
	yes, no := true, false
	qs := map[string]Query{
		"all":          {},
		"match":        {Match: func(s string) bool { return s == "dev/1" || s == "state/1" }},
		"match none":   {Match: func(string) bool { return false }},
		"topic ids":    {TopicIDs: ids},
		"one topic":    {TopicIDs: ids[len(ids)-1:]},
		"no topic":     {TopicIDs: []int64{}},
		"session":      {Session: 1},
		"no session":   {Session: 2},
		"offsets":      {FromOffset: ptr(2e9), ToOffset: ptr(9e9)},
		"zero offset":  {ToOffset: ptr(0)},
		"times":        {FromTime: ptr(t0 + 3e9), ToTime: ptr(t0 + 11e9)},
		"qos":          {QoS: []byte{1, 2}},
		"store":        {FromStore: &yes},
		"live":         {FromStore: &no},
		"contains":     {PayloadContains: [][]byte{[]byte(`"v":1`)}},
		"payload":      {PayloadMatch: func(p []byte) bool { return len(p) > 20 }},
		"message":      {MessageMatch: func(m *Message) bool { return m.Seq%3 == 0 && m.Session != 2 }},
		"max payload":  {MaxPayload: 100},
		"desc":         {Desc: true},
		"desc topics":  {Desc: true, TopicIDs: ids, Limit: 7},
		"limit":        {Limit: 5, TopicIDs: ids},
		"limit inGo":   {Limit: 4, MessageMatch: func(m *Message) bool { return m.Seq%2 == 1 }},
		"desc message": {Desc: true, MessageMatch: func(m *Message) bool { return m.Seq%2 == 0 }},
	}
	for i, s := range seams {
		qs[fmt.Sprintf("after seam %d", i)] = Query{AfterSeq: s - 2, Limit: 4}
		qs[fmt.Sprintf("before seam %d", i)] = Query{BeforeSeq: s + 2, Desc: true, Limit: 5, TopicIDs: ids}
		qs[fmt.Sprintf("around seam %d", i)] = Query{AfterSeq: s - 3, BeforeSeq: s + 3}
	}
	return qs
}

// seams are the global seqs of each part's first message.
func seams(c *Capture) []int64 {
	var out []int64
	for _, p := range c.parts.parts[1:] {
		lo, _ := p.span()
		out = append(out, lo)
	}
	return out
}

// checkSameAsMerged compares every read the verbs make of the parts in
// place with the same read of the parts merged.
func checkSameAsMerged(t *testing.T, merged, in *Capture) {
	t.Helper()
	ctx := context.Background()
	sessM, err := merged.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sessP, err := in.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sessM {
		sessM[i].LastNS = 0 // the merge's own write time
	}
	for i := range sessP {
		sessP[i].LastNS = 0
	}
	same(t, "Sessions", sessP, sessM)
	evM, _ := merged.Events(ctx, 0)
	evP, _ := in.Events(ctx, 0)
	same(t, "Events", evP, evM)
	topM, _ := merged.Topics(ctx)
	topP, _ := in.Topics(ctx)
	same(t, "Topics", topP, topM)
	loM, hiM, _ := merged.SeqBounds(ctx)
	loP, hiP, _ := in.SeqBounds(ctx)
	same(t, "SeqBounds", []int64{loP, hiP}, []int64{loM, hiM})
	maxM, _ := merged.MaxSeq(ctx)
	maxP, _ := in.MaxSeq(ctx)
	same(t, "MaxSeq", maxP, maxM)
	decM, _ := merged.Decoders(ctx)
	decP, _ := in.Decoders(ctx)
	same(t, "Decoders", decP, decM)
	totM, statsM, _ := merged.Stats(ctx)
	totP, statsP, _ := in.Stats(ctx)
	totM.Stored, totP.Stored = 0, 0
	same(t, "Stats", []any{totP, statsP}, []any{totM, statsM})

	for name, q := range partQueries(merged, seams(in)) {
		t.Run(name, func(t *testing.T) {
			same(t, "Messages", collect(t, in.Messages(ctx, q)), collect(t, merged.Messages(ctx, q)))
			nM, errM := merged.Count(ctx, q)
			nP, errP := in.Count(ctx, q)
			same(t, "Count", []any{nP, errP}, []any{nM, errM})
			if q.Limit == 0 && !q.Desc {
				tM, sM, _ := merged.StatsOf(ctx, q)
				tP, sP, _ := in.StatsOf(ctx, q)
				tM.Stored, tP.Stored = 0, 0
				same(t, "StatsOf", []any{tP, sP}, []any{tM, sM})
				checkPrepared(t, merged, in, q, loM, hiM)
			}
		})
	}
	checkNavigation(t, merged, in, loM, hiM)
}

// checkPrepared compares the inspector's prepared reads over ranges that
// start and end on every side of the seams.
func checkPrepared(t *testing.T, merged, in *Capture, q Query, lo, hi int64) {
	t.Helper()
	ctx := context.Background()
	pM, err := merged.Prepare(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	pP, err := in.Prepare(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Empty", pP.Empty(), pM.Empty())
	ranges := [][2]int64{{lo, hi}, {0, 1 << 40}, {hi, lo}}
	for _, s := range seams(in) {
		ranges = append(ranges, [2]int64{s - 4, s + 3}, [2]int64{s, s}, [2]int64{lo, s - 1}, [2]int64{s - 1, hi})
	}
	for _, r := range ranges {
		var seqM, seqP []int64
		for s, err := range pM.Seqs(ctx, r[0], r[1]) {
			seqM = append(seqM, s)
			if err != nil {
				t.Fatal(err)
			}
		}
		for s, err := range pP.Seqs(ctx, r[0], r[1]) {
			seqP = append(seqP, s)
			if err != nil {
				t.Fatal(err)
			}
		}
		same(t, fmt.Sprintf("Seqs %v", r), seqP, seqM)
		cM, _ := pM.Count(ctx, r[0], r[1])
		cP, _ := pP.Count(ctx, r[0], r[1])
		same(t, fmt.Sprintf("Count %v", r), cP, cM)
		for _, limit := range []int{0, 3, 1000} {
			rM, _ := pM.Rows(ctx, r[0], r[1], limit, 8)
			rP, _ := pP.Rows(ctx, r[0], r[1], limit, 8)
			same(t, fmt.Sprintf("Rows %v limit %d", r, limit), rP, rM)
			rM, _ = pM.RowsBefore(ctx, r[0], r[1], limit, 8)
			rP, _ = pP.RowsBefore(ctx, r[0], r[1], limit, 8)
			same(t, fmt.Sprintf("RowsBefore %v limit %d", r, limit), rP, rM)
		}
	}
	for _, after := range []int64{0, lo, hi / 2, hi} {
		for _, desc := range []bool{false, true} {
			same(t, fmt.Sprintf("Prepared.Messages %d %v", after, desc),
				collect(t, pP.Messages(ctx, after, desc)), collect(t, pM.Messages(ctx, after, desc)))
		}
	}
}

// checkNavigation compares the reads the inspector jumps with: by seq,
// time and offset, per topic, and the counts of its topic tree.
func checkNavigation(t *testing.T, merged, in *Capture, lo, hi int64) {
	t.Helper()
	ctx := context.Background()
	all := collect(t, merged.Messages(ctx, Query{}))
	topics, _ := merged.Topics(ctx)
	var seqs []int64
	for seq := lo - 2; seq <= hi+2; seq++ {
		seqs = append(seqs, seq)
		mM, errM := merged.Get(ctx, seq)
		mP, errP := in.Get(ctx, seq)
		same(t, fmt.Sprintf("Get %d", seq), []any{mP, errP == nil}, []any{mM, errM == nil})
		var pM, pP []byte
		errM = merged.Payload(ctx, seq, func(p []byte) error { pM = bytes.Clone(p); return nil })
		errP = in.Payload(ctx, seq, func(p []byte) error { pP = bytes.Clone(p); return nil })
		same(t, fmt.Sprintf("Payload %d", seq), []any{pP, errP == nil}, []any{pM, errM == nil})
		for _, tp := range topics {
			mM, okM, _ := merged.PrevOnTopic(ctx, seq, tp.Name)
			mP, okP, _ := in.PrevOnTopic(ctx, seq, tp.Name)
			same(t, fmt.Sprintf("PrevOnTopic %d %s", seq, tp.Name), []any{mP, okP}, []any{mM, okM})
		}
	}
	rM, _ := merged.RowsBySeq(ctx, seqs, 5)
	rP, _ := in.RowsBySeq(ctx, seqs, 5)
	same(t, "RowsBySeq", rP, rM)
	odd := []int64{hi, lo + 3, lo, hi + 9, (lo + hi) / 2}
	same(t, "MessagesBySeq", collect(t, in.MessagesBySeq(ctx, odd)), collect(t, merged.MessagesBySeq(ctx, odd)))
	for _, m := range all {
		for _, d := range []int64{-1, 0, 1} {
			sM, _ := merged.SeqAtTime(ctx, m.TimeNS+d)
			sP, _ := in.SeqAtTime(ctx, m.TimeNS+d)
			same(t, fmt.Sprintf("SeqAtTime %d", m.TimeNS+d), sP, sM)
			for _, sess := range []int64{0, 1, 2} {
				sM, _ = merged.SeqAtOffset(ctx, sess, m.OffsetNS+d)
				sP, _ = in.SeqAtOffset(ctx, sess, m.OffsetNS+d)
				same(t, fmt.Sprintf("SeqAtOffset %d %d", sess, m.OffsetNS+d), sP, sM)
			}
		}
	}
	for from := lo - 1; from <= hi+1; from += 3 {
		for through := from - 1; through <= hi+1; through += 4 {
			cM, _ := merged.TopicCounts(ctx, from, through)
			cP, _ := in.TopicCounts(ctx, from, through)
			same(t, fmt.Sprintf("TopicCounts %d %d", from, through), cP, cM)
			for _, shift := range []uint{0, 2, 3} {
				bM, _ := merged.TopicBuckets(ctx, from, through, shift)
				bP, _ := in.TopicBuckets(ctx, from, through, shift)
				same(t, fmt.Sprintf("TopicBuckets %d %d %d", from, through, shift), bP, bM)
			}
		}
	}
}

// TestPartsInPlaceReadAsMerged: the parts of a split recording read in
// place give every read exactly what the same parts merged give.
func TestPartsInPlaceReadAsMerged(t *testing.T) {
	defer func(w int64) { spreadWindow = w }(spreadWindow)
	spreadWindow = 4 // page topic selections through the index too
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 19))
			n := 40 + rng.IntN(20)
			// 2 to 6 parts; equal cuts make a part of carried rows only.
			cuts := []int{3 + rng.IntN(n-6)}
			for range rng.IntN(5) {
				cuts = append(cuts, 3+rng.IntN(n-6))
			}
			if seed == 0 {
				cuts = append(cuts, cuts[0])
			}
			slices.Sort(cuts)
			r := writeSplit(t, t.TempDir(), "rec1", rng, n, cuts, false)
			merged, in := openBoth(t, r.parts)
			if n, _ := in.Count(context.Background(), Query{}); n != int64(len(r.msgs)) {
				t.Fatalf("%d messages read, %d recorded", n, len(r.msgs))
			}
			checkSameAsMerged(t, merged, in)
		})
	}
}

// TestPartsInPlaceLive: the last part still being recorded is followed as
// a single live capture is: new messages and topics appear in the set.
func TestPartsInPlaceLive(t *testing.T) {
	ctx := context.Background()
	r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(7, 19)), 30, []int{10, 20}, true)
	_, in := openBoth(t, r.parts)
	_, hi, err := in.SeqBounds(ctx)
	if err != nil || hi != 30 {
		t.Fatalf("SeqBounds: last %d (%v), want 30", hi, err)
	}
	last := r.msgs[len(r.msgs)-1].TimeNS
	more := []Message{{TimeNS: last + 1e9, OffsetNS: 5e9, Topic: "new/topic", Payload: []byte("a")},
		{TimeNS: last + 2e9, OffsetNS: 6e9, Topic: "dev/0", Payload: []byte("b")}}
	if err := r.sess.Write(ctx, more, nil, last+2e9); err != nil {
		t.Fatal(err)
	}
	if _, hi, err = in.SeqBounds(ctx); err != nil || hi != 32 {
		t.Fatalf("SeqBounds after two more: last %d (%v), want 32", hi, err)
	}
	topics, err := in.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, tp := range topics {
		if tp.Name == "new/topic" {
			id = tp.ID
		}
	}
	counts, err := in.TopicCounts(ctx, 31, 32)
	if err != nil || id == 0 || counts[id] != 1 || len(counts) != 2 {
		t.Fatalf("new topic id %d, counts of the new messages %v (%v)", id, counts, err)
	}
	got := collect(t, in.Messages(ctx, Query{AfterSeq: 30}))
	if len(got) != 2 || got[0].Topic != "new/topic" || got[1].Seq != 32 || got[1].Session != 1 {
		t.Fatalf("messages after 30: %+v", got)
	}
	// As one file being recorded: the session has not ended; its last
	// flush is the last part's.
	s, err := in.Sessions(ctx)
	if err != nil || s[0].Closed() || s[0].LastNS != last+2e9 || s[0].StopReason != "" {
		t.Fatalf("session while recording: %+v (%v), want open, last flush %d", s[0], err, last+2e9)
	}
	if err := r.sess.End(ctx, last+3e9, "signal", 0); err != nil {
		t.Fatal(err)
	}
	s, err = in.Sessions(ctx)
	if err != nil || s[0].EndedNS != last+2e9 || s[0].StopReason != "signal" {
		t.Fatalf("session once ended: %+v (%v), want ended at the last message %d, stop reason signal", s[0], err, last+2e9)
	}
}

// TestPartsNotOneRecordingMerged: files that are not the parts of one
// recording in order are merged as before.
func TestPartsNotOneRecordingMerged(t *testing.T) {
	ctx := context.Background()
	a := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(1, 2)), 30, []int{10, 20}, false)
	b := writeSplit(t, t.TempDir(), "rec2", rand.New(rand.NewPCG(3, 4)), 20, []int{10}, false)
	for name, files := range map[string][]string{
		"out of order":       {a.parts[1], a.parts[0]},
		"a part missing":     {a.parts[0], a.parts[2]},
		"two recordings":     {a.parts[0], b.parts[1]},
		"a part and a whole": {a.parts[0], writeSessions(t, filepath.Join(t.TempDir(), "x.db"), testSession{info: SessionInfo{Source: "subscriber", StartedNS: t0}, msgs: []Message{at(1, "x")}})},
	} {
		c, err := OpenSet(ctx, files, MergeOptions{InPlace: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.parts != nil {
			t.Errorf("%s: read in place", name)
		}
		c.Close()
	}
}

// TestPartsInPlaceConnections: a set of many parts keeps an idle
// connection only for the parts read last, however many a read went
// through.
func TestPartsInPlaceConnections(t *testing.T) {
	ctx := context.Background()
	var cuts []int
	for i := 1; i < 20; i++ {
		cuts = append(cuts, 5*i)
	}
	r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(5, 19)), 100, cuts, false)
	_, in := openBoth(t, r.parts)
	if _, _, err := in.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, in.Messages(ctx, Query{Desc: true}))); n != 100 {
		t.Fatalf("%d messages read, want 100", n)
	}
	open := 0
	for _, p := range in.parts.parts {
		if p.c.r.Stats().OpenConnections > 0 {
			open++
		}
	}
	if open > openPartsMax {
		t.Errorf("%d of %d parts hold a connection after reading them all, want at most %d", open, len(r.parts), openPartsMax)
	}
}

// TestPartsInPlaceRefusesCopies: the operations that copy from a capture's
// file say they need the parts merged instead of reading the wrong thing.
func TestPartsInPlaceRefusesCopies(t *testing.T) {
	ctx := context.Background()
	r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(8, 19)), 20, []int{10}, false)
	_, in := openBoth(t, r.parts)
	out, _ := newCapture(t)
	if _, err := Cut(ctx, in, out, CutOptions{}); err == nil {
		t.Error("Cut of parts read in place: no error")
	}
	if _, err := Merge(ctx, []*Capture{in}, out, MergeOptions{}); err == nil {
		t.Error("Merge of parts read in place: no error")
	}
	if err := in.SaveCopy(ctx, filepath.Join(t.TempDir(), "copy.db")); err == nil {
		t.Error("SaveCopy of parts read in place: no error")
	}
}

// FuzzPartsInPlace: for any split of a random recording into parts, the
// parts read in place read as the parts merged.
func FuzzPartsInPlace(f *testing.F) {
	f.Add(uint64(1), uint8(10), uint8(10), uint8(25))
	f.Add(uint64(2), uint8(1), uint8(29), uint8(29))
	f.Fuzz(func(t *testing.T, seed uint64, a, b, c uint8) {
		const n = 30
		cuts := []int{1 + int(a)%(n-1), 1 + int(b)%(n-1), 1 + int(c)%(n-1)}
		slices.Sort(cuts)
		r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(seed, 19)), n, cuts, false)
		merged, in := openBoth(t, r.parts)
		checkSameAsMerged(t, merged, in)
	})
}
