// Command replaybench is the helper of bench/replay/run.sh: it generates
// schedules, publishes them precisely, writes synthetic captures, runs a
// minimal paho publisher loop for comparison, and analyses what an
// independent subscriber (mosquitto_sub -F '%U %t %p') received.
//
//	replaybench count    -kind ... (number of messages in the schedule)
//	replaybench pub      -broker tcp://127.0.0.1:P -kind irregular|steady [-rate R -dur D] [-qos Q] [-size B]
//	replaybench gen      -n N -size B -qos Q -o cap.db
//	replaybench paholoop -broker tcp://127.0.0.1:P -n N -qos Q -size B
//	replaybench analyze  -kind ... -sub sub.txt -capture cap.db -label L
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqtape/mqtape/storage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: replaybench pub|gen|paholoop|analyze [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker")
	kind := fs.String("kind", "irregular", "irregular or steady")
	rate := fs.Float64("rate", 1000, "steady rate, msg/s")
	dur := fs.Duration("dur", 5*time.Second, "steady duration")
	seed := fs.Uint64("seed", 1, "irregular schedule seed")
	qos := fs.Int("qos", 0, "QoS")
	size := fs.Int("size", 64, "payload bytes")
	n := fs.Int("n", 200000, "messages")
	out := fs.String("o", "", "output capture")
	sub := fs.String("sub", "", "subscriber output")
	capture := fs.String("capture", "", "capture to compare with")
	label := fs.String("label", "", "row label")
	fs.Parse(os.Args[2:])
	sched := func() []time.Duration { return schedule(*kind, *rate, *dur, *seed) }
	var err error
	switch os.Args[1] {
	case "count":
		fmt.Println(len(sched()))
	case "sched":
		for _, d := range sched() {
			fmt.Println(int64(d))
		}
	case "pub":
		err = publishSchedule(*broker, sched(), byte(*qos), *size)
	case "gen":
		err = generate(*out, *n, *size, byte(*qos))
	case "paholoop":
		err = pahoLoop(*broker, *n, byte(*qos), *size)
	case "analyze":
		err = analyze(*label, sched(), *sub, *capture)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "replaybench:", err)
		os.Exit(1)
	}
}

// schedule returns message offsets. irregular: 10 s of bursts (5–30
// messages at once) and gaps from 1 ms to 1 s (log-uniform in four bands).
func schedule(kind string, rate float64, dur time.Duration, seed uint64) []time.Duration {
	var out []time.Duration
	if kind == "steady" {
		step := time.Duration(float64(time.Second) / rate)
		for t := time.Duration(0); t < dur; t += step {
			out = append(out, t)
		}
		return out
	}
	r := rand.New(rand.NewPCG(seed, 42))
	logU := func(lo, hi float64) time.Duration {
		return time.Duration(lo * math.Exp(r.Float64()*math.Log(hi/lo)) * float64(time.Millisecond))
	}
	t := time.Duration(0)
	for t < 10*time.Second {
		if r.Float64() < 0.2 {
			for range 5 + r.IntN(26) {
				out = append(out, t)
			}
		} else {
			out = append(out, t)
		}
		switch x := r.Float64(); {
		case x < 0.70:
			t += logU(1, 10)
		case x < 0.90:
			t += logU(10, 100)
		case x < 0.97:
			t += logU(100, 500)
		default:
			t += logU(500, 1000)
		}
	}
	return out
}

func payload(i, size int) []byte {
	p := []byte(strconv.Itoa(i) + " ")
	for len(p) < size {
		p = append(p, 'x')
	}
	return p
}

func connect(broker, id string) (paho.Client, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetOrderMatters(true).SetWriteTimeout(30 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", broker, tok.Error())
	}
	return c, nil
}

// publishSchedule publishes precisely: sleep until 2 ms before each
// deadline, nanosleep until 150 µs before it, then spin (the technique
// mqtape play uses on Linux).
func publishSchedule(broker string, sched []time.Duration, qos byte, size int) error {
	c, err := connect(broker, fmt.Sprintf("gen-%d", os.Getpid()))
	if err != nil {
		return err
	}
	defer c.Disconnect(500)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	var toks []paho.Token
	for i, off := range sched {
		deadline := start.Add(off)
		// sleep on a Go timer, then on the kernel's fine timer, then spin
		if d := time.Until(deadline) - 2*time.Millisecond; d > 0 {
			time.Sleep(d)
		}
		{
			for {
				rem := time.Until(deadline)
				if rem < 200*time.Microsecond {
					break
				}
				ts := syscall.NsecToTimespec(int64(rem - 150*time.Microsecond))
				syscall.Nanosleep(&ts, nil)
			}
		}
		for time.Now().Before(deadline) {
			runtime.Gosched()
		}
		toks = append(toks, c.Publish("bench/t", qos, false, payload(i, size)))
	}
	for _, t := range toks {
		t.Wait()
	}
	fmt.Fprintf(os.Stderr, "published %d messages over %s\n", len(sched), time.Since(start).Round(time.Millisecond))
	return nil
}

