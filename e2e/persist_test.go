package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/storage"
)

// countMessages returns how many messages the capture at path holds (0
// when it cannot be opened yet).
func countMessages(path string) int64 { return countWhere(path, storage.Query{}) }

// countWhere returns how many messages of the capture at path q selects.
func countWhere(path string, q storage.Query) int64 {
	c, err := storage.Open(path)
	if err != nil {
		return 0
	}
	defer c.Close()
	n, _ := c.Count(context.Background(), q)
	return n
}

// endTopic is the marker TestPersistentSessionExactlyOnce publishes last.
const endTopic = "p/end"

// waitToken waits up to timeout for tok and reports whether it completed.
func waitToken(tok mqtt.Token, timeout time.Duration) bool {
	select {
	case <-tok.Done():
		return true
	case <-time.After(timeout):
		return false
	}
}

// TestPersistentSessionExactlyOnce: with --clean=false and a fixed client
// id, QoS 1/2 messages published while the recorder is down (killed with
// SIGKILL mid-flood, and the broker restarted in between with persistence)
// are captured when it comes back, each exactly once.
func TestPersistentSessionExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	m := testbroker.StartMosquitto(t, "persistence true", "persistence_location "+dir+"/", "autosave_interval 1")
	r := persistRecorder{bin: testbroker.BuildMqtape(t), path: filepath.Join(dir, "persist.db")}
	r.args = []string{"record", "-b", m.URL(), "--clean=false", "--client-id", "persist-rec", "-t", "p/#", "-q", "2", "--quiet", "-o", r.path}
	const n = 3000
	killWithMessagesInFlight(t, r, m.URL(), n)
	m.Restart(t) // the session and its queue survive a broker restart (persistence)

	rec := r.start(t)
	waitFor(t, 20*time.Second, func() bool { return countMessages(r.path) >= n }, fmt.Sprintf("%d messages in the capture", n))
	recordEndMarker(t, m.URL(), r.path)
	rec.Process.Signal(syscall.SIGINT)
	if err := rec.Wait(); err != nil {
		t.Fatalf("second recorder: %v", err)
	}
	checkExactlyOnce(t, r.path, n)
}

// persistRecorder runs the real recorder with a persistent session.
type persistRecorder struct {
	bin, path string
	args      []string
}

func (r persistRecorder) start(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(r.bin, r.args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// killWithMessagesInFlight starts the recorder, publishes messages 0–999,
// SIGKILLs the recorder while 1000–1499 are in flight (some committed but
// not yet acknowledged: the broker will redeliver them), and publishes the
// rest up to n while it is down (queued by the broker for persist-rec).
func killWithMessagesInFlight(t *testing.T, r persistRecorder, url string, n int) {
	t.Helper()
	rec := r.start(t)
	waitFor(t, 5*time.Second, func() bool {
		c, err := storage.Open(r.path)
		if err != nil {
			return false
		}
		defer c.Close()
		ev, _ := c.Events(context.Background(), 0)
		return len(ev) >= 2
	}, "the recorder's subscription")

	br, _ := mqtt.ParseBroker(url)
	pub, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "persist-pub",
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		var window []mqtt.Token
		for i := from; i < to; i++ {
			if len(window) == 10 {
				<-window[0].Done()
				if err := window[0].Error(); err != nil {
					t.Fatal(err)
				}
				window = window[1:]
			}
			window = append(window, pub.Publish(fmt.Sprintf("p/%d", i%5), byte(1+i%2), false, []byte(fmt.Sprint(i))))
		}
		for _, tok := range window {
			<-tok.Done()
		}
	}
	publish(0, 1000)
	done := make(chan struct{})
	go func() { defer close(done); publish(1000, 1500) }()
	waitFor(t, 10*time.Second, func() bool { return countMessages(r.path) > 1000 }, "the first of messages 1000–1499 committed")
	rec.Process.Signal(syscall.SIGKILL)
	rec.Wait()
	<-done
	publish(1500, n)
	pub.Disconnect(50 * time.Millisecond)
}

// recordEndMarker publishes a marker and waits until it is in the capture.
// A redelivered duplicate would come before a message published now (the
// broker sends persist-rec's queue in order, the recorder commits in
// order): once this marker is recorded, nothing else is on its way.
func recordEndMarker(t *testing.T, url, path string) {
	t.Helper()
	br, _ := mqtt.ParseBroker(url)
	end, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "persist-end",
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	tok := end.Publish(endTopic, 2, false, []byte("end"))
	if !waitToken(tok, 5*time.Second) {
		t.Fatal("publish the end marker: no acknowledgement within 5 s")
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish the end marker: %v", err)
	}
	end.Disconnect(50 * time.Millisecond)
	isEnd := func(topic string) bool { return topic == endTopic }
	waitFor(t, 10*time.Second, func() bool { return countWhere(path, storage.Query{Match: isEnd}) > 0 }, "the end marker in the capture")
}

// checkExactlyOnce: the capture holds each of the n messages exactly once
// (and the end marker), in two sessions, the first not closed.
func checkExactlyOnce(t *testing.T, path string, n int) {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, _ := c.Page(context.Background(), storage.Query{})
	seen := make([]int, n)
	recorded := 0
	for _, msg := range msgs {
		if msg.Topic == endTopic {
			continue
		}
		recorded++
		var i int
		fmt.Sscan(string(msg.Payload), &i)
		seen[i]++
	}
	missing, dups := 0, 0
	for _, k := range seen {
		if k == 0 {
			missing++
		}
		if k > 1 {
			dups++
		}
	}
	sessions, _ := c.Sessions(context.Background())
	events, _ := c.Events(context.Background(), 0)
	skipped := 0
	for _, e := range events {
		if e.Kind == storage.EventDuplicate {
			skipped++
		}
	}
	t.Logf("%d messages and the end marker in %d sessions; first session not closed: %v; duplicate-skip events: %d", recorded, len(sessions), !sessions[0].Closed(), skipped)
	if missing != 0 || dups != 0 || recorded != n {
		t.Fatalf("%d messages: %d missing, %d duplicated", recorded, missing, dups)
	}
	if len(sessions) != 2 || sessions[0].Closed() {
		t.Errorf("sessions = %+v", sessions)
	}
}
