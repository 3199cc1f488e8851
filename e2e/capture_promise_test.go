package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestCapturePromiseDefaultBrokers is the recorder's core promise: against
// brokers with their default settings (mosquitto as installed: 20 in
// flight and 1000 queued per client; mochi-mqtt's defaults; NATS), mqtape
// records every message that mosquitto_sub, subscribed in the same run,
// receives — here: every message published — for a steady QoS 1 stream of
// 50 devices at 10,000 msg/s and a flood at full speed, three rounds each.
//
// mosquitto_sub is the reference. A round in which it, too, missed
// messages says the machine starved both subscribers (packages of this
// suite run in parallel on two cores); such a round is repeated, a few
// times at most, and the test fails if no round is clean. A round in which
// mosquitto_sub got everything and mqtape did not fails at once.
func TestCapturePromiseDefaultBrokers(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	sub := testbroker.Binary(t, "mosquitto_sub", "mosquitto-clients")
	flood := filepath.Join(t.TempDir(), "flood")
	if out, err := exec.Command("go", "build", "-o", flood, "github.com/mqtape/mqtape/bench/record/flood").CombinedOutput(); err != nil {
		t.Fatalf("build flood: %v\n%s", err, out)
	}
	stream := loadgen.Config{Devices: 50, Messages: 20050, Rate: 10000, QoS: 1}
	flood2 := loadgen.Config{Devices: 1, Messages: 10000, QoS: 2}
	flood1 := loadgen.Config{Devices: 1, Messages: 10000, QoS: 1} // NATS refuses QoS 2 publishes
	for _, b := range []struct {
		name  string
		start func(t *testing.T) (addr string)
		loads []loadgen.Config
	}{
		{"mosquitto", func(t *testing.T) string { return testbroker.StartMosquittoDefaults(t).Addr }, []loadgen.Config{stream, flood2}},
		{"mochi", func(t *testing.T) string { return testbroker.StartMochi(t).Addr }, []loadgen.Config{stream, flood2}},
		{"nats", func(t *testing.T) string { return testbroker.StartNATS(t).Addr }, []loadgen.Config{stream, flood1}},
	} {
		t.Run(b.name, func(t *testing.T) {
			addr := b.start(t)
			for _, load := range b.loads {
				name := fmt.Sprintf("qos%d-flood", load.QoS)
				if load.Rate > 0 {
					name = fmt.Sprintf("qos%d-%d-devices-%.0f-per-s", load.QoS, load.Devices, load.Rate)
				}
				t.Run(name, func(t *testing.T) {
					clean := 0
					for try := 1; clean < 3; try++ {
						if try > 6 {
							t.Fatalf("only %d of 3 rounds in which mosquitto_sub got every message, after %d tries: the machine is too loaded to tell", clean, try-1)
						}
						if promiseRound(t, bin, sub, flood, addr, load, try) {
							clean++
						}
					}
				})
			}
		})
	}
}

// promiseRound records one load with mqtape and mosquitto_sub side by side.
// It fails the test when mqtape lost or doubled a message that
// mosquitto_sub received, and returns whether mosquitto_sub received every
// message (a clean round).
func promiseRound(t *testing.T, bin, sub, flood, addr string, load loadgen.Config, try int) bool {
	t.Helper()
	r := startSubscribers(t, bin, sub, flood, addr, load.QoS)
	out, err := exec.Command(flood, "-addr", addr, "-n", fmt.Sprint(load.Messages), "-devices", fmt.Sprint(load.Devices),
		"-rate", fmt.Sprint(load.Rate), "-qos", fmt.Sprint(load.QoS), "-topic", r.prefix+"/load").CombinedOutput()
	if err != nil {
		t.Fatalf("publishers: %v\n%s", err, out)
	}
	n := int64(load.Messages)
	loadTopics := r.prefix + "/load/"
	waitUntilStill(t, "mosquitto_sub", n, func() int64 { return r.subLines(loadTopics) })
	waitUntilStill(t, "mqtape", n, func() int64 { return r.recorded(loadTopics) })
	r.rec.Process.Signal(syscall.SIGINT)
	if err := r.rec.Wait(); err != nil {
		t.Fatalf("record: %v\n%s", err, r.recErr.String())
	}
	r.ref.Process.Kill()
	r.ref.Wait()

	refGot := r.subLines(loadTopics)
	got, dups, brokerDropped := countLoad(t, r.path, r.prefix+"/load")
	t.Logf("round %d: published %d, mosquitto_sub %d, mqtape %d (%d duplicates)%s", try, n, refGot, got, dups, brokerDropped)
	if dups > 0 {
		t.Errorf("mqtape stored %d messages twice", dups)
	}
	if refGot < n {
		t.Logf("round %d does not count: mosquitto_sub missed %d messages too (the machine starved both)", try, n-refGot)
		return false
	}
	if got != n {
		t.Errorf("mqtape recorded %d of %d messages; mosquitto_sub received all of them in the same run", got, n)
	}
	return true
}

