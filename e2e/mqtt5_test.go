package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/storage"
)

func connect5(t *testing.T, url, id string) mqtt.Client {
	t.Helper()
	o := clientOpts(t, url, id)
	o.ProtocolVersion = 5
	c, err := mqttclient.Connect(context.Background(), o, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(50 * time.Millisecond) })
	return c
}

func publish5(t *testing.T, c mqtt.Client, topic string, qos byte, retain bool, payload []byte, p *mqtt.Properties) {
	t.Helper()
	tok := c.(mqtt.PropsPublisher).PublishProps(topic, qos, retain, payload, p)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publish timed out")
	}
}

var testProps = func() *mqtt.Properties {
	one, exp := byte(1), uint32(3600)
	return &mqtt.Properties{ContentType: "application/json", PayloadFormat: &one, MessageExpiry: &exp,
		ResponseTopic: "reply/dev1", CorrelationData: []byte{0, 0xff, 0x80, 0x01},
		UserProperties: []mqtt.UserProperty{{Key: "trace", Value: "a"}, {Key: "site", Value: "x"}, {Key: "trace", Value: "b"}}}
}()

// mqtt5RoundTrip records with -V 5, checks retain-as-published and the
// properties, then replays with -V 5 into dst while recording there.
func mqtt5RoundTrip(t *testing.T, srcURL, dstURL string) {
	pub := connect5(t, srcURL, "pub5-"+t.Name())
	publish5(t, pub, "dev/1/status", 1, true, []byte("online"), nil) // in the retained store before recording
	first := filepath.Join(t.TempDir(), "v5.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := recordCLI(t, ctx, first, "--broker", srcURL, "-V", "5", "--quiet")
	// The store's retained message is recorded before anything live is published.
	waitFor(t, 5*time.Second, func() bool { return countMessages(first) >= 1 }, "the retained message in the capture")
	publish5(t, pub, "dev/1/status", 1, true, []byte("still online"), nil)     // live, published retained
	publish5(t, pub, "dev/1/data", 1, false, []byte(`{"v":1}`), testProps)     // properties
	publish5(t, pub, "dev/1/plain", 0, false, []byte("no props"), nil)         // none
	publish5(t, pub, "dev/1/bin", 2, false, []byte{0, 1, 2}, &mqtt.Properties{ // binary correlation only
		CorrelationData: []byte{0xde, 0xad, 0xbe, 0xef}})
	waitFor(t, 5*time.Second, func() bool { return countMessages(first) >= 5 }, "5 messages in the capture")
	cancel()
	if code, _, stderr := wait(); code != 0 {
		t.Fatalf("record -V 5: exit %d %s", code, stderr)
	}
	c, err := storage.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := c.Page(context.Background(), storage.Query{})
	sessions, _ := c.Sessions(context.Background())
	c.Close()
	if len(msgs) != 5 || sessions[0].Protocol != 5 {
		t.Fatalf("recorded %d messages (protocol %d): %+v", len(msgs), sessions[0].Protocol, msgs)
	}
	if m := msgs[0]; !m.Retain || !m.FromStore || string(m.Payload) != "online" {
		t.Errorf("store message = %+v", m)
	}
	if m := msgs[1]; !m.Retain || m.FromStore || string(m.Payload) != "still online" {
		t.Errorf("live retained publish = %+v, want retain=1 from_store=0 (retain as published)", m)
	}
	wantProps := testProps
	if !reflect.DeepEqual(msgs[2].Props, wantProps) {
		t.Errorf("properties = %+v, want %+v", msgs[2].Props, wantProps)
	}
	if msgs[3].Props != nil || !bytes.Equal(msgs[4].Props.CorrelationData, []byte{0xde, 0xad, 0xbe, 0xef}) {
		t.Errorf("props: %+v / %+v", msgs[3].Props, msgs[4].Props)
	}

	_, out, _ := runCLI(t, context.Background(), "export", "-t", "dev/1/data", first)
	var rec map[string]any
	json.Unmarshal([]byte(out), &rec)
	props, _ := rec["properties"].(map[string]any)
	if props["content_type"] != "application/json" || props["payload_format"] != 1.0 || props["message_expiry"] != 3600.0 ||
		props["response_topic"] != "reply/dev1" || props["correlation_data_b64"] != "AP+AAQ==" {
		t.Errorf("export properties = %v", props)
	}
	if up, _ := json.Marshal(props["user_properties"]); string(up) != `[{"key":"trace","value":"a"},{"key":"site","value":"x"},{"key":"trace","value":"b"}]` {
		t.Errorf("user_properties = %s", up)
	}
	_, out, _ = runCLI(t, context.Background(), "export", "-t", "dev/1/plain", first)
	if strings.Contains(out, "properties") {
		t.Errorf("properties printed for a message without: %s", out)
	}

	// Replay into dst (as MQTT 5, the capture's version, without -V),
	// recorded there with -V 5.
	second := filepath.Join(t.TempDir(), "v5-replayed.db")
	wait = recordCLI(t, context.Background(), second, "--broker", dstURL, "-V", "5", "--quiet", "--count", "5")
	if code, _, stderr := runCLI(t, context.Background(), "play", first, "--broker", dstURL, "--speed", "max", "--quiet"); code != 0 {
		t.Fatalf("play an MQTT 5 capture: exit %d %s", code, stderr)
	}
	if code, _, stderr := wait(); code != 0 {
		t.Fatalf("record replayed: exit %d %s", code, stderr)
	}
	c, _ = storage.Open(second)
	got, _ := c.Page(context.Background(), storage.Query{})
	c.Close()
	byTopic := map[string]storage.Message{}
	for _, m := range got {
		byTopic[m.Topic] = m
	}
	if m := byTopic["dev/1/data"]; !reflect.DeepEqual(m.Props, wantProps) {
		t.Errorf("replayed properties = %+v, want %+v", m.Props, wantProps)
	}
	if m := byTopic["dev/1/bin"]; m.Props == nil || !bytes.Equal(m.Props.CorrelationData, []byte{0xde, 0xad, 0xbe, 0xef}) || m.QoS != 2 {
		t.Errorf("replayed binary correlation = %+v", m)
	}
	if code, out, _ := runCLI(t, context.Background(), "diff", first, second); code != exitOK {
		t.Errorf("diff of an MQTT 5 capture and the recording of its replay: exit %d\n%s", code, out)
	}

	// -V 311 replays without the properties and says how many lose them.
	code, out, stderr := runCLI(t, context.Background(), "play", first, "--broker", dstURL, "-V", "311", "--speed", "max", "--json")
	var rep struct {
		PropsDropped int64 `json:"properties_dropped"`
	}
	json.Unmarshal([]byte(out), &rep)
	if code != exitOK || rep.PropsDropped != 2 ||
		!strings.Contains(stderr, "was recorded with MQTT 5: over MQTT 3.1.1 (-V 311) 2 messages of 5 lose their properties") ||
		!strings.Contains(stderr, "2 messages published without their MQTT 5 properties") {
		t.Errorf("play -V 311 of an MQTT 5 capture: exit %d, %d dropped\n%s", code, rep.PropsDropped, stderr)
	}
}

func TestMQTT5Mochi(t *testing.T) {
	mqtt5RoundTrip(t, startBroker(t).URL(), startBroker(t).URL())
}

func TestMQTT5Mosquitto(t *testing.T) {
	mqtt5RoundTrip(t, testbroker.StartMosquitto(t).URL(), testbroker.StartMosquitto(t).URL())
}

func TestMQTT5ReasonCodes(t *testing.T) {
	b := startBroker(t)
	_, stderr := "", ""
	code, _, stderr := runCLI(t, context.Background(), "record", "-b", b.URL(), "-V", "7", "-o", filepath.Join(t.TempDir(), "x.db"))
	if code != exitUsage || !strings.Contains(stderr, "--protocol-version") {
		t.Errorf("-V 7: exit %d %q", code, stderr)
	}
	if got := mqtt.ReasonText(0x86); got != "bad username or password" {
		t.Errorf("ReasonText(0x86) = %q", got)
	}
}

// TestServeRecordsMQTT5Properties: inside the broker, an MQTT 5 publisher's
// properties are recorded with its client id and retain flag.
func TestServeRecordsMQTT5Properties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve5.db")
	addr, stop := serveCLI(t, path)
	pub := connect5(t, "mqtt://"+addr, "device-5")
	publish5(t, pub, "dev/5/data", 1, true, []byte(`{"v":5}`), testProps)
	pub.Disconnect(10 * time.Millisecond)
	if code, stderr := stop(); code != 0 {
		t.Fatalf("serve: %d %s", code, stderr)
	}
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, _ := c.Page(context.Background(), storage.Query{})
	if len(msgs) != 1 || msgs[0].ClientID != "device-5" || !msgs[0].Retain || !reflect.DeepEqual(msgs[0].Props, testProps) {
		t.Fatalf("recorded %+v (props %+v)", msgs, msgs[0].Props)
	}
}
