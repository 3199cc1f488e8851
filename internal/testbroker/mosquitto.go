// Package testbroker starts real brokers for tests: the Debian mosquitto
// binary on a free loopback port. Tests skip when mosquitto is absent, except
// in CI (CI=true), where its absence fails the test loudly.
package testbroker

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a running mosquitto process.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	bin  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  []string
}

// URL returns mqtt://addr.
func (m *Mosquitto) URL() string { return "mqtt://" + m.Addr }

// StartMosquitto runs mosquitto with the given extra config lines on a free
// loopback port until the test ends. It never drops messages to a slow
// subscriber (max_queued_messages 10^7).
func StartMosquitto(t testing.TB, extraConfig ...string) *Mosquitto {
	t.Helper()
	// A large limit, not 0 ("no limit"): Debian's mosquitto 2.0.11 now and
	// then stops sending a QoS 1 subscriber its queued messages with 0 (its
	// inflight quota accounting, fixed upstream in 2.0.13).
	return startMosquitto(t, append([]string{"log_type subscribe", "user root", "max_queued_messages 10000000"}, extraConfig...))
}

// StartMosquittoDefaults runs mosquitto as installed: nothing in its
// configuration but the loopback listener, anonymous access and logging to
// stderr (20 messages in flight and 1000 queued per client, $SYS every 10 s).
func StartMosquittoDefaults(t testing.TB) *Mosquitto {
	t.Helper()
	return startMosquitto(t, nil)
}

func startMosquitto(t testing.TB, extraConfig []string) *Mosquitto {
	t.Helper()
	bin := findBinary(t, "mosquitto", "mosquitto")
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	lines := append([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}, extraConfig...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), bin: bin, conf: conf}
	m.start(t)
	t.Cleanup(func() {
		m.stop(true)
		if t.Failed() {
			m.mu.Lock()
			t.Logf("mosquitto log:\n%s", strings.Join(m.log, "\n"))
			m.mu.Unlock()
		}
	})
	return m
}

func (m *Mosquitto) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			m.mu.Lock()
			m.log = append(m.log, sc.Text())
			m.mu.Unlock()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends mosquitto: killed, or with SIGTERM so it saves its persistence file.
func (m *Mosquitto) stop(kill bool) {
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if kill {
		cmd.Process.Kill()
	} else {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	cmd.Wait()
}

// Restart stops mosquitto cleanly (it saves persistent sessions when
// configured with persistence) and starts it again on the same port.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.stop(false)
	m.start(t)
}

// Binary finds a program on PATH or in Debian's sbin directories, like the
// brokers: absent, the test skips, except in CI (CI=true), where it fails.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	return findBinary(t, name, debianPackage)
}

// findBinary finds a broker binary on PATH or in the sbin directories
// Debian installs to. Absent, the test skips — except in CI (CI=true), where
// the interop tests must run, so it fails loudly.
func findBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if bin, err := exec.LookPath(name); err == nil {
		return bin
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, but CI=true requires the interop tests to run (apt-get install -y %s)", name, debianPackage)
	}
	t.Skipf("%s not installed; interop test skipped (it runs in CI)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