// generate writes a capture of n messages 100 µs apart.
func generate(path string, n, size int, qos byte) error {
	c, err := storage.OpenWrite(path)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	start := time.Now().UnixNano()
	s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "bench", ClientID: "bench", Protocol: 4,
		CleanSession: true, StartedNS: start, Version: "bench", Host: "bench"})
	if err != nil {
		return err
	}
	batch := make([]storage.Message, 0, 4096)
	for i := range n {
		off := int64(i) * 100_000
		batch = append(batch, storage.Message{TimeNS: start + off, OffsetNS: off, Topic: fmt.Sprintf("bench/%d", i%10),
			QoS: qos, Payload: payload(i, size)})
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.Write(ctx, batch, nil, start+off); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return s.End(ctx, start+int64(n)*100_000, "count", 0)
}

// pahoLoop is the baseline: a minimal paho publisher loop with a window of
// 1000 outstanding tokens (paho has 65535 packet ids), timed from the first
// publish to the last completed token.
func pahoLoop(broker string, n int, qos byte, size int) error {
	c, err := connect(broker, fmt.Sprintf("loop-%d", os.Getpid()))
	if err != nil {
		return err
	}
	defer c.Disconnect(500)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = payload(i, size)
	}
	const window = 1000
	ring := make([]paho.Token, window)
	start := time.Now()
	failed := 0
	for i := range n {
		if t := ring[i%window]; t != nil {
			t.Wait()
			if t.Error() != nil {
				failed++
			}
		}
		ring[i%window] = c.Publish(fmt.Sprintf("bench/%d", i%10), qos, false, msgs[i])
	}
	for _, t := range ring {
		if t != nil {
			t.Wait()
		}
	}
	el := time.Since(start)
	fmt.Printf("%d %.6f %d\n", n, el.Seconds(), failed)
	return nil
}

type arrival struct {
	idx int
	at  int64
}

// analyze compares the arrival gaps at the subscriber with the schedule
// (end to end: record + replay) and with the capture (replay alone).
func analyze(label string, sched []time.Duration, subPath, capPath string) error {
	f, err := os.Open(subPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var arr []arrival
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		sec, frac, _ := strings.Cut(fields[0], ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		idx, err3 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("bad subscriber line %q", sc.Text())
		}
		arr = append(arr, arrival{idx, s*1e9 + ns})
	}
	capOff := map[int]int64{}
	if capPath != "" {
		c, err := storage.Open(capPath)
		if err != nil {
			return err
		}
		defer c.Close()
		for m, err := range c.Messages(context.Background(), storage.Query{}) {
			if err != nil {
				return err
			}
			i, _ := strconv.Atoi(strings.Fields(string(m.Payload))[0])
			capOff[i] = m.OffsetNS
		}
	}
	row := func(ref func(int) (int64, bool)) (p50, p99, mx, drift float64, n int) {
		var errs []float64
		var first, last *arrival
		var firstRef, lastRef int64
		for i := 1; i < len(arr); i++ {
			a, b := arr[i-1], arr[i]
			ra, ok1 := ref(a.idx)
			rb, ok2 := ref(b.idx)
			if !ok1 || !ok2 {
				continue
			}
			errs = append(errs, math.Abs(float64((b.at-a.at)-(rb-ra)))/1e6)
			if first == nil {
				first, firstRef = &arr[i-1], ra
			}
			last, lastRef = &arr[i], rb
		}
		if len(errs) == 0 {
			return 0, 0, 0, 0, 0
		}
		slices.Sort(errs)
		q := func(p float64) float64 { return errs[int(math.Ceil(p*float64(len(errs))))-1] }
		drift = float64((last.at-first.at)-(lastRef-firstRef)) / 1e6
		return q(0.5), q(0.99), errs[len(errs)-1], drift, len(arr)
	}
	e2e := func(i int) (int64, bool) {
		if i < 0 || i >= len(sched) {
			return 0, false
		}
		return int64(sched[i]), true
	}
	rep := func(i int) (int64, bool) { v, ok := capOff[i]; return v, ok }
	a50, a99, amax, adrift, n := row(e2e)
	b50, b99, bmax, bdrift, _ := row(rep)
	replayCols := fmt.Sprintf("%10.3f | %10.3f | %10.3f | %+12.3f", b50, b99, bmax, bdrift)
	if capPath == "" {
		replayCols = fmt.Sprintf("%10s | %10s | %10s | %12s", "-", "-", "-", "-")
	}
	fmt.Printf("| %-30s | %6d/%-6d | %7.3f | %7.3f | %7.3f | %+9.3f | %s |", label, n, len(sched),
		a50, a99, amax, adrift, replayCols)
	return nil
}
