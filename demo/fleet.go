// Package demo simulates a fleet of MQTT devices for `mqtape demo`: JSON
// telemetry at different rates, retained status topics with last wills, a
// device that drops off (its will is published) and comes back, binary
// payloads and an occasional malformed payload. It talks to the broker over
// real TCP like real devices.
package demo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// Fleet is a set of simulated devices.
type Fleet struct {
	// Broker is the broker's URL (mqtt://127.0.0.1:PORT).
	Broker string
	// Kick drops a client's connection without DISCONNECT (the embedded
	// broker's Kick), so its will is published; nil disables the drop-off.
	Kick func(clientID string) bool
	// Seed makes a run repeatable.
	Seed uint64

	published atomic.Int64
	devices   []*device
}

type device struct {
	id      string
	status  string // retained status topic ("" for none)
	publish func(d *device, r *rand.Rand, tick int) (topic string, payload []byte, qos byte)
	every   time.Duration
	client  mqtt.Client
	mu      sync.Mutex
}

var rooms = []string{"kitchen", "living", "bedroom", "bath", "office", "hall"}

func (f *Fleet) build() {
	f.devices = nil
	for i, room := range rooms {
		f.devices = append(f.devices,
			&device{id: "thermo-" + room, status: "home/" + room + "/thermostat/status", every: time.Duration(500+200*i) * time.Millisecond,
				publish: thermostat(room)},
			&device{id: "light-" + room, status: "home/" + room + "/light/state", every: time.Duration(3+i) * time.Second,
				publish: light(room)})
	}
	for line := 1; line <= 2; line++ {
		for m := 1; m <= 4; m++ {
			f.devices = append(f.devices, &device{id: fmt.Sprintf("press-%d-%d", line, m),
				status: fmt.Sprintf("plant/line%d/press-%d/status", line, m), every: 100 * time.Millisecond,
				publish: press(line, m)})
		}
		f.devices = append(f.devices, &device{id: fmt.Sprintf("plc-%d", line), status: fmt.Sprintf("plant/line%d/plc/status", line),
			every: 200 * time.Millisecond, publish: plc(line)})
	}
	f.devices = append(f.devices,
		&device{id: "garage-door", status: "home/garage/door/status", every: time.Second, publish: door},
		&device{id: "garden-camera", status: "home/garden/camera/status", every: 4 * time.Second, publish: camera},
		&device{id: "weather-station", status: "outdoor/weather/status", every: 2 * time.Second, publish: weather},
	)
}

// Devices returns how many devices the fleet simulates.
func (f *Fleet) Devices() int {
	if f.devices == nil {
		f.build()
	}
	return len(f.devices)
}

// Published returns how many messages the fleet has published.
func (f *Fleet) Published() int64 { return f.published.Load() }

func (f *Fleet) connect(ctx context.Context, d *device) error {
	br, err := mqtt.ParseBroker(f.Broker)
	if err != nil {
		return err
	}
	o := mqtt.Options{Broker: br, ClientID: d.id, CleanSession: true, KeepAlive: 30 * time.Second,
		ConnectTimeout: 5 * time.Second}
	if d.status != "" {
		o.Will = &mqtt.Will{Topic: d.status, Payload: []byte("offline"), QoS: 1, Retain: true}
	}
	c, err := mqttclient.Connect(ctx, o, mqtt.Handlers{})
	if err != nil {
		return fmt.Errorf("device %s: %w", d.id, err)
	}
	d.mu.Lock()
	d.client = c
	d.mu.Unlock()
	if d.status != "" {
		f.send(d, d.status, []byte("online"), 1, true)
	}
	return nil
}

func (f *Fleet) send(d *device, topic string, payload []byte, qos byte, retain bool) {
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	if c == nil {
		return
	}
	tok := c.Publish(topic, qos, retain, payload)
	if qos > 0 {
		select {
		case <-tok.Done():
		case <-time.After(5 * time.Second):
		}
	}
	if tok.Error() == nil {
		f.published.Add(1)
	}
}

