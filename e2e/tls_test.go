package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1 signed by it.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqtape test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, cert, key
}

// TestTLSVerifiesByDefault: serve speaks TLS; record verifies the broker's
// certificate unless told otherwise.
func TestTLSVerifiesByDefault(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	addr, stop := serveCLI(t, filepath.Join(dir, "served.db"), "--cert", cert, "--key", key)
	defer stop()
	url := "mqtts://" + addr
	out := filepath.Join(dir, "rec.db")

	code, _, stderr := runCLI(t, context.Background(), "record", "-b", url, "--count", "1", "--connect-timeout", "3s", "-o", out, "--quiet")
	if code != exitConnection || !strings.Contains(stderr, "certificate") {
		t.Errorf("unknown CA: exit %d, %q; want a certificate error and exit 3", code, stderr)
	}
	for _, extra := range [][]string{{"--cafile", ca}, {"--insecure"}} {
		wait := recordCLI(t, context.Background(), out, append([]string{"-b", url, "--count", "1", "--quiet"}, extra...)...)
		br, _ := mqtt.ParseBroker(url)
		pub, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "tls-pub",
			CleanSession: true, ConnectTimeout: 3 * time.Second, TLS: mqtt.TLSOptions{CAFile: ca}}, mqtt.Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		testbroker.Publish(t, pub, "secure/topic", 1, false, []byte("over TLS"))
		pub.Disconnect(10 * time.Millisecond)
		if code, _, stderr := wait(); code != 0 {
			t.Fatalf("record %v: exit %d %s", extra, code, stderr)
		}
	}
	_, exp, _ := runCLI(t, context.Background(), "export", out)
	if strings.Count(exp, "over TLS") != 2 {
		t.Errorf("export: %s", exp)
	}
}

// TestServeWebsocket: devices on MQTT over websockets are recorded too.
func TestServeWebsocket(t *testing.T) {
	dir := t.TempDir()
	ws := freeAddr(t)
	_, stop := serveCLI(t, filepath.Join(dir, "ws.db"), "--ws", ws)
	var c mqtt.Client
	var err error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err = mqttclient.Connect(context.Background(), clientOpts(t, "ws://"+ws, "ws-device"), mqtt.Handlers{}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	testbroker.Publish(t, c, "ws/topic", 1, true, []byte("via websocket"))
	c.Disconnect(10 * time.Millisecond)
	if code, stderr := stop(); code != 0 {
		t.Fatalf("serve: %d %s", code, stderr)
	}
	_, exp, _ := runCLI(t, context.Background(), "export", filepath.Join(dir, "ws.db"))
	if !strings.Contains(exp, `"client_id":"ws-device"`) || !strings.Contains(exp, "via websocket") || !strings.Contains(exp, `"retain":true`) {
		t.Errorf("export: %s", exp)
	}
}
