package replay_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// play runs a Player over path inside the current synctest bubble.
func play(t *testing.T, path string, cfg replay.Config, pub *fakePub) (replay.Report, error) {
	t.Helper()
	c := open(t, path)
	cfg.Clock = replay.SystemClock{} // timers only: exact inside the bubble
	p, err := replay.New(c, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(context.Background())
}

// irregular is a schedule with bursts and gaps from 0 to 1 s.
func irregular() []storage.Message {
	var msgs []storage.Message
	for i, off := range ms(0, 1, 1, 1, 2.5, 500, 501, 1500, 1500.25, 2500, 2501) {
		msgs = append(msgs, msg(off+3*time.Second, fmt.Sprintf("t/%d", i%3), byte(i%3), fmt.Sprint(i)))
	}
	return msgs
}

func TestOriginalTimingIsExact(t *testing.T) {
	path := writeCapture(t, irregular())
	for _, tt := range []struct {
		speed float64
		want  []time.Duration
	}{
		{1, ms(0, 1, 1, 1, 2.5, 500, 501, 1500, 1500.25, 2500, 2501)},
		{4, ms(0, 0.25, 0.25, 0.25, 0.625, 125, 125.25, 375, 375.0625, 625, 625.25)},
		{0.5, ms(0, 2, 2, 2, 5, 1000, 1002, 3000, 3000.5, 5000, 5002)},
	} {
		t.Run(fmt.Sprint(tt.speed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pub := newFakePub()
				rep, err := play(t, path, replay.Config{Speed: tt.speed}, pub)
				if err != nil {
					t.Fatal(err)
				}
				got := pub.sent()
				if !slices.Equal(at(got), tt.want) {
					t.Errorf("published at %v, want %v", at(got), tt.want)
				}
				for i, s := range got {
					if s.Payload != fmt.Sprint(i) || s.Topic != fmt.Sprintf("t/%d", i%3) || s.QoS != byte(i%3) || s.Retain {
						t.Errorf("message %d = %+v", i, s)
					}
				}
				last := tt.want[len(tt.want)-1]
				if rep.Published != 11 || rep.Intended != last || rep.Actual != last || rep.Drift() != 0 ||
					rep.Lateness.Count != 11 || rep.Lateness.Max != 0 || rep.Passes != 1 || rep.Interrupted {
					t.Errorf("report = %+v", rep)
				}
			})
		})
	}
}

func TestMaxSpeedPublishesAtOnce(t *testing.T) {
	path := writeCapture(t, irregular())
	synctest.Test(t, func(t *testing.T) {
		pub := newFakePub()
		rep, err := play(t, path, replay.Config{Speed: math.Inf(1)}, pub)
		if err != nil {
			t.Fatal(err)
		}
		if got := at(pub.sent()); len(got) != 11 || got[10] != 0 {
			t.Errorf("published at %v, want 11 at once", got)
		}
		if rep.Lateness.Count != 0 || rep.Intended != 0 || rep.Published != 11 {
			t.Errorf("report = %+v", rep)
		}
	})
}

