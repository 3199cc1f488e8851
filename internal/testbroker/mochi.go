package testbroker

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Mochi is the embedded mochi-mqtt broker of `mqtape serve` with mochi's
// default limits and nothing recorded (bench/serve/plainbroker), running as
// its own process: under -race a broker inside the test process forwards
// only a few thousand messages a second.
type Mochi struct {
	Addr string
}

// URL returns mqtt://addr.
func (m *Mochi) URL() string { return "mqtt://" + m.Addr }

// StartMochi builds and runs bench/serve/plainbroker on a free loopback
// port until the test ends.
func StartMochi(t testing.TB) *Mochi {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plainbroker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mqtape/mqtape/bench/serve/plainbroker").CombinedOutput(); err != nil {
		t.Fatalf("build plainbroker: %v\n%s", err, out)
	}
	m := &Mochi{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cmd := exec.Command(bin, "-listen", m.Addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", m.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("plainbroker did not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
