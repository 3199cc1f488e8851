package mqtapetest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtapetest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// TestFahrenheitBridge is the README's example: a complete regression test
// of a system under test driven by a recorded capture.
func TestFahrenheitBridge(t *testing.T) {
	f := mqtapetest.New(t)
	startBridge(t, f.URL(), 1.8) // the system under test
	out := f.Record("fahrenheit/#")
	f.Replay("../testdata/captures/smart-home.db", 500)
	f.Compare(out, "testdata/fahrenheit.golden.db", mqtapetest.IgnoreFields("converted_at"))
}

// startBridge starts the system under test: it republishes every
// thermostat reading of home/ROOM/thermostat/temp on fahrenheit/ROOM.
func startBridge(t *testing.T, url string, factor float64) {
	t.Helper()
	br, err := mqtt.ParseBroker(url)
	if err != nil {
		t.Fatal(err)
	}
	opts := func(id string) mqtt.Options {
		return mqtt.Options{Broker: br, ClientID: id, CleanSession: true, ConnectTimeout: 5 * time.Second}
	}
	pub, err := mqttclient.Connect(context.Background(), opts("bridge-pub"), mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Disconnect(100 * time.Millisecond) })
	sub, err := mqttclient.Connect(context.Background(), opts("bridge-sub"), mqtt.Handlers{Message: func(m mqtt.Message) {
		var in struct {
			T  float64 `json:"t"`
			TS int64   `json:"ts"`
		}
		if json.Unmarshal(m.Payload, &in) != nil {
			return
		}
		room := strings.Split(m.Topic, "/")[1]
		out, _ := json.Marshal(map[string]any{"f": float64(int((in.T*factor+32)*10+0.5)) / 10, "ts": in.TS,
			"converted_at": time.Now().UnixMilli()})
		pub.Publish("fahrenheit/"+room, 1, false, out)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Disconnect(100 * time.Millisecond) })
	if _, err := sub.Subscribe(context.Background(), []mqtt.Subscription{{Filter: "home/+/thermostat/temp", QoS: 1}}); err != nil {
		t.Fatal(err)
	}
}
