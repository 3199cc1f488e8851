// Package loadgen publishes device-like MQTT 3.1.1 traffic over raw TCP
// connections (no client library, so the publisher is never what limits a
// benchmark): C devices, each on its own connection and topic, sending JSON
// telemetry at QoS 0, 1 or 2, either as a steady stream (messages scheduled
// on one absolute clock at a total rate) or as a flood (as fast as the
// broker takes them). bench/record/flood and the capture tests use it.
package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/internal/rawmqtt"
)

// Config describes a load.
type Config struct {
	Addr     string  // broker host:port
	Devices  int     // connections, one topic each (default 1)
	Messages int     // in total, spread evenly over the devices
	Rate     float64 // total messages per second; 0: flood
	QoS      byte    // 0, 1 or 2
	// Size pads each payload to at least this many bytes (0: the bare JSON
	// telemetry, about 90 bytes).
	Size int
	// Topic is the topic prefix: device d publishes to Topic/dev-NNN.
	Topic string
	// Window is how many QoS 1/2 messages a device keeps in flight (default
	// 10: mosquitto disconnects a 3.1.1 publisher with more than its
	// max_inflight_messages, 20 by default).
	Window int
	// ClientID prefixes the devices' client ids (default "loadgen-PID").
	ClientID string
	// Telemetry sends Telemetry payloads (about 120 bytes of readings that
	// vary, as a sensor's do) instead of Payload's; Size is ignored.
	Telemetry bool
}

// Result is what a load sent.
type Result struct {
	Sent    int64         // PUBLISH packets written
	Acked   int64         // QoS 1/2 flows completed (PUBACK, or PUBCOMP)
	Elapsed time.Duration // from the first message to the last acknowledgement
}

// TopicOf returns device d's topic.
func TopicOf(prefix string, d int) string { return fmt.Sprintf("%s/dev-%03d", prefix, d) }

