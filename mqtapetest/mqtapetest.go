// Package mqtapetest turns captures into Go regression tests. A Fixture
// starts an in-process MQTT broker for one test; the test starts its system
// under test against it, records what that system publishes (Record),
// replays a capture from testdata into the broker at N× speed (Replay) and
// compares the recording with a golden capture (Compare), using the same
// engine as mqtape diff. go test -update rewrites the golden capture.
//
//	func TestBridge(t *testing.T) {
//		f := mqtapetest.New(t)
//		startBridge(t, f.URL()) // the system under test
//		out := f.Record("fahrenheit/#")
//		f.Replay("../testdata/captures/smart-home.db", 500)
//		f.Compare(out, "testdata/bridge.golden.db", mqtapetest.IgnoreFields("ts"))
//	}
//
// The package defines the -update flag: a test binary that imports it must
// not define its own.
package mqtapetest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/diff"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

var update = flag.Bool("update", false, "rewrite golden captures (mqtapetest)")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Fixture is one test's broker and helpers. Create it with New.
type Fixture struct {
	t      testing.TB
	broker *broker.Broker
	n      int
}

// New starts an in-process broker on a free loopback port; it stops when
// the test ends.
func New(t testing.TB) *Fixture {
	t.Helper()
	b, err := broker.Start(broker.Options{MaxPending: 1 << 20})
	if err != nil {
		t.Fatalf("mqtapetest: start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return &Fixture{t: t, broker: b}
}

// URL is the broker's address, mqtt://127.0.0.1:PORT.
func (f *Fixture) URL() string { return f.broker.URL() }

// Broker is the running broker.
func (f *Fixture) Broker() *broker.Broker { return f.broker }

// Connect opens an MQTT 3.1.1 client to the broker with handlers h; it is
// disconnected when the test ends.
func (f *Fixture) Connect(clientID string, h mqtt.Handlers) mqtt.Client {
	f.t.Helper()
	c, err := mqttclient.Connect(context.Background(), f.options(clientID), h)
	if err != nil {
		f.t.Fatalf("mqtapetest: connect %s: %v", clientID, err)
	}
	f.t.Cleanup(func() { c.Disconnect(100 * time.Millisecond) })
	return c
}

func (f *Fixture) options(clientID string) mqtt.Options {
	br, err := mqtt.ParseBroker(f.URL())
	if err != nil {
		f.t.Fatalf("mqtapetest: %v", err)
	}
	return mqtt.Options{Broker: br, ClientID: clientID, CleanSession: true, ConnectTimeout: 5 * time.Second,
		KeepAlive: 30 * time.Second}
}

// Replay publishes a capture (every message, retained-store messages first,
// with their recorded QoS and retain flags) into the broker at speed× its
// original timing (math.Inf(1): as fast as possible) and returns when all
// were acknowledged.
func (f *Fixture) Replay(path string, speed float64) replay.Report {
	f.t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		f.t.Fatalf("mqtapetest: replay: %v", err)
	}
	defer c.Close()
	f.n++
	pub := f.Connect(fmt.Sprintf("mqtapetest-replay-%d", f.n), mqtt.Handlers{})
	p, err := replay.New(c, pub, replay.Config{Speed: speed})
	if err != nil {
		f.t.Fatalf("mqtapetest: replay: %v", err)
	}
	rep, err := p.Run(context.Background())
	if err == nil && (rep.AckFailures > 0 || rep.Unacked > 0) {
		err = fmt.Errorf("%d publishes failed, %d unacknowledged: %v", rep.AckFailures, rep.Unacked, rep.AckError)
	}
	if err != nil {
		f.t.Fatalf("mqtapetest: replay %s: %v", path, err)
	}
	return rep
}

// Recording records what is published on some topic filters into a
// temporary capture, with mqtape's recorder.
type Recording struct {
	t      testing.TB
	path   string
	rec    *recorder.Recorder
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	once   sync.Once
	// Quiet is how long no message may arrive before Stop considers the
	// system under test done (default 300 ms); Stop waits at most Timeout
	// (default 10 s).
	Quiet, Timeout time.Duration
}

// Record starts recording the filters (default "#") at QoS 2 and returns
// once the subscription is in place.
func (f *Fixture) Record(filters ...string) *Recording {
	f.t.Helper()
	if len(filters) == 0 {
		filters = []string{"#"}
	}
	var subs []mqtt.Subscription
	for _, fl := range filters {
		subs = append(subs, mqtt.Subscription{Filter: fl, QoS: 2})
	}
	f.n++
	path := filepath.Join(f.t.TempDir(), fmt.Sprintf("recording-%d.db", f.n))
	c, err := storage.OpenWrite(path)
	if err != nil {
		f.t.Fatalf("mqtapetest: %v", err)
	}
	o := f.options(fmt.Sprintf("mqtapetest-rec-%d", f.n))
	o.ManualAck = true
	subscribed := make(chan struct{})
	var once sync.Once
	r := &Recording{t: f.t, path: path, done: make(chan struct{}), Quiet: 300 * time.Millisecond, Timeout: 10 * time.Second}
	r.rec = recorder.New(c, func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		cl, err := mqttclient.Connect(ctx, o, h)
		if err != nil {
			return nil, err
		}
		return notifying{cl, func() { once.Do(func() { close(subscribed) }) }}, nil
	}, recorder.Config{Filters: subs, FlushInterval: 20 * time.Millisecond,
		Session: storage.SessionInfo{Source: "subscriber", Broker: f.URL(), ClientID: o.ClientID, Version: "mqtapetest"}})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		_, r.err = r.rec.Run(ctx)
		c.Close()
	}()
	f.t.Cleanup(func() { cancel(); <-r.done })
	select {
	case <-subscribed:
	case <-r.done:
		f.t.Fatalf("mqtapetest: record: %v", r.err)
	case <-time.After(5 * time.Second):
		f.t.Fatal("mqtapetest: record: no subscription after 5 s")
	}
	return r
}

