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
	"testing"
	"time"
)

// NATS is a running nats-server with its MQTT listener. NATS speaks MQTT
// 3.1.1 only, needs JetStream for MQTT (sessions and retained messages live
// in its store directory), refuses QoS 2 publishes and topics with '.' or
// spaces, and delivers its internal '$JS/…' and '$MQTT/…' topics to a '#'
// subscriber (against MQTT 4.7.2).
type NATS struct {
	Addr string // MQTT listener, 127.0.0.1:port
	cmd  *exec.Cmd
}

// URL returns mqtt://addr.
func (n *NATS) URL() string { return "mqtt://" + n.Addr }

// StartNATS runs the Debian nats-server on free loopback ports (its own
// client port and the MQTT listener) until the test ends. Tests skip when
// nats-server is absent, except in CI (CI=true), where its absence fails
// the test loudly.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	bin := findBinary(t, "nats-server", "nats-server")
	dir := t.TempDir()
	mqttPort, clientPort := freePort(t), freePort(t)
	conf := filepath.Join(dir, "nats.conf")
	lines := []string{
		"server_name: mqtape_test",
		fmt.Sprintf("listen: 127.0.0.1:%d", clientPort),
		fmt.Sprintf("jetstream { store_dir: %q }", filepath.Join(dir, "js")),
		fmt.Sprintf("mqtt { listen: 127.0.0.1:%d }", mqttPort),
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &NATS{Addr: fmt.Sprintf("127.0.0.1:%d", mqttPort), cmd: cmd}
	var mu sync.Mutex
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logLines = append(logLines, sc.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-logDone
		if t.Failed() {
			t.Logf("nats-server log:\n%s", strings.Join(logLines, "\n"))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("nats-server did not listen on %s: %v\n%s", n.Addr, err, strings.Join(logLines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
