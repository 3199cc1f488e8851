package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/rawmqtt"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// syncBuffer is a bytes.Buffer a process writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServeBinary runs the real binary's serve into path on a free
// loopback port and returns its address once it accepts connections.
// prefix goes before the binary (e.g. prlimit and its options).
func startServeBinary(t *testing.T, prefix []string, bin, path string, args ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	stderr := &syncBuffer{}
	argv := append(append(append([]string(nil), prefix...), bin, "serve", "--listen", addr, "--quiet", "-o", path), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !testbroker.Eventually(5*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("mqtape serve did not listen on %s: %s", addr, stderr.String())
	}
	return cmd, addr, stderr
}

// ackedPublisher publishes QoS 1 messages "P-i" to topic durable/P over a
// raw connection, waiting for each PUBACK (and checking it is the 4-byte
// MQTT 3.1.1 PUBACK of that packet id), until the connection fails. acked
// holds how many were acknowledged.
func ackedPublisher(t *testing.T, addr string, p int, acked *atomic.Int64, wg *sync.WaitGroup) {
	conn, err := rawmqtt.Connect(addr, fmt.Sprintf("durable-%d", p), 3*time.Second)
	if err != nil {
		t.Error(err)
		wg.Done()
		return
	}
	go func() {
		defer wg.Done()
		defer conn.Close()
		var buf []byte
		ack := make([]byte, 4)
		for i := 0; ; i++ {
			payload := fmt.Sprintf("%d-%d", p, i)
			pid := uint16(i%65535 + 1)
			buf = append(rawmqtt.AppendPublishHeader(buf[:0], fmt.Sprintf("durable/%d", p), 1, pid, len(payload)), payload...)
			if _, err := conn.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(conn, ack); err != nil {
				return
			}
			if ack[0] != 0x40 || ack[1] != 2 || binary.BigEndian.Uint16(ack[2:]) != pid {
				t.Errorf("publisher %d: PUBACK %x for packet id %d", p, ack, pid)
				return
			}
			acked.Add(1)
		}
	}()
}

// TestServeAckedSurvivesKill9: publishers that wait for each PUBACK, then
// kill -9 of serve mid-stream; once the spool is recovered (as the next
// serve or record into the capture does), every acknowledged message is
// in the capture. Before serve
// spooled messages ahead of acknowledging them, about a hundred
// milliseconds of acknowledged messages (the uncommitted batch) were lost.
func TestServeAckedSurvivesKill9(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	path := filepath.Join(t.TempDir(), "durable.db")
	cmd, addr, stderr := startServeBinary(t, nil, bin, path)
	const publishers = 2
	var acked [publishers]atomic.Int64
	var wg sync.WaitGroup
	wg.Add(publishers)
	for p := range publishers {
		ackedPublisher(t, addr, p, &acked[p], &wg)
	}
	total := func() int64 { return acked[0].Load() + acked[1].Load() }
	if !testbroker.Eventually(20*time.Second, func() bool { return total() >= 3000 }) {
		t.Fatalf("only %d acknowledged in 20 s: %s", total(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait() // the publishers stop on the broken connection
	var ackedAt [publishers]int64
	for p := range publishers {
		ackedAt[p] = acked[p].Load()
	}

	// What the next serve or record into the capture does first.
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecoverSpool(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	msgs, _, events := capturetest.Read(t, path)
	have := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		have[string(m.Payload)] = true
	}
	recovered := 0
	for _, e := range events {
		if e.Kind == storage.EventSpoolRecovered {
			recovered++
		}
	}
	var missing []string
	for p := range publishers {
		for i := range ackedAt[p] {
			if k := strconv.Itoa(p) + "-" + strconv.FormatInt(i, 10); !have[k] {
				missing = append(missing, k)
			}
		}
	}
	t.Logf("acknowledged %d+%d, stored %d after recovery (%d spool_recovered events)", ackedAt[0], ackedAt[1], len(msgs), recovered)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged messages missing after kill -9, first %v", len(missing), missing[:min(5, len(missing))])
	}
}