// subscribers are mqtape record and mosquitto_sub on one topic prefix.
type subscribers struct {
	prefix, path string
	rec, ref     *exec.Cmd
	recErr       *bytes.Buffer
	subOut       string
}

// startSubscribers starts both and returns once both got a probe message
// (published again every 300 ms until they do: one sent before a
// subscription is not delivered).
func startSubscribers(t *testing.T, bin, sub, flood, addr string, qos byte) *subscribers {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	r := &subscribers{prefix: fmt.Sprintf("promise/%d", time.Now().UnixNano()), path: filepath.Join(dir, "promise.db"),
		recErr: new(bytes.Buffer), subOut: filepath.Join(dir, "sub.txt")}
	r.rec = exec.Command(bin, "record", "-b", "mqtt://"+addr, "-t", r.prefix+"/#", "-q", "2", "--quiet", "-o", r.path)
	r.rec.Stderr = r.recErr
	out, err := os.Create(r.subOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	r.ref = exec.Command(sub, "-h", host, "-p", port, "-t", r.prefix+"/#", "-q", fmt.Sprint(qos), "-F", "%t")
	r.ref.Stdout = out
	for _, c := range []*exec.Cmd{r.rec, r.ref} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	probe := r.prefix + "/probe/"
	for deadline := time.Now().Add(15 * time.Second); r.subLines(probe) == 0 || r.recorded(probe) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the subscribers did not get a probe within 15 s (mosquitto_sub %d, mqtape %d); record: %s", r.subLines(probe), r.recorded(probe), r.recErr.String())
		}
		if err := exec.Command(flood, "-addr", addr, "-n", "1", "-qos", "1", "-topic", r.prefix+"/probe").Run(); err != nil {
			t.Fatalf("probe: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return r
}

// subLines counts mosquitto_sub's lines (topics) starting with under.
func (r *subscribers) subLines(under string) int64 {
	b, _ := os.ReadFile(r.subOut)
	return int64(bytes.Count(b, []byte("\n"+under))) + int64(bytes.Count(b[:min(len(b), len(under))], []byte(under)))
}

// recorded counts mqtape's committed messages on topics starting with under.
func (r *subscribers) recorded(under string) int64 {
	c, err := storage.Open(r.path)
	if err != nil {
		return 0
	}
	defer c.Close()
	n, _ := c.Count(context.Background(), storage.Query{Match: func(t string) bool { return strings.HasPrefix(t, under) }})
	return n
}

// waitUntilStill polls got until it reaches want, stops growing for 3 s,
// or 20 s pass.
func waitUntilStill(t *testing.T, what string, want int64, got func() int64) {
	for deadline, last, lastAt := time.Now().Add(20*time.Second), int64(-1), time.Now(); ; {
		n := got()
		if n >= want || time.Now().After(deadline) {
			return
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 3*time.Second {
			t.Logf("%s stopped at %d of %d", what, n, want)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countLoad counts each (device, seq) of the load in the capture once, the
// repeats, and returns the broker's dropped counter as read at the stop.
func countLoad(t *testing.T, path, loadPrefix string) (got, dups int64, brokerDropped string) {
	t.Helper()
	msgs, _, events := capturetest.Read(t, path)
	seen := map[[2]int]int{}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Topic, loadPrefix+"/") {
			continue
		}
		d, i, ok := loadgen.ParsePayload(m.Payload)
		if !ok || m.Topic != loadgen.TopicOf(loadPrefix, d) {
			t.Fatalf("damaged message on %q: %.60q", m.Topic, m.Payload)
		}
		if seen[[2]int{d, i}]++; seen[[2]int{d, i}] > 1 {
			dups++
		} else {
			got++
		}
	}
	for _, e := range events {
		if e.Kind == storage.EventBrokerDropped {
			brokerDropped = "; " + e.Detail
		}
	}
	return got, dups, brokerDropped
}