// Payload is message i of device d: JSON telemetry padded to size bytes.
func Payload(d, i, size int) []byte {
	b := fmt.Appendf(nil, `{"device":"dev-%03d","seq":%d,"temp":%.2f,"rssi":%d`, d, i, 20+float64((i*7+d)%1000)/100, -40-(i+d)%50)
	if pad := size - len(b) - len(`,"pad":""}`); pad > 0 {
		b = append(b, `,"pad":"`...)
		for range pad {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// Telemetry is message i of device d as a sensor sends it: about 120 bytes
// of JSON whose readings vary (a reading's noise is a hash of d and i, so
// a load is the same every time), with no padding: the payload to measure
// compression on. ParsePayload reads it too.
func Telemetry(d, i int) []byte {
	h := uint64(d)*0x9e3779b97f4a7c15 ^ uint64(i)*0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	temp := 20 + 5*math.Sin(float64(i)/50) + float64(h%100)/100
	return fmt.Appendf(nil, `{"device":"dev-%03d","seq":%d,"ts":%d,"temp":%.2f,"humidity":%.1f,"battery":%d,"rssi":%d,"status":"ok"}`,
		d, i, 1764767531000+int64(i)*1000+int64(d), temp, 40+float64(h>>8%100)/10, 100-(i/500)%100, -40-int(h>>16%40))
}

// ParsePayload returns the device and sequence number of a Payload.
func ParsePayload(b []byte) (d, i int, ok bool) {
	const pre = `{"device":"dev-`
	if len(b) < len(pre)+12 || string(b[:len(pre)]) != pre {
		return 0, 0, false
	}
	rest := b[len(pre):]
	d, err := strconv.Atoi(string(rest[:3]))
	if err != nil || string(rest[3:11]) != `","seq":` {
		return 0, 0, false
	}
	rest = rest[11:]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	i, err = strconv.Atoi(string(rest[:n]))
	return d, i, err == nil
}

// Run publishes the load and returns when every message was sent and (QoS
// 1/2) acknowledged, or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 1
	}
	if cfg.Window <= 0 {
		cfg.Window = 10
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("loadgen-%d", time.Now().UnixNano()%1e9)
	}
	if cfg.Topic == "" {
		cfg.Topic = "load"
	}
	if cfg.QoS > 2 {
		return Result{}, fmt.Errorf("loadgen: QoS %d", cfg.QoS)
	}
	conns := make([]net.Conn, cfg.Devices)
	for d := range conns {
		c, err := rawmqtt.Connect(cfg.Addr, fmt.Sprintf("%s-%03d", cfg.ClientID, d), 5*time.Second)
		if err != nil {
			for _, c := range conns[:d] {
				c.Close()
			}
			return Result{}, fmt.Errorf("loadgen: device %d: %w", d, err)
		}
		conns[d] = c
	}
	var res Result
	var sent, acked atomic.Int64
	start := time.Now()
	errs := make(chan error, cfg.Devices)
	var wg sync.WaitGroup
	for d, c := range conns {
		n := cfg.Messages / cfg.Devices
		if d < cfg.Messages%cfg.Devices {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			errs <- device(ctx, c, cfg, d, n, start, &sent, &acked)
		}()
	}
	wg.Wait()
	close(errs)
	res.Sent, res.Acked, res.Elapsed = sent.Load(), acked.Load(), time.Since(start)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return res, errors.Join(all...)
}

// device sends n messages: message k is due at start + (k*Devices+d)/Rate.
func device(ctx context.Context, c net.Conn, cfg Config, d, n int, start time.Time, sent, acked *atomic.Int64) error {
	var wmu sync.Mutex // the writer and the reader (PUBREL) share the connection
	w := bufio.NewWriterSize(c, 64<<10)
	tokens := make(chan struct{}, cfg.Window)
	readDone := make(chan error, 1)
	if cfg.QoS > 0 {
		go func() { readDone <- readAcks(c, cfg.QoS, n, tokens, &wmu, w, acked) }()
	}
	topic := TopicOf(cfg.Topic, d)
	flush := func() error {
		wmu.Lock()
		defer wmu.Unlock()
		return w.Flush()
	}
	var hdr []byte
	for k := range n {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(k*cfg.Devices+d) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if cfg.QoS > 0 {
			select {
			case tokens <- struct{}{}:
			default:
				if err := flush(); err != nil {
					return err
				}
				select {
				case tokens <- struct{}{}:
				case err := <-readDone:
					return fmt.Errorf("device %d: connection closed after %d messages: %v", d, k, err)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		p := Payload(d, k, cfg.Size)
		if cfg.Telemetry {
			p = Telemetry(d, k)
		}
		wmu.Lock()
		hdr = rawmqtt.AppendPublishHeader(hdr[:0], topic, cfg.QoS, uint16(k%65535+1), len(p))
		w.Write(hdr)
		_, err := w.Write(p)
		wmu.Unlock()
		if err != nil {
			return err
		}
		sent.Add(1)
	}
	if err := flush(); err != nil {
		return err
	}
	if cfg.QoS > 0 {
		select {
		case err := <-readDone:
			if err != nil {
				return fmt.Errorf("device %d: %w", d, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(60 * time.Second):
			return fmt.Errorf("device %d: acknowledgements timed out", d)
		}
	}
	wmu.Lock()
	w.Write([]byte{0xe0, 0}) // DISCONNECT
	w.Flush()
	wmu.Unlock()
	return nil
}

// readAcks reads PUBACK (QoS 1) or PUBREC/PUBCOMP (QoS 2, answering each
// PUBREC with PUBREL) until n flows completed.
func readAcks(c net.Conn, qos byte, n int, tokens chan struct{}, wmu *sync.Mutex, w *bufio.Writer, acked *atomic.Int64) error {
	r := bufio.NewReaderSize(c, 64<<10)
	pkt := make([]byte, 4)
	for done := 0; done < n; {
		if _, err := io.ReadFull(r, pkt); err != nil {
			return fmt.Errorf("%d of %d acknowledged: %w", done, n, err)
		}
		switch pkt[0] {
		case 0x40, 0x70: // PUBACK, PUBCOMP
			done++
			acked.Add(1)
			<-tokens
		case 0x50: // PUBREC → PUBREL
			wmu.Lock()
			w.Write([]byte{0x62, 2, pkt[2], pkt[3]})
			err := w.Flush()
			wmu.Unlock()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected packet %x (id %d)", pkt, binary.BigEndian.Uint16(pkt[2:]))
		}
	}
	return nil
}
