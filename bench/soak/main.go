// Command soak is the load generator and checker of bench/soak/run.sh.
//
//	soak pub -broker mqtt://127.0.0.1:1883 -publishers 4 -rate 1000 -duration 100s -out sent.json
//	soak verify -capture soak.db -sent sent.json
//
// pub runs publishers that each send -rate messages per second for
// -duration, mixing QoS 0, 1 and 2 (2:2:1) and payload sizes (90 % 64–512 B,
// 9 % 4 KiB, 1 % 64 KiB), every payload starting with "p<publisher>
// <seq>|". It writes how many each publisher sent. verify reads the capture
// and reports every message missing or recorded twice, per QoS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/storage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: soak pub|verify [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pub":
		err = pub(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// Sent is what one publisher sent.
type Sent struct {
	Publisher int      `json:"publisher"`
	Count     int      `json:"count"`
	QoS       [3]int   `json:"qos"`
	Bytes     int64    `json:"bytes"`
	Errors    []string `json:"errors,omitempty"`
}

func qosOf(seq int) byte { return [5]byte{0, 0, 1, 1, 2}[seq%5] }

func sizeOf(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 90:
		return 64 + r.IntN(449)
	case x < 99:
		return 4 << 10
	}
	return 64 << 10
}

func pub(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	broker := fs.String("broker", "mqtt://127.0.0.1:1883", "broker URL")
	n := fs.Int("publishers", 4, "publishers")
	rate := fs.Int("rate", 1000, "messages per second per publisher")
	duration := fs.Duration("duration", 100*time.Second, "how long to publish")
	out := fs.String("out", "sent.json", "where to write what was sent")
	fs.Parse(args)
	br, err := mqtt.ParseBroker(*broker)
	if err != nil {
		return err
	}
	results := make([]Sent, *n)
	var wg sync.WaitGroup
	for p := range *n {
		c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: fmt.Sprintf("soak-pub-%d", p),
			CleanSession: true, ConnectTimeout: 5 * time.Second, KeepAlive: 30 * time.Second}, mqtt.Handlers{})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(500 * time.Millisecond)
			results[p] = publish(c, p, *rate, *duration)
		}()
	}
	wg.Wait()
	b, _ := json.MarshalIndent(results, "", "  ")
	return os.WriteFile(*out, b, 0o644)
}

// publish sends at rate msg/s for d, on an absolute schedule, keeping at
// most 10 QoS 1/2 messages in flight (mosquitto allows 20).
func publish(c mqtt.Client, p, rate int, d time.Duration) Sent {
	s := Sent{Publisher: p}
	r := rand.New(rand.NewPCG(uint64(p), 99))
	var inflight []mqtt.Token
	settle := func(tok mqtt.Token) {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil && len(s.Errors) < 10 {
				s.Errors = append(s.Errors, err.Error())
			}
		case <-time.After(10 * time.Second):
			if len(s.Errors) < 10 {
				s.Errors = append(s.Errors, "no acknowledgement within 10 s")
			}
		}
	}
	start := time.Now()
	for seq := 0; ; seq++ {
		due := start.Add(time.Duration(seq) * time.Second / time.Duration(rate))
		if due.Sub(start) >= d || time.Since(start) >= d {
			break // bounded in time even when the broker cannot keep up
		}
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		qos := qosOf(seq)
		head := fmt.Sprintf("p%d %d|", p, seq)
		payload := []byte(head + strings.Repeat("x", max(0, sizeOf(r)-len(head))))
		if qos > 0 && len(inflight) == 10 {
			settle(inflight[0])
			inflight = inflight[1:]
		}
		tok := c.Publish(fmt.Sprintf("soak/%d/q%d", p, qos), qos, false, payload)
		if qos > 0 {
			inflight = append(inflight, tok)
		}
		s.Count++
		s.QoS[qos]++
		s.Bytes += int64(len(payload))
	}
	for _, tok := range inflight {
		settle(tok)
	}
	return s
}

func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	path := fs.String("capture", "soak.db", "capture")
	sentPath := fs.String("sent", "sent.json", "what pub sent")
	fs.Parse(args)
	data, err := os.ReadFile(*sentPath)
	if err != nil {
		return err
	}
	var sent []Sent
	if err := json.Unmarshal(data, &sent); err != nil {
		return err
	}
	c, err := storage.Open(*path)
	if err != nil {
		return err
	}
	defer c.Close()
	seen := make([][]uint8, len(sent))
	for i, s := range sent {
		seen[i] = make([]uint8, s.Count)
	}
	var recorded, foreign int64
	for m, err := range c.Messages(context.Background(), storage.Query{}) {
		if err != nil {
			return err
		}
		var p, seq int
		if _, err := fmt.Sscanf(string(m.Payload), "p%d %d|", &p, &seq); err != nil || p < 0 || p >= len(seen) || seq < 0 || seq >= len(seen[p]) {
			foreign++
			continue
		}
		if m.QoS != qosOf(seq) || m.Topic != fmt.Sprintf("soak/%d/q%d", p, qosOf(seq)) {
			return fmt.Errorf("message p%d %d recorded as QoS %d on %s", p, seq, m.QoS, m.Topic)
		}
		recorded++
		if seen[p][seq] < 255 {
			seen[p][seq]++
		}
	}
	var missing, dup [3]int
	for p := range seen {
		for seq, n := range seen[p] {
			switch {
			case n == 0:
				missing[qosOf(seq)]++
			case n > 1:
				dup[qosOf(seq)]++
			}
		}
	}
	total := 0
	for _, s := range sent {
		total += s.Count
	}
	fmt.Printf("sent %d, recorded %d, missing per QoS %v, duplicates per QoS %v, other messages %d\n", total, recorded, missing, dup, foreign)
	if missing != [3]int{} || dup != [3]int{} {
		return fmt.Errorf("loss or duplicates")
	}
	return nil
}
