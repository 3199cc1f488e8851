package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/rawmqtt"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// publishAcked publishes one QoS 1 message on conn and waits for its PUBACK.
func publishAcked(t *testing.T, conn net.Conn, topic, payload string) {
	t.Helper()
	pk := append(rawmqtt.AppendPublishHeader(nil, topic, 1, 7, len(payload)), payload...)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(pk); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x40 || binary.BigEndian.Uint16(ack[2:]) != 7 {
		t.Fatalf("PUBACK %x: %v", ack, err)
	}
}

// stopServe interrupts serve (a normal stop) and wants exit status 0.
func stopServe(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v: %s", err, stderr.String())
	}
}

// eventsOf returns the capture's events of kind.
func eventsOf(t *testing.T, path, kind string) []storage.Event {
	t.Helper()
	_, _, events := capturetest.Read(t, path)
	var out []storage.Event
	for _, e := range events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestServeAcceptSurvivesFDExhaustion runs serve with 48 file descriptors
// (prlimit), opens more idle connections than that, closes them, and wants
// serve to accept and record a client again, having said once on stderr
// and once as an event that accepting failed. mochi's accept loop returned
// on the first EMFILE: serve never accepted again.
func TestServeAcceptSurvivesFDExhaustion(t *testing.T) {
	prlimit := testbroker.Binary(t, "prlimit", "util-linux")
	bin := testbroker.BuildMqtape(t)
	path := filepath.Join(t.TempDir(), "fd.db")
	cmd, addr, stderr := startServeBinary(t, []string{prlimit, "--nofile=48:48"}, bin, path, "--connect-timeout", "1m")

	var idle []net.Conn
	for range 80 {
		c, err := net.Dial("tcp", addr) // completes in the kernel's backlog even when serve cannot accept
		if err != nil {
			break
		}
		idle = append(idle, c)
	}
	if !testbroker.Eventually(10*time.Second, func() bool { return strings.Contains(stderr.String(), "too many open files") }) {
		t.Fatalf("serve never ran out of descriptors with %d connections: %s", len(idle), stderr.String())
	}
	for _, c := range idle {
		c.Close()
	}
	conn, err := rawmqtt.Connect(addr, "after-emfile", 10*time.Second)
	if err != nil {
		t.Fatalf("no connection after the idle ones closed: %v\n%s", err, stderr.String())
	}
	publishAcked(t, conn, "fd/ok", "accepted again")
	conn.Close()
	if !testbroker.Eventually(10*time.Second, func() bool { return strings.Contains(stderr.String(), "accepting again") }) {
		t.Fatalf("serve did not report accepting again: %s", stderr.String())
	}
	stopServe(t, cmd, stderr)

	if n := strings.Count(stderr.String(), "too many open files"); n != 1 {
		t.Errorf("accept error reported %d times on stderr, want once:\n%s", n, stderr.String())
	}
	if ev := eventsOf(t, path, storage.EventAcceptError); len(ev) != 1 || !strings.Contains(ev[0].Detail, "too many open files") {
		t.Errorf("accept_error events %+v", ev)
	}
	if ev := eventsOf(t, path, storage.EventAcceptResumed); len(ev) != 1 {
		t.Errorf("accept_resumed events %+v", ev)
	}
	msgs, _, _ := capturetest.Read(t, path)
	if len(msgs) != 1 || string(msgs[0].Payload) != "accepted again" {
		t.Errorf("messages %+v", msgs)
	}
}

// waitClosed reads from conn until serve closes it; it fails after limit.
func waitClosed(t *testing.T, conn net.Conn, limit time.Duration) {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			if isTimeoutErr(err) {
				t.Fatalf("connection still open after %v", limit)
			}
			return
		}
	}
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestServeConnectTimeout: a connection that sends no CONNECT, or only
// part of one, is closed after --connect-timeout and recorded as a
// connect_timeout event; a client that connects in time stays.
func TestServeConnectTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idle.db")
	const timeout = 300 * time.Millisecond
	addr, stop := serveCLI(t, path, "--connect-timeout", timeout.String())
	dialed := time.Now()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	partial, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	partial.Write([]byte{0x10, 0x20, 0x00, 0x04, 'M', 'Q'}) // the start of a CONNECT, never finished
	honest, err := rawmqtt.Connect(addr, "in-time", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	for name, c := range map[string]net.Conn{"silent": silent, "partial CONNECT": partial} {
		waitClosed(t, c, 10*time.Second)
		if d := time.Since(dialed); d < timeout {
			t.Errorf("%s connection closed after %v, before the %v timeout", name, d, timeout)
		}
	}
	publishAcked(t, honest, "idle/ok", "still connected") // well after the timeout
	if code, errs := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	if ev := eventsOf(t, path, storage.EventConnectTimeout); len(ev) != 2 || !strings.Contains(ev[0].Detail, `"timeout_ms":300`) {
		t.Errorf("connect_timeout events %+v", ev)
	}
}

