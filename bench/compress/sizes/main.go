// Command sizes measures offline, without a broker, where the bytes of a
// capture of JSON telemetry go, stored as published and compressed: it
// writes N messages of loadgen.Telemetry (the payloads bench/record/flood
// -telemetry sends) from 10 devices through storage, as the recorder does
// on a QoS 1 flood (batches of 100, packet ids, one topic per device), and
// reports per message: the file, the payload bytes stored, the writer's
// CPU, and the file split by SQLite's dbstat (the sqlite3 shell's) into
// the messages table (records: stored payload and the rest of the row;
// cell and page overhead; free space), the topic index and the rest.
//
//	go run ./bench/compress/sizes -n 100000 -rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/storage"
)

func main() {
	n := flag.Int("n", 100_000, "messages per capture")
	rounds := flag.Int("rounds", 3, "captures written per mode (the CPU figure is their median)")
	batch := flag.Int("batch", 100, "messages per transaction (a QoS 1 flood commits about 100)")
	dir := flag.String("dir", "", "where to write the captures (default: a temporary directory, removed)")
	flag.Parse()
	if err := run(*n, *rounds, *batch, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "sizes:", err)
		os.Exit(1)
	}
}

func run(n, rounds, batch int, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "mqtape-sizes-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	msgs := telemetry(n)
	var payload int64
	for _, m := range msgs {
		payload += int64(len(m.Payload))
	}
	fmt.Printf("%d messages of JSON telemetry, %.1f B payload per message; batches of %d; CPU: median of %d rounds\n\n",
		n, float64(payload)/float64(n), batch, rounds)
	files := map[bool]int64{}
	for _, zip := range []bool{false, true} {
		var cpus []time.Duration
		var path string
		for r := range rounds {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.db", mode(zip), r))
			cpu, err := write(path, msgs, batch, zip)
			if err != nil {
				return err
			}
			cpus = append(cpus, cpu)
		}
		slices.Sort(cpus)
		size, err := report(path, n, zip, cpus[len(cpus)/2])
		if err != nil {
			return err
		}
		files[zip] = size
	}
	fmt.Printf("file, compressed / plain: %.1f %%\n", 100*float64(files[true])/float64(files[false]))
	return nil
}

func mode(zip bool) string {
	if zip {
		return "compressed"
	}
	return "plain"
}

// telemetry is n messages from 10 devices, 20 µs apart, as a QoS 1
// subscriber receives them.
func telemetry(n int) []storage.Message {
	msgs := make([]storage.Message, n)
	for i := range msgs {
		d := i % 10
		msgs[i] = storage.Message{TimeNS: 1_764_767_531e9 + int64(i)*20_000, OffsetNS: int64(i) * 20_000,
			Topic: fmt.Sprintf("dev/dev-%03d", d), QoS: 1, PacketID: uint16(i%65535 + 1), Payload: loadgen.Telemetry(d, i/10)}
	}
	return msgs
}

// write records msgs into a new capture at path as one session and
// returns the process CPU it took (topic index and final checkpoint
// included).
func write(path string, msgs []storage.Message, batch int, zip bool) (time.Duration, error) {
	ctx := context.Background()
	before := cpuTime()
	c, err := storage.OpenWrite(path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetCompression(zip)
	s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://127.0.0.1:1883",
		ClientID: "sizes", Protocol: 4, CleanSession: true, StartedNS: msgs[0].TimeNS, Version: "bench", Host: "bench",
		Filters: []storage.Filter{{Filter: "dev/#", QoS: 1, Granted: 1}}})
	if err != nil {
		return 0, err
	}
	buf := make([]storage.Message, 0, batch)
	for i := 0; i < len(msgs); i += batch {
		buf = append(buf[:0], msgs[i:min(i+batch, len(msgs))]...)
		if err := s.Write(ctx, buf, nil, buf[len(buf)-1].TimeNS); err != nil {
			return 0, err
		}
	}
	if err := s.End(ctx, msgs[len(msgs)-1].TimeNS, "count", 0); err != nil {
		return 0, err
	}
	if err := c.Close(); err != nil {
		return 0, err
	}
	return cpuTime() - before, nil
}

// report prints the figures of the capture at path, n messages, and
// returns its size.
func report(path string, n int, zip bool, cpu time.Duration) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	c, err := storage.Open(path)
	if err != nil {
		return 0, err
	}
	tot, _, err := c.Stats(context.Background())
	c.Close()
	if err != nil {
		return 0, err
	}
	split, err := dbstat(path)
	if err != nil {
		return 0, err
	}
	per := func(b int64) float64 { return float64(b) / float64(n) }
	m, ix := split["messages"], split["messages_by_topic"]
	var rest int64
	for name, s := range split {
		if name != "messages" && name != "messages_by_topic" {
			rest += s.pages
		}
	}
	fmt.Printf("== %s: file %.2f MB = %.1f B/msg; CPU %.2f µs/msg\n", mode(zip), float64(st.Size())/1e6, per(st.Size()),
		float64(cpu.Nanoseconds())/1e3/float64(n))
	fmt.Printf("  payload stored          %6.1f B/msg (%.1f %% of %.1f)\n", per(tot.Stored), 100*float64(tot.Stored)/float64(tot.Bytes), per(tot.Bytes))
	fmt.Printf("  rest of the record      %6.1f B/msg (other columns + record header)\n", per(m.payload-tot.Stored))
	fmt.Printf("  cells and pages         %6.1f B/msg (cell pointer, size and rowid varints, interior pages)\n", per(m.pages-m.payload-m.unused))
	fmt.Printf("  free in messages pages  %6.1f B/msg\n", per(m.unused))
	fmt.Printf("  topic index             %6.1f B/msg (%.1f used)\n", per(ix.pages), per(ix.pages-ix.unused))
	fmt.Printf("  other tables, free list %6.1f B/msg (%.2f MB)\n\n", per(st.Size()-m.pages-ix.pages), float64(st.Size()-m.pages-ix.pages)/1e6)
	return st.Size(), nil
}

// space is what dbstat says about one table or index.
type space struct{ pages, payload, unused int64 }

// dbstat is the file's space by table and index, from the sqlite3 shell's
// dbstat virtual table (mqtape's driver leaves it out).
func dbstat(path string) (map[string]space, error) {
	out, err := exec.Command("sqlite3", "-readonly", "-separator", " ", path,
		"SELECT name, sum(pgsize), sum(payload), sum(unused) FROM dbstat GROUP BY name").Output()
	if err != nil {
		return nil, fmt.Errorf("sqlite3 dbstat on %s: %w", path, err)
	}
	split := map[string]space{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("sqlite3 dbstat: unexpected line %q", line)
		}
		var v [3]int64
		for i := range v {
			if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("sqlite3 dbstat: %q: %w", line, err)
			}
		}
		split[f[0]] = space{v[0], v[1], v[2]}
	}
	return split, nil
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
