package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/cli"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestInteropMosquittoRecord records from the Debian mosquitto binary:
// retained-store semantics, QoS levels, the $SYS rule and a burst.
func TestInteropMosquittoRecord(t *testing.T) {
	m := testbroker.StartMosquitto(t, "sys_interval 1")
	pub := testbroker.Connect(t, m.URL())
	testbroker.Publish(t, pub, "dev/1/status", 1, true, []byte("online"))
	path := filepath.Join(t.TempDir(), "mosq.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := recordCLI(t, ctx, path, "--broker", m.URL(), "--quiet")
	testbroker.Publish(t, pub, "dev/1/status", 1, true, []byte("still online")) // live: retain=0 to us
	const n = 2000
	// mosquitto disconnects a 3.1.1 client with more than 20 QoS 1/2
	// messages in flight (max_inflight_messages): keep a window of 10.
	publishWindow(t, pub, n, func(i int) (string, byte, []byte) {
		return fmt.Sprintf("dev/%d/temp", i%7), byte(i % 3), []byte(fmt.Sprintf(`{"i":%d}`, i))
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := storage.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := c.Count(context.Background(), storage.Query{})
		c.Close()
		if got >= n+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code, _, stderr := wait(); code != 0 {
		t.Fatalf("record exit %d: %s", code, stderr)
	}
	msgs, _, _ := capturetest.Read(t, path)
	if len(msgs) != n+2 {
		t.Fatalf("recorded %d messages from mosquitto, want %d", len(msgs), n+2)
	}
	if !msgs[0].FromStore || !msgs[0].Retain || string(msgs[0].Payload) != "online" {
		t.Errorf("first = %+v, want the retained store message", msgs[0])
	}
	if msgs[1].Retain || string(msgs[1].Payload) != "still online" {
		t.Errorf("live retained publish = %+v, want retain=0", msgs[1])
	}
	checkMosquittoBurst(t, msgs[2:], n)
	checkMosquittoSys(t, m.URL())
}

// checkMosquittoBurst wants every message of the burst exactly once, with
// its published QoS; order is kept per topic and QoS (MQTT 4.6 "ordered
// topic"; across topics and QoS levels mosquitto may interleave them
// differently than published).
func checkMosquittoBurst(t *testing.T, msgs []storage.Message, n int) {
	t.Helper()
	qos := map[byte]int{}
	seen := make([]bool, n)
	type stream struct {
		topic string
		qos   byte
	}
	last := map[stream]int{}
	for _, msg := range msgs {
		var i int
		if _, err := fmt.Sscanf(string(msg.Payload), `{"i":%d}`, &i); err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("unexpected or duplicate payload %q", msg.Payload)
		}
		seen[i] = true
		if byte(i%3) != msg.QoS || msg.Topic != fmt.Sprintf("dev/%d/temp", i%7) {
			t.Errorf("message %d: topic %s QoS %d", i, msg.Topic, msg.QoS)
		}
		k := stream{msg.Topic, msg.QoS}
		if prev, ok := last[k]; ok && i < prev {
			t.Errorf("%s QoS %d order broken: %d after %d", msg.Topic, msg.QoS, i, prev)
		}
		last[k] = i
		qos[msg.QoS]++
		if strings.HasPrefix(msg.Topic, "$") {
			t.Fatalf("'#' delivered %s", msg.Topic)
		}
	}
	if qos[0] != 667 || qos[1] != 667 || qos[2] != 666 {
		t.Errorf("QoS histogram %v", qos)
	}
}

// checkMosquittoSys records with --sys, which adds $SYS/#; mosquitto at url
// publishes it every second.
func checkMosquittoSys(t *testing.T, url string) {
	t.Helper()
	sysPath := filepath.Join(t.TempDir(), "sys.db")
	wait := recordCLI(t, context.Background(), sysPath, "--broker", url, "--sys", "--duration", "2500ms", "--quiet")
	if code, _, stderr := wait(); code != 0 {
		t.Fatalf("record --sys exit %d: %s", code, stderr)
	}
	_, out, _ := runCLI(t, context.Background(), "export", "-t", "$SYS/#", sysPath)
	if !strings.Contains(out, "$SYS/broker/") {
		t.Errorf("--sys recorded no $SYS topics")
	}
	_, out, _ = runCLI(t, context.Background(), "info", "--json", sysPath)
	var info cli.Info
	json.Unmarshal([]byte(out), &info)
	if len(info.Sessions) != 1 || len(info.Sessions[0].Filters) != 2 || info.Sessions[0].Filters[1].Filter != "$SYS/#" {
		t.Errorf("filters = %+v", info.Sessions)
	}
}
