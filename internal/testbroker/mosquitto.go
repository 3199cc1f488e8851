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
	"testing"
	"time"
)

// Mosquitto is a running mosquitto process.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
}

// URL returns mqtt://addr.
func (m *Mosquitto) URL() string { return "mqtt://" + m.Addr }

// StartMosquitto runs mosquitto with the given extra config lines on a free
// loopback port until the test ends.
func StartMosquitto(t testing.TB, extraConfig ...string) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto is not installed, but CI=true requires the interop tests to run (apt-get install -y mosquitto)")
		}
		t.Skip("mosquitto not installed; interop test skipped (it runs in CI)")
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	lines := append([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type subscribe",
		"user root",
		"max_queued_messages 0",
		"persistence false",
	}, extraConfig...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logLines = append(logLines, sc.Text())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-logDone
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", strings.Join(logLines, "\n"))
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
