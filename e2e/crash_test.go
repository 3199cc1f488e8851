package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/rawmqtt"
	"github.com/mqtape/mqtape/internal/testbroker"

	"github.com/mqtape/mqtape/storage"
)

// floodPayload is message i of publisher p: a header and a filler derived
// from both, 16 to 527 bytes, so any damage or mix-up shows.
func floodPayload(p, i int) []byte {
	b := fmt.Appendf(nil, "p%d:%09d:", p, i)
	for n := 16 + (i*37)%512; len(b) < n; {
		b = append(b, floodFill(p, i, len(b)))
	}
	return b
}

func floodFill(p, i, at int) byte { return byte('a' + (i+at+p)%26) }

// parseFlood returns the publisher and index of a flood payload, and
// whether the payload is exactly what floodPayload made (without
// allocating: it runs for every message of the crash test under -race).
func parseFlood(b string) (p, i int, ok bool) {
	if len(b) < 13 || b[0] != 'p' || b[2] != ':' || b[12] != ':' || b[1] < '0' || b[1] > '9' {
		return 0, 0, false
	}
	p = int(b[1] - '0')
	for _, c := range b[3:12] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		i = i*10 + int(c-'0')
	}
	if len(b) != max(13, 16+(i*37)%512) {
		return p, i, false
	}
	for at := 13; at < len(b); at++ {
		if b[at] != floodFill(p, i, at) {
			return p, i, false
		}
	}
	return p, i, true
}