type notifying struct {
	mqtt.Client
	subscribed func()
}

func (n notifying) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	g, err := n.Client.Subscribe(ctx, subs)
	n.subscribed()
	return g, err
}

// Received is how many messages the recording has received so far.
func (r *Recording) Received() int64 { return r.rec.Stats().Received }

// Stop waits until no message arrived for Quiet (the system under test is
// done), stops the recorder and returns the capture's path.
func (r *Recording) Stop() string {
	r.t.Helper()
	r.once.Do(func() {
		deadline := time.Now().Add(r.Timeout)
		last, since := r.Received(), time.Now()
		for time.Since(since) < r.Quiet && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			if n := r.Received(); n != last {
				last, since = n, time.Now()
			}
		}
		r.cancel()
		<-r.done
	})
	if r.err != nil {
		r.t.Fatalf("mqtapetest: record: %v", r.err)
	}
	return r.path
}

// An Option adjusts a comparison.
type Option func(*diff.Options) error

// IgnoreFields leaves JSON fields out of the payload comparison (paths as in
// mqtape diff --ignore-field: "ts", "meta.seq", "**.ts").
func IgnoreFields(paths ...string) Option {
	return func(o *diff.Options) error {
		for _, s := range paths {
			p, err := diff.ParsePath(s)
			if err != nil {
				return err
			}
			o.IgnoreFields = append(o.IgnoreFields, p)
		}
		return nil
	}
}

// CountTolerance lets each topic miss or gain up to n messages.
func CountTolerance(n int64) Option {
	return func(o *diff.Options) error { o.CountTolerance = n; return nil }
}

// CheckTiming compares per-topic rates within tolerance (0.1 = 10 %).
// Without it timing is ignored: replays at N× speed change it.
func CheckTiming(tolerance float64) Option {
	return func(o *diff.Options) error { o.IgnoreTiming, o.RateTolerance = false, tolerance; return nil }
}

// Topics compares only topics matching match.
func Topics(match func(topic string) bool) Option {
	return func(o *diff.Options) error { o.Query.Match = match; return nil }
}

// Compare stops the recording and compares it with the golden capture,
// failing the test with mqtape diff's report when they differ. With
// go test -update it writes the recording as the golden capture instead.
func (f *Fixture) Compare(r *Recording, golden string, opts ...Option) {
	f.t.Helper()
	got := r.Stop()
	if Updating() {
		if err := copyFile(got, golden); err != nil {
			f.t.Fatalf("mqtapetest: update %s: %v", golden, err)
		}
		f.t.Logf("mqtapetest: wrote %s", golden)
		return
	}
	o := diff.Options{IgnoreTiming: true}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			f.t.Fatalf("mqtapetest: %v", err)
		}
	}
	report, err := CompareFiles(golden, got, o)
	if err != nil {
		f.t.Fatalf("mqtapetest: %v (run go test -update to create the golden capture)", err)
	}
	if !report.Equal {
		var b strings.Builder
		report.WriteText(&b)
		f.t.Errorf("mqtapetest: the recording differs from %s (go test -update rewrites it):\n%s", golden, b.String())
	}
}

// CompareFiles compares two capture files with mqtape diff's engine.
func CompareFiles(a, b string, opts diff.Options) (*diff.Report, error) {
	ca, err := storage.Open(a)
	if err != nil {
		return nil, err
	}
	defer ca.Close()
	cb, err := storage.Open(b)
	if err != nil {
		return nil, err
	}
	defer cb.Close()
	return diff.Compare(context.Background(), ca, a, cb, b, opts)
}

// copyFile writes src to dst through a temporary file (the golden capture
// is replaced whole or not at all).
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".golden-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	os.Remove(dst + "-wal")
	os.Remove(dst + "-shm")
	return os.Rename(tmp.Name(), dst)
}
