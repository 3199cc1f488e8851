// Command gen writes the readable sources of the sample captures in
// testdata/captures (JSON lines in mqtape's import format), deterministically:
//
//	go run ./testdata/captures/gen            # writes testdata/captures/*.jsonl
//	for f in smart-home misbehaving-device industrial; do
//	  rm -f testdata/captures/$f.db
//	  go run . import --quiet testdata/captures/$f.jsonl -o testdata/captures/$f.db
//	done
//
// The captures look like mqtape serve recordings: every message has its
// publisher's client id and the retain flag as published; the first lines of
// a capture with from_store are the broker's retained state when it started.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// line is one message of a source file.
type line struct {
	Time       string          `json:"time"`
	Topic      string          `json:"topic"`
	QoS        int             `json:"qos,omitempty"`
	Retain     bool            `json:"retain,omitempty"`
	FromStore  bool            `json:"from_store,omitempty"`
	Dup        bool            `json:"dup,omitempty"`
	PacketID   int             `json:"packet_id,omitempty"`
	ClientID   string          `json:"client_id,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadB64 string          `json:"payload_b64,omitempty"`
	at         time.Duration
	order      int
}

// capture collects lines and writes them in time order.
type capture struct {
	lines []line
	pids  map[string]int
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newCapture() *capture { return &capture{pids: map[string]int{}} }

func (c *capture) add(at time.Duration, client, topic string, qos int, retain bool, payload []byte) *line {
	l := line{at: at, Topic: topic, QoS: qos, Retain: retain, ClientID: client, order: len(c.lines)}
	if qos > 0 {
		c.pids[client] = c.pids[client]%65535 + 1
		l.PacketID = c.pids[client]
	}
	switch {
	case len(payload) == 0:
	case json.Valid(payload) && payload[0] != '"':
		l.Payload = json.RawMessage(payload) // readable inline
	case isText(payload):
		q, _ := json.Marshal(string(payload))
		l.Payload = q
	default:
		l.PayloadB64 = base64.StdEncoding.EncodeToString(payload)
	}
	c.lines = append(c.lines, l)
	return &c.lines[len(c.lines)-1]
}

func isText(p []byte) bool {
	for _, b := range p {
		if b < 0x20 || b >= 0x7f {
			return false
		}
	}
	return true
}

func (c *capture) write(path string) error {
	sort.SliceStable(c.lines, func(i, j int) bool {
		if c.lines[i].at != c.lines[j].at {
			return c.lines[i].at < c.lines[j].at
		}
		return c.lines[i].order < c.lines[j].order
	})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range c.lines {
		l.Time = t0.Add(l.at).Format("2006-01-02T15:04:05.000000Z07:00")
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func js(format string, a ...any) []byte { return []byte(fmt.Sprintf(format, a...)) }

// smartHome: 3 minutes of a house: thermostats, an energy meter, motion
// sensors, lights and a door, with retained states (the broker's store at
// the start, then live retained changes).
func smartHome(r *rand.Rand) *capture {
	c := newCapture()
	rooms := []string{"kitchen", "living", "bedroom", "office"}
	light := map[string]bool{"kitchen": true, "living": false, "bedroom": false, "office": true}
	for _, room := range rooms {
		l := c.add(0, "light-"+room, "home/"+room+"/light/state", 1, true, []byte(onOff(light[room])))
		l.FromStore = true
		l = c.add(0, "thermo-"+room, "home/"+room+"/thermostat/status", 1, true, []byte("online"))
		l.FromStore = true
	}
	for _, s := range []struct{ topic, payload string }{
		{"home/door/front/state", `{"open":false,"locked":true}`},
		{"home/alarm/mode", "armed_home"},
		{"home/meter/status", "online"},
	} {
		l := c.add(0, "hub", s.topic, 1, true, []byte(s.payload))
		l.FromStore = true
	}
	const span = 180 * time.Second
	for i, room := range rooms {
		t := 20.5 + float64(i)*0.4
		for k, at := 0, ms(500+float64(i)*1300); at < span; k, at = k+1, at+10*time.Second {
			t += (r.Float64() - 0.5) * 0.2
			c.add(at, "thermo-"+room, "home/"+room+"/thermostat/temp", 0, false,
				js(`{"t":%.1f,"h":%d,"setpoint":21.0,"seq":%d,"ts":%d}`, t, 38+r.IntN(8), k, t0.Add(at).UnixMilli()))
		}
	}
	energy := 1234.5
	for k, at := 0, ms(250); at < span; k, at = k+1, at+2*time.Second {
		w := 300 + r.IntN(900)
		energy += float64(w) * 2 / 3600 / 1000
		c.add(at, "meter", "home/meter/power", 0, false, js(`{"power_w":%d,"energy_kwh":%.4f,"seq":%d,"ts":%d}`, w, energy, k, t0.Add(at).UnixMilli()))
	}
	for k := range 40 {
		room := rooms[r.IntN(len(rooms))]
		at := ms(r.Float64() * float64(span/time.Millisecond))
		c.add(at, "motion-"+room, "home/"+room+"/motion", 1, false, js(`{"motion":true,"ts":%d}`, t0.Add(at).UnixMilli()))
		if k%3 == 0 {
			light[room] = !light[room]
			c.add(at+ms(120), "light-"+room, "home/"+room+"/light/state", 1, true, []byte(onOff(light[room])))
			c.add(at+ms(80), "hub", "home/"+room+"/light/set", 1, false, []byte(onOff(light[room])))
		}
	}
	c.add(95*time.Second, "hub", "home/alarm/mode", 1, true, []byte("disarmed"))
	c.add(96*time.Second, "door", "home/door/front/state", 1, true, []byte(`{"open":true,"locked":false}`))
	c.add(101*time.Second, "door", "home/door/front/state", 1, true, []byte(`{"open":false,"locked":false}`))
	return c
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// misbehaving: a healthy sensor next to one in a reconnect storm: its
// retained status flaps between online and the broker's will (offline),
// QoS 1 messages are redelivered with dup=1, payloads are malformed, and it
// floods 400 messages in one second.
func misbehaving(r *rand.Rand) *capture {
	c := newCapture()
	for _, id := range []string{"sensor-7", "sensor-8"} {
		l := c.add(0, id, "site/"+id+"/status", 1, true, []byte("online"))
		l.FromStore = true
	}
	const span = 60 * time.Second
	for k, at := 0, ms(300); at < span; k, at = k+1, at+time.Second {
		c.add(at, "sensor-8", "site/sensor-8/temp", 1, false, js(`{"t":%.2f,"seq":%d}`, 19+r.Float64(), k))
	}
	// Healthy for 10 s, then the storm.
	at := ms(700)
	for k := 0; at < 10*time.Second; k, at = k+1, at+time.Second {
		c.add(at, "sensor-7", "site/sensor-7/temp", 1, false, js(`{"t":%.2f,"seq":%d}`, 20+r.Float64(), k))
	}
	malformed := [][]byte{[]byte(`{"t":21.`), []byte(`{"t":NaN,"seq":-1}`), []byte(`{"t":"21,5"}`), {0xff, 0xfe, 0x00, 0x13},
		[]byte(`{"t":21.5,"t":22.5}`), []byte(`{}`), nil, []byte(`null`)}
	for k := 0; at < 40*time.Second; k++ {
		// connect: the status goes online, a few readings, then the
		// connection drops and the broker publishes the will.
		c.add(at, "sensor-7", "site/sensor-7/status", 1, true, []byte("online"))
		for j := range 1 + r.IntN(3) {
			at += ms(20 + r.Float64()*80)
			var p []byte
			if r.IntN(3) == 0 {
				p = malformed[r.IntN(len(malformed))]
			} else {
				p = js(`{"t":%.2f,"seq":%d}`, 20+r.Float64(), 1000+k*10+j)
			}
			l := c.add(at, "sensor-7", "site/sensor-7/temp", 1, false, p)
			if r.IntN(4) == 0 { // redelivered after the reconnect
				d := *l
				d.at, d.Dup, d.order = at+ms(5), true, len(c.lines)
				c.lines = append(c.lines, d)
				at += ms(5)
			}
		}
		at += ms(100 + r.Float64()*300)
		c.add(at, "sensor-7", "site/sensor-7/status", 1, true, []byte("offline"))
		at += ms(50 + r.Float64()*200)
	}
	// A flood: 400 messages in one second at QoS 0.
	for k := range 400 {
		c.add(at+ms(float64(k)*2.5), "sensor-7", "site/sensor-7/debug", 0, false, js(`{"dbg":%d,"heap":%d}`, k, 20000-k*17))
	}
	at += 2 * time.Second
	c.add(at, "sensor-7", "site/sensor-7/status", 1, true, []byte("online"))
	for k := 0; at < span; k, at = k+1, at+time.Second {
		c.add(at, "sensor-7", "site/sensor-7/temp", 1, false, js(`{"t":%.2f,"seq":%d}`, 20+r.Float64(), 2000+k))
	}
	return c
}

// industrial: a press line: Modbus-style register frames with a CRC,
// vibration waveforms as little-endian float32 arrays, Sparkplug-style
// topics with binary metrics, and a retained JSON configuration.
func industrial(r *rand.Rand) *capture {
	c := newCapture()
	l := c.add(0, "line1-cfg", "plant/line1/config", 2, true, []byte(`{"line":"line1","presses":[3,4],"units":{"pressure":"bar","temp":"C"},"version":17}`))
	l.FromStore = true
	l = c.add(0, "edge1", "spBv1.0/plant1/NBIRTH/edge1", 1, true, nbirth())
	l.FromStore = true
	const span = 30 * time.Second
	for _, press := range []int{3, 4} {
		regs := make([]uint16, 10)
		for k, at := 0, ms(float64(press)*37); at < span; k, at = k+1, at+500*time.Millisecond {
			for i := range regs {
				regs[i] = uint16(1000*i + r.IntN(50))
			}
			regs[0] = uint16(k)
			c.add(at, fmt.Sprintf("plc-%d", press), fmt.Sprintf("plant/line1/press/%d/registers", press), 1, false, modbusFrame(byte(press), regs))
		}
		for at := ms(float64(press) * 91); at < span; at += 5 * time.Second {
			c.add(at, fmt.Sprintf("vib-%d", press), fmt.Sprintf("plant/line1/press/%d/vibration", press), 0, false, waveform(r, 128))
		}
	}
	for k, at := 0, ms(400); at < span; k, at = k+1, at+2*time.Second {
		c.add(at, "edge1", "spBv1.0/plant1/DDATA/edge1/press3", 1, false, ddata(uint64(k), r.Float32()*250))
	}
	c.add(12*time.Second, "plc-4", "plant/line1/press/4/alarm", 2, true, []byte(`{"code":"E-OVERPRESSURE","bar":251.7,"active":true}`))
	c.add(19*time.Second, "plc-4", "plant/line1/press/4/alarm", 2, true, []byte(`{"code":"E-OVERPRESSURE","bar":238.2,"active":false}`))
	return c
}

// modbusFrame: unit id, function 3, byte count, registers, CRC-16/MODBUS.
func modbusFrame(unit byte, regs []uint16) []byte {
	b := []byte{unit, 0x03, byte(2 * len(regs))}
	for _, v := range regs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	crc := uint16(0xffff)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return binary.LittleEndian.AppendUint16(b, crc)
}

func waveform(r *rand.Rand, n int) []byte {
	var b []byte
	f := 1 + r.Float64()*3
	for i := range n {
		v := float32(math.Sin(2*math.Pi*f*float64(i)/float64(n)) + (r.Float64()-0.5)*0.1)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// nbirth and ddata are small protobuf-like binary payloads (varint fields).
func nbirth() []byte {
	b := []byte{0x08}
	b = binary.AppendUvarint(b, uint64(t0.UnixMilli()))
	b = append(b, 0x12, 0x05)
	b = append(b, "bdSeq"...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func ddata(seq uint64, pressure float32) []byte {
	b := []byte{0x08}
	b = binary.AppendUvarint(b, uint64(t0.UnixMilli())+seq*2000)
	b = append(b, 0x18)
	b = binary.AppendUvarint(b, seq%256)
	b = append(b, 0x25)
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(pressure))
}

func main() {
	dir := "testdata/captures"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	for _, s := range []struct {
		name string
		gen  func(*rand.Rand) *capture
	}{{"smart-home", smartHome}, {"misbehaving-device", misbehaving}, {"industrial", industrial}} {
		r := rand.New(rand.NewPCG(26, 11))
		if err := s.gen(r).write(filepath.Join(dir, s.name+".jsonl")); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