// Connect connects every device; each publishes its retained "online"
// status, so a recorder that subscribes afterwards finds a retained state.
func (f *Fleet) Connect(ctx context.Context) error {
	if f.devices == nil {
		f.build()
	}
	for _, d := range f.devices {
		if err := f.connect(ctx, d); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

// Run lets the devices publish for d. The garage door drops off a third of
// the way in (the broker publishes its will) and reconnects at two thirds.
func (f *Fleet) Run(ctx context.Context, dur time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var wg sync.WaitGroup
	for i, d := range f.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(f.Seed, uint64(i)))
			// Spread start times so devices do not tick in lockstep.
			t := time.NewTimer(time.Duration(r.Int64N(int64(d.every))))
			defer t.Stop()
			for tick := 0; ; tick++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				topic, payload, qos := d.publish(d, r, tick)
				f.send(d, topic, payload, qos, false)
				// Jitter ±20 % like real devices.
				t.Reset(time.Duration(float64(d.every) * (0.8 + 0.4*r.Float64())))
			}
		}()
	}
	if f.Kick != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var door *device
			for _, d := range f.devices {
				if d.id == "garage-door" {
					door = d
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(dur / 3):
			}
			door.mu.Lock()
			door.client = nil
			door.mu.Unlock()
			f.Kick(door.id)
			select {
			case <-ctx.Done():
				return
			case <-time.After(dur / 3):
			}
			_ = f.connect(ctx, door)
		}()
	}
	wg.Wait()
	return nil
}

// Close disconnects every device cleanly.
func (f *Fleet) Close() {
	for _, d := range f.devices {
		d.mu.Lock()
		if d.client != nil {
			d.client.Disconnect(50 * time.Millisecond)
			d.client = nil
		}
		d.mu.Unlock()
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func thermostat(room string) func(*device, *rand.Rand, int) (string, []byte, byte) {
	base := 19 + float64(len(room)%4)
	return func(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
		topic := "home/" + room + "/thermostat/telemetry"
		if room == "bath" && tick%9 == 4 {
			// A firmware bug: now and then the payload is cut short.
			return topic, []byte(`{"temp": 2`), 0
		}
		temp := base + 1.5*math.Sin(float64(tick)/20) + r.NormFloat64()*0.1
		return topic, mustJSON(map[string]any{"temp": round(temp, 2), "humidity": 40 + r.IntN(15),
			"battery": 100 - tick/50, "setpoint": 21.0}), 0
	}
}

func light(room string) func(*device, *rand.Rand, int) (string, []byte, byte) {
	return func(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
		state := "OFF"
		if r.IntN(2) == 0 {
			state = "ON"
		}
		return "home/" + room + "/light/event", mustJSON(map[string]any{"state": state, "brightness": r.IntN(255)}), 1
	}
}

func press(line, m int) func(*device, *rand.Rand, int) (string, []byte, byte) {
	return func(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
		state := "RUN"
		if (tick/50)%7 == 6 {
			state = "IDLE"
		}
		return fmt.Sprintf("plant/line%d/press-%d/telemetry", line, m), mustJSON(map[string]any{
			"pressure_bar": round(180+10*math.Sin(float64(tick)/8)+r.NormFloat64(), 2),
			"rpm":          1450 + r.IntN(20), "state": state, "cycle": tick}), 1
	}
}

func plc(line int) func(*device, *rand.Rand, int) (string, []byte, byte) {
	return func(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
		// A gateway frame: a 0xA55A header, then eight big-endian 16-bit
		// holding registers as a Modbus gateway reads them.
		regs := make([]byte, 18)
		regs[0], regs[1] = 0xa5, 0x5a
		for i := range 8 {
			binary.BigEndian.PutUint16(regs[2+2*i:], uint16(tick*(i+1)+r.IntN(4)))
		}
		return fmt.Sprintf("plant/line%d/plc/registers", line), regs, 0
	}
}

func door(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
	state := "closed"
	if tick%10 < 3 {
		state = "open"
	}
	return "home/garage/door/state", mustJSON(map[string]any{"state": state}), 1
}

func camera(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
	// A small "JPEG": the magic bytes and noise.
	img := make([]byte, 6*1024)
	copy(img, []byte{0xff, 0xd8, 0xff, 0xe0})
	for i := 4; i < len(img)-2; i++ {
		img[i] = byte(r.IntN(256))
	}
	copy(img[len(img)-2:], []byte{0xff, 0xd9})
	return "home/garden/camera/snapshot", img, 0
}

func weather(d *device, r *rand.Rand, tick int) (string, []byte, byte) {
	return "outdoor/weather/report", mustJSON(map[string]any{"temp": round(8+r.NormFloat64(), 1),
		"wind_kmh": r.IntN(30), "rain_mm": round(r.Float64(), 2), "station": "roof"}), 0
}
