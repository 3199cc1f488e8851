package cli

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

// buildBinary builds mqtape once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mqtape")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mqtape/mqtape").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func countMessages(path string) int64 {
	c, err := storage.Open(path)
	if err != nil {
		return 0
	}
	defer c.Close()
	n, _ := c.Count(context.Background(), storage.Query{})
	return n
}

// TestPersistentSessionExactlyOnce: with --clean=false and a fixed client
// id, QoS 1/2 messages published while the recorder is down (killed with
// SIGKILL mid-flood, and the broker restarted in between with persistence)
// are captured when it comes back, each exactly once.
func TestPersistentSessionExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	m := testbroker.StartMosquitto(t, "persistence true", "persistence_location "+dir+"/", "autosave_interval 1")
	bin := buildBinary(t)
	path := filepath.Join(dir, "persist.db")
	args := []string{"record", "-b", m.URL(), "--clean=false", "--client-id", "persist-rec", "-t", "p/#", "-q", "2", "--quiet", "-o", path}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rec := start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := storage.Open(path)
		if err == nil {
			ev, _ := c.Events(context.Background(), 0)
			c.Close()
			if len(ev) >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("recorder did not subscribe")
		}
		time.Sleep(20 * time.Millisecond)
	}

	br, _ := mqtt.ParseBroker(m.URL())
	pub, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "persist-pub",
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
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
	// Kill it while messages are in flight: some are committed but not yet
	// acknowledged, and the broker will redeliver them.
	done := make(chan struct{})
	go func() { defer close(done); publish(1000, 1500) }()
	time.Sleep(30 * time.Millisecond)
	rec.Process.Signal(syscall.SIGKILL)
	rec.Wait()
	<-done
	publish(1500, n) // while the recorder is down: queued by the broker for persist-rec
	pub.Disconnect(50 * time.Millisecond)
	m.Restart(t) // the session and its queue survive a broker restart (persistence)

	rec = start()
	deadline = time.Now().Add(20 * time.Second)
	for countMessages(path) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything extra (a duplicate) would arrive now
	rec.Process.Signal(syscall.SIGINT)
	if err := rec.Wait(); err != nil {
		t.Fatalf("second recorder: %v", err)
	}

	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, _ := c.Page(context.Background(), storage.Query{})
	seen := make([]int, n)
	for _, msg := range msgs {
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
	t.Logf("%d messages in %d sessions; first session not closed: %v; duplicate-skip events: %d", len(msgs), len(sessions), !sessions[0].Closed(), skipped)
	if missing != 0 || dups != 0 || len(msgs) != n {
		t.Fatalf("%d messages: %d missing, %d duplicated", len(msgs), missing, dups)
	}
	if len(sessions) != 2 || sessions[0].Closed() {
		t.Errorf("sessions = %+v", sessions)
	}
}