func TestSessionsPlayInTurnWithMaxGapAndLoop(t *testing.T) {
	path := writeCapture(t,
		[]storage.Message{stored(0, "state/a", "A1"), msg(2*time.Second, "x", 0, "1"), msg(2*time.Second+10*time.Minute, "x", 0, "2")},
		[]storage.Message{stored(time.Millisecond, "state/a", "A2"), msg(5*time.Second, "x", 0, "3"), msg(7*time.Second, "x", 0, "4")},
	)
	synctest.Test(t, func(t *testing.T) {
		pub := newFakePub()
		rep, err := play(t, path, replay.Config{MaxGap: time.Minute, Loop: 2}, pub)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range pub.sent() {
			got = append(got, fmt.Sprintf("%s %s %v @%s", s.Topic, s.Payload, s.Retain, s.At))
		}
		// Each session restores its retained state, then plays from its
		// first live message; the 10 min gap is capped at 1 min.
		want := []string{
			"state/a A1 true @0s", "x 1 false @0s", "x 2 false @1m0s",
			"state/a A2 true @1m0s", "x 3 false @1m0s", "x 4 false @1m2s",
			"state/a A1 true @1m2s", "x 1 false @1m2s", "x 2 false @2m2s",
			"state/a A2 true @2m2s", "x 3 false @2m2s", "x 4 false @2m4s",
		}
		if !slices.Equal(got, want) {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if rep.Passes != 2 || rep.Restored != 4 || rep.Published != 12 || rep.Intended != 2*time.Minute+4*time.Second ||
			rep.Drift() != 0 {
			t.Errorf("report = %+v", rep)
		}
	})
}

func TestSelectionRetainedAndRewrite(t *testing.T) {
	path := writeCapture(t, []storage.Message{
		stored(0, "plant/1/state", "on"),
		stored(0, "plant/2/state", "off"),
		stored(0, "other/state", "x"),
		msg(1*time.Second, "plant/1/temp", 1, "20"),
		msg(2*time.Second, "plant/1/debug", 0, "dbg"),
		msg(3*time.Second, "plant/2/temp", 2, "21"),
		msg(40*time.Second, "plant/1/temp", 1, "22"),
		msg(41*time.Second, "plant/2/temp", 0, "23"),
	})
	from, to := int64(2500*time.Millisecond), int64(41*time.Second)
	inc := topic.Set{"plant/#"}
	sel := storage.Query{Match: func(n string) bool { return inc.Match(n) && !topic.Match("plant/+/debug", n) }}
	for _, tt := range []struct {
		name string
		cfg  replay.Config
		want []string
	}{
		{"all", replay.Config{}, []string{
			"plant/1/state on r1 q1 @0s", "plant/2/state off r1 q1 @0s", "other/state x r1 q1 @0s",
			"plant/1/temp 20 r0 q1 @0s", "plant/1/debug dbg r0 q0 @1s", "plant/2/temp 21 r0 q2 @2s",
			"plant/1/temp 22 r0 q1 @39s", "plant/2/temp 23 r0 q0 @40s"}},
		{"from mid-capture restores first", replay.Config{Query: storage.Query{FromOffset: &from, ToOffset: &to}}, []string{
			"plant/1/state on r1 q1 @0s", "plant/2/state off r1 q1 @0s", "other/state x r1 q1 @0s",
			"plant/2/temp 21 r0 q2 @0s", "plant/1/temp 22 r0 q1 @37s"}},
		{"filters, skip", replay.Config{Query: sel, Retained: replay.RetainedSkip}, []string{
			"plant/1/temp 20 r0 q1 @0s", "plant/2/temp 21 r0 q2 @2s",
			"plant/1/temp 22 r0 q1 @39s", "plant/2/temp 23 r0 q0 @40s"}},
		{"a QoS selection applies to the restored state too", replay.Config{Query: storage.Query{FromOffset: &from, ToOffset: &to, QoS: []byte{0, 2}}}, []string{
			"plant/2/temp 21 r0 q2 @0s"}},
		{"live only: no restored state", replay.Config{Query: storage.Query{FromOffset: &from, ToOffset: &to, FromStore: new(false)}}, []string{
			"plant/2/temp 21 r0 q2 @0s", "plant/1/temp 22 r0 q1 @37s"}},
		{"live, qos, remap, prefix", replay.Config{Query: storage.Query{ToOffset: &from}, Retained: replay.RetainedLive,
			OverrideQoS: true, QoS: 2, TopicPrefix: "sandbox/",
			Remap: []replay.Remap{{Old: "plant/1/", New: "p1/"}, {Old: "plant/", New: "x/"}}}, []string{
			"sandbox/p1/state on r0 q2 @0s", "sandbox/x/2/state off r0 q2 @0s", "sandbox/other/state x r0 q2 @0s",
			"sandbox/p1/temp 20 r0 q2 @1s", "sandbox/p1/debug dbg r0 q2 @2s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pub := newFakePub()
				if _, err := play(t, path, tt.cfg, pub); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, s := range pub.sent() {
					r := 0
					if s.Retain {
						r = 1
					}
					got = append(got, fmt.Sprintf("%s %s r%d q%d @%s", s.Topic, s.Payload, r, s.QoS, s.At))
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			})
		})
	}
}

