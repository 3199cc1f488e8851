package cli

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusalNotAboutCredentials: a broker that refuses for another reason
// than the login (here MQTT 3.1.1's "server unavailable") is not answered
// with advice about passwords; the capture is not created.
func TestRefusalNotAboutCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // reads the CONNECT, answers CONNACK code 3, hangs up
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			if _, err := conn.Read(buf); err == nil {
				conn.Write([]byte{0x20, 2, 0, 3})
			}
			conn.Close()
		}
	}()
	out := filepath.Join(t.TempDir(), "r.db")
	code, _, stderr := runCLI(t, context.Background(), "record", "-b", "mqtt://"+ln.Addr().String(), "-o", out)
	if code != exitConnection || !strings.Contains(stderr, "connection refused by broker") ||
		!strings.Contains(stderr, "(CONNACK code 3)") || strings.Contains(stderr, "password") {
		t.Errorf("exit %d, want %d, the refusal without password advice:\n%s", code, exitConnection, stderr)
	}
	if fileExists(out) {
		t.Errorf("%s created", out)
	}
}
