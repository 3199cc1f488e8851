package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
	"github.com/spf13/pflag"
)

// ringFlags are record's trigger-snapshot flags.
type ringFlags struct {
	ring      time.Duration
	size      string // as given (parseByteSize)
	trigger   string
	post      time.Duration
	sizeB     int64
	predicate func(m *storage.Message) bool
}

func (f *ringFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&f.ring, "ring", 0, "snapshot mode: keep the last DURATION of traffic in memory, write only around triggers")
	fs.StringVar(&f.size, "ring-size", "256MiB", "with --ring: the ring holds at most SIZE of payloads and topics (the oldest go first)")
	fs.StringVar(&f.trigger, "trigger", "", "with --ring: write a snapshot when a message matches QUERY (inspect's / language, e.g. 'alarms/#' or 'payload~FAULT')")
	fs.DurationVar(&f.post, "post", 0, "with --ring: after a trigger, go on recording for DURATION (a trigger meanwhile extends it)")
}

func (f *ringFlags) on() bool { return f.ring != 0 }

// check validates the flags and parses --trigger.
func (f *ringFlags) check(o *recordOptions, changed func(string) bool) error {
	if !f.on() {
		for _, n := range []string{"ring-size", "trigger", "post"} {
			if changed(n) {
				return usagef("--%s needs --ring DURATION", n)
			}
		}
		return nil
	}
	var err error
	switch {
	case f.ring < time.Second:
		return usagef("--ring %s: must be at least 1s", f.ring)
	case f.post < 0:
		return usagef("--post must not be negative")
	case f.trigger == "":
		return usagef("--ring needs --trigger QUERY (e.g. --trigger 'alarms/#')")
	case o.split.on() || o.split.keep > 0 || o.split.maxTotal != "":
		return usagef("--ring writes one part per snapshot: it does not go with --split-size, --split-every, --keep or --max-total")
	case o.count > 0:
		return usagef("--count does not go with --ring (use --duration)")
	}
	if f.sizeB, err = parseByteSize(f.size); err != nil || f.sizeB < 64<<10 {
		return usagef("--ring-size %q: want a size of at least 64KiB, e.g. 256MiB", f.size)
	}
	if f.predicate, err = filter.Predicate(f.trigger, nil); err != nil {
		return usagef("--trigger %q: %v", f.trigger, err)
	}
	return nil
}

// snapshotConfig returns the recorder's snapshot settings: parts named
// after -o from the first free number, each set up like a capture record
// creates (compression, decoders).
func (f *ringFlags) snapshotConfig(o *recordOptions, decoders *storage.Decoders, manual <-chan struct{}) *recorder.Snapshot {
	_, first := storage.NextPartName(o.output, 1, time.Now())
	id := make([]byte, 8)
	rand.Read(id)
	compress := o.compress
	return &recorder.Snapshot{Ring: f.ring, RingSize: f.sizeB, Post: f.post, Trigger: f.predicate, Manual: manual,
		Pattern: o.output, First: first, Recording: hex.EncodeToString(id),
		Setup: func(ctx context.Context, c *storage.Capture) error {
			c.SetCompression(compress)
			return storeDecoders(ctx, c, decoders, true)
		}}
}

// runSnapshots runs record --ring.
func runSnapshots(ctx context.Context, cio *cliIO, o *recordOptions, dial recorder.Dialer, cfg recorder.Config, decoders *storage.Decoders) error {
	manual, stopManual := manualTrigger()
	defer stopManual()
	defer roomForRing(cio, o.ring.sizeB)()
	cfg.Snapshot = o.ring.snapshotConfig(o, decoders, manual)
	s := recorder.NewSnapshotter(dial, cfg)
	status := newStatusLine(cio, o.quiet)
	stopStatus := status.start(recordStatusLine(s.Stats))
	res, err := s.Run(ctx)
	stopStatus()
	if !o.quiet && (res.Connected || len(res.Parts) > 0) {
		printSnapshotSummary(cio, res)
	}
	return err
}

// roomForRing raises the garbage collector's soft memory limit (set by
// tuneMemory for a recorder whose heap is its small queue) by the ring's
// size, unless GOMEMLIMIT is set: a full ring under the old limit made the
// collector run all the time. It returns the function that restores it.
func roomForRing(cio *cliIO, size int64) func() {
	if cio.getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	old := debug.SetMemoryLimit(-1)
	if old == math.MaxInt64 {
		return func() {} // no limit (tests, or tuneMemory not run)
	}
	debug.SetMemoryLimit(old + size)
	return func() { debug.SetMemoryLimit(old) }
}

// ringStatus is the ring's part of the live status line.
func ringStatus(r *recorder.RingStats) string {
	state := "armed"
	if r.Capturing {
		state = "WRITING SNAPSHOT"
	}
	return fmt.Sprintf("ring %s msgs  %s (%.0f%% of %s)  evicted %s  snapshots %d  %s",
		humanize.GroupDigits(r.Messages), humanBytes(r.Bytes), 100*float64(r.Bytes)/float64(max(r.Size, 1)),
		humanBytes(r.Size), humanize.GroupDigits(r.Evicted), r.Snapshots, state)
}

func printSnapshotSummary(cio *cliIO, r recorder.Result) {
	w := cio.stderr
	var names []string
	for _, p := range r.Parts {
		names = append(names, filepath.Base(p.Path))
	}
	fmt.Fprintf(w, "\nwrote %s (%s, %s)", humanize.Count(int64(len(r.Parts)), "snapshot", "snapshots"),
		humanize.Count(r.Stored, "message", "messages"), humanBytes(r.Bytes))
	if len(names) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(names, " "))
	}
	fmt.Fprintf(w, "\nstop reason: %s\n", r.StopReason)
	if r.Ring != nil && r.Ring.Evicted > 0 {
		fmt.Fprintf(w, "%s left the ring unwritten (older than --ring or beyond --ring-size)\n",
			humanize.Count(r.Ring.Evicted, "message", "messages"))
	}
}