// TestServeMaxPacketSize: past --max-packet-size an authenticated client is
// disconnected and its packet not recorded; smaller ones are.
func TestServeMaxPacketSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "size.db")
	addr, stop := serveCLI(t, path, "--max-packet-size", "1KiB")
	conn, err := rawmqtt.Connect(addr, "sizer", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	publishAcked(t, conn, "size/ok", strings.Repeat("a", 900))
	big := strings.Repeat("b", 2000)
	conn.Write(append(rawmqtt.AppendPublishHeader(nil, "size/big", 1, 8, len(big)), big...))
	waitClosed(t, conn, 10*time.Second)
	if code, errs := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	msgs, _, _ := capturetest.Read(t, path)
	if len(msgs) != 1 || msgs[0].Topic != "size/ok" {
		t.Errorf("recorded %d messages, want only size/ok", len(msgs))
	}
}

// rssMB reads a process's resident set size from /proc.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestServeHostilePacketSizes: with --passwd on, 100 connections whose
// CONNECT claims 256 MB (and sends a MiB of it), and 100 more that claim
// 60 KiB and send half of it, leave serve under 150 MB RSS; the first
// kind are closed at once (packet_too_large), and an honest client still
// records. mochi allocated every claimed length up front: four such
// connections took it to 845 MB.
func TestServeHostilePacketSizes(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("dev:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hostile.db")
	cmd, addr, stderr := startServeBinary(t, nil, bin, path, "--passwd", passwd)
	base := rssMB(t, cmd.Process.Pid)

	huge := append([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 1<<20)...) // claims 256 MB
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.Write(huge) // fails once serve closes the connection
			waitClosed(t, c, 10*time.Second)
		}()
	}
	wg.Wait()
	var slow []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(append([]byte{0x10, 0x80, 0xe0, 0x03}, make([]byte, 30<<10)...)) // claims 60 KiB, sends 30
		slow = append(slow, c)
	}
	conn, err := rawmqtt.Connect(addr, "honest", 5*time.Second)
	if err == nil {
		t.Fatal("connected without a password")
	}
	conn, err = rawmqtt.ConnectAuth(addr, "honest", "dev", "s3cret", 5*time.Second)
	if err != nil {
		t.Fatalf("honest client: %v: %s", err, stderr.String())
	}
	publishAcked(t, conn, "hostile/ok", "recorded anyway")
	conn.Close()
	peak := rssMB(t, cmd.Process.Pid)
	t.Logf("serve RSS %.0f MB before, %.0f MB with 100 closed 256 MB claims and %d open 60 KiB claims", base, peak, len(slow))
	if peak > 150 {
		t.Errorf("serve RSS %.0f MB, want < 150 MB", peak)
	}
	stopServe(t, cmd, stderr)
	if ev := eventsOf(t, path, storage.EventPacketTooLarge); len(ev) != 100 {
		t.Errorf("%d packet_too_large events, want 100", len(ev))
	}
	msgs, _, _ := capturetest.Read(t, path)
	if len(msgs) != 1 || string(msgs[0].Payload) != "recorded anyway" {
		t.Errorf("messages %+v", msgs)
	}
}

// TestServeEventsAndInfo: a refused login is an auth_failed event (with
// client id, username and address, never the password); clients that
// never subscribed leave no client_unsubscribe; info sums events up per
// kind and lists the last 20 (--events: all); and info counts a message
// published retained through serve as retained.
func TestServeEventsAndInfo(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("dev:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.db")
	addr, stop := serveCLI(t, path, "--passwd", passwd)
	if _, err := rawmqtt.ConnectAuth(addr, "intruder", "dev", "hunter2-wrong", 3*time.Second); err == nil {
		t.Fatal("wrong password accepted")
	}
	const clients = 15
	for i := range clients {
		c, err := rawmqtt.ConnectAuth(addr, fmt.Sprint("dev-", i), "dev", "s3cret", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pk := append(rawmqtt.AppendPublishHeader(nil, "ev/state", 0, 0, 2), "on"...)
			pk[0] |= 0x01 // retain
			c.Write(pk)
		}
		c.Write([]byte{0xe0, 0}) // DISCONNECT
		waitClosed(t, c, 5*time.Second)
		c.Close()
	}
	if code, errs := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	_, _, events := capturetest.Read(t, path)
	var failed []storage.Event
	for _, e := range events {
		switch e.Kind {
		case storage.EventClientUnsub:
			t.Errorf("client_unsubscribe for a client that never subscribed: %s", e.Detail)
		case storage.EventAuthFailed:
			failed = append(failed, e)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Detail, `"client_id":"intruder"`) || !strings.Contains(failed[0].Detail, `"username":"dev"`) ||
		!strings.Contains(failed[0].Detail, `"remote":"127.0.0.1:`) || strings.Contains(failed[0].Detail, "hunter2") {
		t.Errorf("auth_failed events %+v", failed)
	}

	_, out, _ := runCLI(t, context.Background(), "info", path)
	for _, want := range []string{"events:    31: client_connect 15, client_disconnect 15, auth_failed 1",
		"the last 20 (11 earlier: mqtape info --events", "retained:  1 with the retain flag (0 from the broker's retained store"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "#1 client_connect "); n > 20 {
		t.Errorf("info lists %d connect lines, want at most the last 20", n)
	}
	_, all, _ := runCLI(t, context.Background(), "info", "--events", path)
	if n := strings.Count(all, "#1 client_connect "); n != 15 {
		t.Errorf("info --events lists %d connects, want 15:\n%s", n, all)
	}
}
