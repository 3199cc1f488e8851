package replay_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// msg builds a recorded message at offset off.
func msg(off time.Duration, topic string, qos byte, payload string) storage.Message {
	return storage.Message{OffsetNS: int64(off), TimeNS: 1e18 + int64(off), Topic: topic, QoS: qos, Payload: []byte(payload)}
}

// stored builds a message received from the broker's retained store.
func stored(off time.Duration, topic string, payload string) storage.Message {
	m := msg(off, topic, 1, payload)
	m.Retain, m.FromStore = true, true
	return m
}

// writeCapture writes one session per argument into a new capture file.
func writeCapture(t testing.TB, sessions ...[]storage.Message) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	var ss []capturetest.Session
	for i, msgs := range sessions {
		start := int64(1e18) + int64(i)*int64(time.Hour)
		for j := range msgs {
			msgs[j].TimeNS += int64(i) * int64(time.Hour)
		}
		end := start + int64(time.Minute)
		if len(msgs) > 0 {
			end = start + msgs[len(msgs)-1].OffsetNS + 1
		}
		info := storage.SessionInfo{Source: "subscriber", Broker: "mqtt://127.0.0.1:1883", ClientID: "test", Protocol: 4,
			CleanSession: true, StartedNS: start, Version: "test", Host: "h"}
		ss = append(ss, capturetest.Session{Info: info, Messages: msgs, EndNS: end, Batch: len(msgs)})
	}
	capturetest.Write(t, path, ss...)
	return path
}

func open(t testing.TB, path string) *storage.Capture {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sent is one publish seen by fakePub.
type sent struct {
	At      time.Duration // since the fake was created
	Topic   string
	QoS     byte
	Retain  bool
	Payload string
}

// fakePub records publishes with the time they happened. ack decides how
// each token completes: after a delay, with an error, or never.
type fakePub struct {
	start time.Time
	ack   func(n int, topic string) (delay time.Duration, err error, never bool)

	mu  sync.Mutex
	got []sent
}

func newFakePub() *fakePub { return &fakePub{start: time.Now()} }

func (f *fakePub) Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token {
	f.mu.Lock()
	n := len(f.got)
	f.got = append(f.got, sent{time.Since(f.start), topic, qos, retain, string(payload)})
	f.mu.Unlock()
	if f.ack == nil {
		return replay.DoneToken(nil)
	}
	delay, err, never := f.ack(n, topic)
	tok := &fakeToken{done: make(chan struct{})}
	if never {
		return tok
	}
	if delay == 0 {
		tok.err = err
		close(tok.done)
		return tok
	}
	time.AfterFunc(delay, func() { tok.err = err; close(tok.done) })
	return tok
}

func (f *fakePub) sent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.got...)
}

type fakeToken struct {
	done chan struct{}
	err  error
}

func (t *fakeToken) Done() <-chan struct{} { return t.done }
func (t *fakeToken) Error() error          { return t.err }

// at lists the publish times.
func at(s []sent) []time.Duration {
	var out []time.Duration
	for _, m := range s {
		out = append(out, m.At)
	}
	return out
}

func ms(v ...float64) []time.Duration {
	var out []time.Duration
	for _, x := range v {
		out = append(out, time.Duration(x*float64(time.Millisecond)))
	}
	return out
}