func TestPauseStepResumeAndSpeedReanchor(t *testing.T) {
	var msgs []storage.Message
	for i := range 6 {
		msgs = append(msgs, msg(time.Duration(i)*time.Second, "m", 0, fmt.Sprint(i)))
	}
	path := writeCapture(t, msgs)
	synctest.Test(t, func(t *testing.T) {
		c := open(t, path)
		pub := newFakePub()
		p, err := replay.New(c, pub, replay.Config{Clock: replay.SystemClock{}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan replay.Report)
		go func() {
			rep, err := p.Run(context.Background())
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		time.Sleep(1500 * time.Millisecond) // messages 0 and 1 are out; mid-gap before 2
		p.Pause()
		time.Sleep(time.Hour)
		if n := len(pub.sent()); n != 2 {
			t.Fatalf("%d published while paused, want 2", n)
		}
		p.Step() // message 2 at once, position moves to it
		synctest.Wait()
		time.Sleep(time.Minute)
		p.Resume()                          // message 3 is 1 s after message 2
		time.Sleep(1500 * time.Millisecond) // 3 is out, mid-gap before 4
		if err := p.SetSpeed(2); err != nil {
			t.Fatal(err)
		}
		rep := <-done
		pause := time.Hour
		// Resumed at r from message 2's position: 3 is due 1 s later. At r+1.5 s
		// (position 3.5 s) the speed doubles: 4 follows 0.25 s later, 5 0.5 s after it.
		r := 1500*time.Millisecond + pause + time.Minute
		want := []time.Duration{0, time.Second, 1500*time.Millisecond + pause, r + time.Second,
			r + 1750*time.Millisecond, r + 2250*time.Millisecond}
		if got := at(pub.sent()); !slices.Equal(got, want) {
			t.Errorf("published at\n%v\nwant\n%v", got, want)
		}
		// Gaps 0→1 and 4→5 count; the others spanned a control change.
		if rep.Intended != 1500*time.Millisecond || rep.Actual != 1500*time.Millisecond || rep.Lateness.Count != 5 {
			t.Errorf("report = %+v", rep)
		}
		if p.Speed() != 2 || rep.Speed != 2 || rep.StartSpeed != 1 {
			t.Errorf("speed = %v, report: speed %v, started at %v", p.Speed(), rep.Speed, rep.StartSpeed)
		}
	})
}

func TestInflightWindowAndAckFailures(t *testing.T) {
	var msgs []storage.Message
	for i := range 6 {
		msgs = append(msgs, msg(time.Duration(i)*100*time.Millisecond, "m", 1, fmt.Sprint(i)))
	}
	path := writeCapture(t, msgs)
	synctest.Test(t, func(t *testing.T) {
		pub := newFakePub()
		pub.ack = func(n int, _ string) (time.Duration, error, bool) {
			switch n {
			case 1:
				return time.Second, errors.New("broker said no"), false
			case 5:
				return 0, nil, true // never acknowledged
			}
			return time.Second, nil, false
		}
		rep, err := play(t, path, replay.Config{MaxInflight: 2, AckTimeout: 3 * time.Second}, pub)
		if err != nil {
			t.Fatal(err)
		}
		// Two in flight: message 2 waits for 0's ack at 1 s, 3 for 1's at 1.1 s, ...
		want := ms(0, 100, 1000, 1100, 2000, 2100)
		if got := at(pub.sent()); !slices.Equal(got, want) {
			t.Errorf("published at %v, want %v", got, want)
		}
		if rep.AckFailures != 1 || rep.Unacked != 1 || rep.AckError == nil || !strings.Contains(rep.AckError.Error(), "no") {
			t.Errorf("report = %+v", rep)
		}
		// Late by 0, 0, 0.8, 0.8, 1.6, 1.6 s; quantiles are within 1 %.
		if l := rep.Lateness; l.Max != 1600*time.Millisecond || l.P50 < 800*time.Millisecond || l.P50 > 808*time.Millisecond {
			t.Errorf("lateness = %+v", rep.Lateness)
		}
		if rep.Drift() != 1600*time.Millisecond {
			t.Errorf("drift = %s", rep.Drift())
		}
	})
}

func TestCancelReportsSoFar(t *testing.T) {
	var msgs []storage.Message
	for i := range 10 {
		msgs = append(msgs, msg(time.Duration(i)*time.Second, "m", 0, fmt.Sprint(i)))
	}
	path := writeCapture(t, msgs)
	synctest.Test(t, func(t *testing.T) {
		c := open(t, path)
		pub := newFakePub()
		p, err := replay.New(c, pub, replay.Config{Clock: replay.SystemClock{}, Loop: replay.Forever})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
		defer cancel()
		rep, err := p.Run(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !rep.Interrupted || rep.Published != 4 || len(pub.sent()) != 4 {
			t.Errorf("err %v, report %+v", err, rep)
		}
		if pr := p.Progress(); pr.Published != 4 || pr.Pass != 1 || pr.Position != 3500*time.Millisecond {
			t.Errorf("progress = %+v", pr)
		}
	})
}

func TestEmptySelectionEndsEvenWhenLoopingForever(t *testing.T) {
	path := writeCapture(t, []storage.Message{msg(0, "a", 0, "x")})
	synctest.Test(t, func(t *testing.T) {
		pub := newFakePub()
		rep, err := play(t, path, replay.Config{Loop: replay.Forever, Query: storage.Query{Match: func(string) bool { return false }}}, pub)
		if err != nil || rep.Published != 0 || rep.Passes != 0 {
			t.Errorf("err %v, report %+v", err, rep)
		}
	})
}

func TestPlan(t *testing.T) {
	path := writeCapture(t,
		[]storage.Message{stored(0, "s", "A"), msg(time.Second, "a/x", 1, "12"), msg(time.Hour, "a/y", 0, "123")},
		[]storage.Message{msg(time.Second, "a/x", 2, "1"), msg(3*time.Second, "b", 0, "")},
	)
	c := open(t, path)
	p, err := replay.New(c, newFakePub(), replay.Config{MaxGap: time.Minute, Loop: 3, TopicPrefix: "sb/",
		Remap: []replay.Remap{{Old: "a/", New: "A/"}}})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := p.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pl.Messages != 5 || pl.Restored != 1 || pl.Bytes != 7 || pl.Duration != time.Minute+2*time.Second ||
		pl.Passes != 3 || !slices.Equal(pl.Sessions, []int64{1, 2}) {
		t.Errorf("plan = %+v", pl)
	}
	if f := pl.First; f.Topic != "sb/s" || !f.Restore || !f.Retain || f.At != 0 {
		t.Errorf("first = %+v", f)
	}
	if l := pl.Last; l.Topic != "sb/b" || l.Original != "b" || l.At != time.Minute+2*time.Second || l.Session != 2 {
		t.Errorf("last = %+v", l)
	}
	want := []replay.PlannedTopic{{"sb/A/x", "a/x", 2}, {"sb/A/y", "a/y", 1}, {"sb/b", "b", 1}, {"sb/s", "s", 1}}
	if !slices.Equal(pl.Topics, want) {
		t.Errorf("topics = %+v", pl.Topics)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := open(t, writeCapture(t, nil))
	for _, cfg := range []replay.Config{
		{Speed: -1}, {Speed: math.NaN()}, {Loop: -2}, {MaxGap: -1}, {OverrideQoS: true, QoS: 3}, {MaxInflight: -1},
		{Query: storage.Query{Desc: true}}, {TopicPrefix: "a/#/"}, {Remap: []replay.Remap{{Old: "", New: "x"}}},
		{Remap: []replay.Remap{{Old: "a", New: "+"}}}, {Retained: 7},
	} {
		if _, err := replay.New(c, newFakePub(), cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestRemapToInvalidTopicFails(t *testing.T) {
	path := writeCapture(t, []storage.Message{msg(0, "a/b", 0, "x")})
	synctest.Test(t, func(t *testing.T) {
		pub := newFakePub()
		_, err := play(t, path, replay.Config{Remap: []replay.Remap{{Old: "a/b", New: ""}}}, pub)
		if !errors.Is(err, replay.ErrBadRewrite) || len(pub.sent()) != 0 {
			t.Errorf("err = %v, sent %d", err, len(pub.sent()))
		}
	})
}

func TestParseRemapAndRetainedMode(t *testing.T) {
	for in, want := range map[string]replay.Remap{"a/=b/": {"a/", "b/"}, "x=": {"x", ""}, "a=b=c": {"a", "b=c"}} {
		if got, err := replay.ParseRemap(in); err != nil || got != want {
			t.Errorf("ParseRemap(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "=x", "ab", "a/#=b", "a=+"} {
		if _, err := replay.ParseRemap(bad); !errors.Is(err, replay.ErrBadRewrite) {
			t.Errorf("ParseRemap(%q) = %v", bad, err)
		}
	}
	for i, s := range []string{"keep", "skip", "live"} {
		if m, err := replay.ParseRetainedMode(s); err != nil || int(m) != i || m.String() != s {
			t.Errorf("ParseRetainedMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := replay.ParseRetainedMode("yes"); err == nil {
		t.Error("accepted retained mode yes")
	}
}
