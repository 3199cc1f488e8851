package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// mqttJS returns node and the MQTT.js publisher script; without node or
// e2e/js/node_modules (.ci/run installs both) the test skips, except in CI.
func mqttJS(t *testing.T) (node, script string) {
	t.Helper()
	node = nodeWith(t, "mqtt")
	return node, filepath.Join("js", "publish5.js")
}

// nodeWith returns node once the npm package pkg is installed in e2e/js;
// without them (.ci/run installs both) the test skips, except in CI.
func nodeWith(t *testing.T, pkg string) string {
	t.Helper()
	node := testbroker.Binary(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join("js", "node_modules", pkg)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed in e2e/js, but CI=true requires the interop test: (cd e2e/js && npm ci)", pkg)
		}
		t.Skipf("%s not installed (cd e2e/js && npm ci); interop test skipped (it runs in CI)", pkg)
	}
	return node
}

// TestServeMQTTJSv5Acks publishes through serve with MQTT.js 5, a client
// that checks the reason code of every PUBACK/PUBREC, at QoS 1 and 2 with
// user properties, content type, response topic, correlation data and
// expiry; every message must be acknowledged and in the capture with its
// properties and packet id. mochi's PUBACK carried reason code 0x01 and
// the PUBLISH's properties: MQTT.js stopped at the first one.
func TestServeMQTTJSv5Acks(t *testing.T) {
	node, script := mqttJS(t)
	path := filepath.Join(t.TempDir(), "js.db")
	addr, stop := serveCLI(t, path)
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, "mqtt://"+addr, fmt.Sprint(n))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("MQTT.js publisher: %v: %s\n%s", err, stderr.String(), out)
	}
	acked, maxPacket := 0, 0.0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var l struct {
			Connack    map[string]any `json:"connack"`
			Topic      string
			ReasonCode int
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("publisher line %q: %v", sc.Text(), err)
		}
		if l.Connack != nil {
			maxPacket, _ = l.Connack["maximumPacketSize"].(float64)
		}
		if l.Topic != "" {
			acked++
			if l.ReasonCode != 0 {
				t.Errorf("%s acknowledged with reason code %#x", l.Topic, l.ReasonCode)
			}
		}
	}
	if acked != 2*n {
		t.Fatalf("%d of %d publishes acknowledged:\n%s", acked, 2*n, out)
	}
	if maxPacket != 16<<20 {
		t.Errorf("CONNACK maximum packet size %v, want 16 MiB", maxPacket)
	}
	if code, errs := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	msgs, _, _ := capturetest.Read(t, path)
	got := map[string]storage.Message{}
	for _, m := range msgs {
		got[m.Topic] = m
	}
	for qos := 1; qos <= 2; qos++ {
		for i := range n {
			topic := fmt.Sprintf("js/q%d/%d", qos, i)
			m, ok := got[topic]
			if !ok {
				t.Errorf("%s not in the capture", topic)
				continue
			}
			p := m.Props
			if m.QoS != byte(qos) || m.ClientID != "mqttjs-v5" || m.PacketID == 0 || p == nil ||
				p.ContentType != "application/json" || p.ResponseTopic != fmt.Sprintf("js/reply/%d", i) ||
				string(p.CorrelationData) != fmt.Sprintf("corr-%d-%d", qos, i) || p.MessageExpiry == nil ||
				*p.MessageExpiry != 3600 || len(p.UserProperties) != 2 || p.UserProperties[1].Value != fmt.Sprint(i) {
				t.Errorf("%s recorded as %+v, properties %+v", topic, m, p)
			}
		}
	}
}