// rawPublisher floods a broker with QoS 0 PUBLISH packets over one raw TCP
// connection (no client library: the publisher must not be what limits
// the rate) until stop is closed. It returns how many it wrote.
func rawPublisher(t *testing.T, addr string, id int, topic string, stop <-chan struct{}) (sent *atomic.Int64, done <-chan struct{}) {
	t.Helper()
	conn, err := rawmqtt.Connect(addr, fmt.Sprintf("flood-%d-%d", os.Getpid(), id), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sent = new(atomic.Int64)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer conn.Close()
		w := bufio.NewWriterSize(conn, 64<<10)
		for i := 0; ; i++ {
			if i%256 == 0 {
				select {
				case <-stop:
					w.Flush()
					return
				default:
				}
			}
			p := floodPayload(id, i)
			b := rawmqtt.AppendPublishHeader(nil, topic, 0, 0, len(p))
			if _, err := w.Write(append(b, p...)); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	return sent, ch
}

// waitSubscribed waits until the capture at path has a subscribed event.
func waitSubscribed(t *testing.T, path string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := storage.Open(path); err == nil {
			ev, _ := c.Events(context.Background(), 0)
			c.Close()
			for _, e := range ev {
				if e.Kind == storage.EventSubscribed {
					return
				}
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("recorder exited before subscribing: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("recorder did not subscribe within 10 s")
}

// serveBroker runs `mqtape serve` (the embedded mochi broker, broker.Start,
// inside the real binary) on a free loopback port until the test ends. The
// crash test uses it rather than a broker in the test process: under -race
// an in-process broker forwards only 4–8k msg/s on a 2-core machine, too
// slow for a flood.
func serveBroker(t *testing.T, bin string) (url, addr string) {
	t.Helper()
	addr = freeAddr(t)
	srv := exec.Command(bin, "serve", "--listen", addr, "--quiet", "-o", filepath.Join(t.TempDir(), "serve.db"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "mqtt://" + addr, addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mqtape serve did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrashKill9MidFlood kills the real recorder with SIGKILL while two
// raw-TCP publishers flood it (tens of thousands of msgs/s), then proves the
// file is sound: it opens, mqtape check passes (the session is reported as
// not closed cleanly), seq has no holes up to the last committed message,
// nothing committed before the kill is missing, every payload is intact,
// each publisher's messages are in order, and the file takes a new session.
func TestCrashKill9MidFlood(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	url, addr := serveBroker(t, bin)
	path := filepath.Join(t.TempDir(), "crash.db")
	k := killMidFlood(t, bin, url, addr, path)

	// The file opens and mqtape check (the real binary) passes.
	checkCrashedCapture(t, bin, path)
	t.Logf("checked at %s", time.Since(k.start).Round(time.Millisecond))
	n := verifyFloodExport(t, bin, path)
	rate := float64(k.committed-k.firstSeen) / k.lastAt.Sub(k.firstAt).Seconds()
	t.Logf("kill -9 %s into the flood: %d messages committed (recording at ≈%.0f msg/s), %d published by then; seq 1–%d without holes, all payloads intact",
		k.killedAfter.Round(time.Millisecond), n, rate, k.sentAtKill, n)
	if n < k.committed {
		t.Errorf("%d messages after the kill, but %d were committed before it", n, k.committed)
	}

	t.Logf("verified at %s", time.Since(k.start).Round(time.Millisecond))
	// The crashed capture takes a new session (the real binary again).
	out, err := exec.Command(bin, "record", "-b", url, "--duration", "200ms", "--quiet", "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("record after the crash: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "check", path).CombinedOutput(); err != nil {
		t.Fatalf("check after the next session: %v\n%s", err, out)
	}
}

// killed is what killMidFlood saw: when it started, what was committed
// (first and last poll that saw commits), what was published by the kill
// and how long after the start the kill came.
type killed struct {
	start                time.Time
	committed, firstSeen int64
	firstAt, lastAt      time.Time
	sentAtKill           int64
	killedAfter          time.Duration
}

// killMidFlood records flood/# from the broker at url with the real binary
// into path while two raw publishers flood it, SIGKILLs the recorder mid
// flood and stops the publishers.
func killMidFlood(t *testing.T, bin, url, addr, path string) killed {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "record", "-b", url, "-t", "flood/#", "--quiet", "-o", path)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitSubscribed(t, path, exited)

	stop := make(chan struct{})
	var sent [2]*atomic.Int64
	var done [2]<-chan struct{}
	for p := range 2 {
		sent[p], done[p] = rawPublisher(t, addr, p, fmt.Sprintf("flood/%d", p), stop)
	}
	var once sync.Once
	stopPublishers := func() {
		once.Do(func() { close(stop) })
		<-done[0]
		<-done[1]
	}
	t.Cleanup(stopPublishers)

	// Let it record mid-flood for a while, then SIGKILL. The rate is
	// measured between the first and the last poll that saw commits.
	k := killed{start: time.Now()}
	for time.Since(k.start) < 5*time.Second {
		time.Sleep(100 * time.Millisecond)
		if c, err := storage.Open(path); err == nil {
			k.committed, _ = c.MaxSeq(context.Background())
			c.Close()
		}
		if k.committed > 0 && k.firstAt.IsZero() {
			k.firstSeen, k.firstAt = k.committed, time.Now()
		}
		k.lastAt = time.Now()
		if k.committed >= 25000 && time.Since(k.firstAt) > 500*time.Millisecond {
			break
		}
	}
	k.sentAtKill = sent[0].Load() + sent[1].Load()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	k.killedAfter = time.Since(k.start)
	err := <-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("recorder was not killed by SIGKILL: %v (stderr %s)", err, stderr.String())
	}
	time.Sleep(50 * time.Millisecond)
	if sent[0].Load()+sent[1].Load() == k.sentAtKill {
		t.Log("note: the publishers had stalled at the moment of the kill")
	}
	stopPublishers()
	t.Logf("publishers stopped at %s", time.Since(k.start).Round(time.Millisecond))
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Logf("no -wal after the kill: %v", err)
	}
	return k
}

// checkCrashedCapture: mqtape check --full passes on the killed
// recorder's capture, which holds one session, not closed, with a last
// commit time.
func checkCrashedCapture(t *testing.T, bin, path string) {
	t.Helper()
	out, err := exec.Command(bin, "check", "--full", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verdict:   OK") || !strings.Contains(string(out), "not closed cleanly") {
		t.Fatalf("check after kill -9: %v\n%s", err, out)
	}
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := c.Sessions(context.Background())
	c.Close()
	if err != nil || len(sessions) != 1 || sessions[0].Closed() || sessions[0].LastNS == 0 {
		t.Fatalf("sessions after kill: %+v %v", sessions, err)
	}
}

// verifyFloodExport reads every message with the real binary (reading
// 30k rows through the race-instrumented SQLite in this process takes
// seconds), checks that seq has no holes, that every payload is intact and
// each publisher's messages are in order, and returns how many there are.
func verifyFloodExport(t *testing.T, bin, path string) int64 {
	t.Helper()
	exp := exec.Command(bin, "export", "--format", "csv", path)
	stdout, _ := exp.StdoutPipe()
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	var n, want int64
	next := [2]int{-1, -1}
	r := csv.NewReader(bufio.NewReaderSize(stdout, 1<<20))
	r.ReuseRecord = true
	col := map[string]int{}
	hdr, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hdr {
		col[h] = i
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		want++
		if rec[col["seq"]] != strconv.FormatInt(want, 10) {
			t.Fatalf("seq hole: got seq %s, want %d", rec[col["seq"]], want)
		}
		topic, payload := rec[col["topic"]], rec[col["payload"]]
		p, i, ok := parseFlood(payload)
		if !ok || topic != "flood/"+strconv.Itoa(p) {
			t.Fatalf("seq %d damaged: topic %q payload %.40q", want, topic, payload)
		}
		if i <= next[p] {
			t.Fatalf("seq %d: publisher %d message %d after %d", want, p, i, next[p])
		}
		next[p] = i
		n++
	}
	if err := exp.Wait(); err != nil {
		t.Fatalf("export: %v", err)
	}
	return n
}
