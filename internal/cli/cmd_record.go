package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
	"github.com/spf13/pflag"
)

type recordOptions struct {
	conn          connFlags
	topics        []string
	qos           int
	clean         bool
	sys           bool
	duration      time.Duration
	count         int64
	flushInterval time.Duration
	quiet         bool
	compress      bool
	output        string
	decoders      decodeFlags
	split         splitFlags
	ring          ringFlags
}

// splitFlags are record's rotation and retention flags.
type splitFlags struct {
	size, maxTotal string // as given (parseByteSize)
	every          time.Duration
	keep           int
	sizeB, totalB  int64
}

func (f *splitFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.size, "split-size", "", "start the next part once the current one holds SIZE (e.g. 512MiB, 1GB)")
	fs.DurationVar(&f.every, "split-every", 0, "start the next part after DURATION (e.g. 1h)")
	fs.IntVar(&f.keep, "keep", 0, "keep at most N parts, the one being written included: the oldest finished parts are deleted (0: all)")
	fs.StringVar(&f.maxTotal, "max-total", "", "delete the oldest finished parts while all parts take more than SIZE")
}

func (f *splitFlags) on() bool { return f.size != "" || f.every != 0 }

// check validates the flags against the output pattern.
func (f *splitFlags) check(output string) error {
	var err error
	if f.size != "" {
		// A new capture's tables and indexes alone take 832 KiB (64 KiB
		// pages): below 1 MiB every batch would start a part.
		if f.sizeB, err = parseByteSize(f.size); err != nil || f.sizeB < 1<<20 {
			return usagef("--split-size %q: want a size of at least 1MiB (an empty capture already takes 832 KiB), e.g. 512MiB or 1GB", f.size)
		}
	}
	if f.maxTotal != "" {
		if f.totalB, err = parseByteSize(f.maxTotal); err != nil || f.totalB <= 0 {
			return usagef("--max-total %q: want a size, e.g. 10GiB", f.maxTotal)
		}
	}
	switch {
	case f.every < 0 || (f.every > 0 && f.every < time.Second):
		return usagef("--split-every %s: must be at least 1s", f.every)
	case f.keep < 0:
		return usagef("--keep must not be negative")
	case !f.on() && (f.keep > 0 || f.maxTotal != ""):
		return usagef("--keep and --max-total delete parts: they need --split-size or --split-every")
	case !f.on() && strings.Contains(output, "{n}"):
		return usagef("-o %q names parts ({n}): add --split-size or --split-every", output)
	}
	return nil
}

const recordUsage = `record [flags] -o FILE

Subscribe to a broker and record every message into FILE until Ctrl-C,
--duration or --count (0, the default for both, is no limit). An existing capture gets a new session appended; any
other existing file is refused untouched. QoS 1/2 messages are acknowledged
once they are in the session's spool file beside the capture (a kill -9
loses none of them: the next record into the file adds them); the broker
never waits for the database. At the stop, the broker's $SYS dropped
counter (where it has one) is printed and stored.

--decode and --proto are stored in the capture (the map and the compiled
descriptors, not the file paths), so whoever opens it later sees decoded
payloads without the .proto files; see mqtape decoders.

--split-size and --split-every rotate the recording into parts, each a
complete capture (it starts with the retained state known at its start and
names its neighbours in "split" events); the broker connection stays up and
no message is lost or repeated at a seam. -o is then a name pattern: {n} is
the part number (4 digits), %Y %m %d %H %M %S the part's start (UTC);
without them, -o run.db writes run-0001.db, run-0002.db, … (numbering goes
on after the parts already there). --keep and --max-total delete the oldest
finished parts of this recording, never the part being written. Each part
carries the recording's decoders and --compress. Read the parts together
with info, export, inspect, play, diff, cut or merge.

--ring DURATION records trigger snapshots: the last DURATION of traffic is
kept in memory (at most --ring-size of payloads and topics, 256MiB by
default; the oldest go first) and nothing is written until a message
matches --trigger QUERY (inspect's / language: topic filters, payload~REGEX,
payload:TEXT, qos>=1, .PATH OP VALUE on JSON payloads; topic filters ORed, other
terms ANDed). Then one part
is written (named like --split-* parts from -o) holding the ring and
everything for --post after the trigger; a trigger inside the post-window
extends it; then the ring starts filling again. SIGUSR1 (kill -USR1 PID)
triggers by hand. Each part starts with the retained state known at its
first message and passes check. Messages in the ring are acknowledged when
they enter it: a snapshot recorder trades the kill -9 guarantee for memory
(a kill loses the ring, which is never written); messages of a post-window
are acknowledged once committed to their part.

` + decodeFlagsHelp

const recordExamples = `  mqtape record -o capture.db                                   # '#' at QoS 2 on mqtt://127.0.0.1:1883
  mqtape record --broker mqtts://broker:8883 -u alice -t 'plant/+/temp' -t 'alarms/#' --duration 10m -o x.db
  MQTAPE_PASSWORD=secret mqtape record -b mqtt://10.0.0.5 -u bob --count 1000 -o sample.db
  mqtape record --sys --clean=false --client-id rec1 -o long.db  # persistent session, with $SYS/#
  mqtape record -V 5 -o props.db                                # MQTT 5: properties and the publisher's retain flag
  mqtape record --decode 'acme/#=protobuf:acme.v1.Reading' --proto reading.proto -o acme.db
  mqtape record --compress -o week.db                           # payloads zstd-compressed (JSON telemetry: about a third)
  mqtape record --split-size 512MiB --keep 48 -o run.db         # run-0001.db, run-0002.db, …; the last 48 kept
  mqtape record --split-every 1h --max-total 20GiB -o 'plant-%Y%m%d-%H.db'
  mqtape record --ring 5m --trigger 'alarms/#' --post 1m -o incident.db   # incident-0001.db: 5 min before, 1 min after
  mqtape record --ring 30s --ring-size 64MiB --trigger 'plant/# payload~FAULT' -o 'fault-%Y%m%d-%H%M%S.db'
  mqtape record --ring 2m --trigger '.temp>90' --post 30s -o hot.db & kill -USR1 $!   # SIGUSR1: snapshot now
`

func parseRecord(args []string, cio *cliIO) (recordOptions, error) {
	var o recordOptions
	fs := newFlagSet("record", recordUsage, recordExamples, cio)
	fs.StringVarP(&o.output, "output", "o", "", "capture file to write (required)")
	fs.StringArrayVarP(&o.topics, "topic", "t", nil, "topic filter to subscribe to (repeatable, default '#')")
	fs.IntVarP(&o.qos, "qos", "q", 2, "subscription QoS: delivered QoS is min(published, this), so 2 keeps what was published")
	fs.BoolVar(&o.sys, "sys", false, "also record $SYS/# (the broker's own topics, which '#' does not match)")
	fs.BoolVar(&o.clean, "clean", true, "clean session; --clean=false with --client-id keeps the session (and queued QoS 1/2 messages) across runs")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (e.g. 10m; 0: no limit)")
	fs.Int64Var(&o.count, "count", 0, "stop after this many messages (0: no limit)")
	fs.DurationVar(&o.flushInterval, "flush-interval", 100*time.Millisecond, "commit received messages at least this often")
	fs.BoolVar(&o.quiet, "quiet", false, "no live status line or summary")
	registerCompress(fs, &o.compress)
	o.split.register(fs)
	o.ring.register(fs)
	o.conn.register(fs)
	o.decoders.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, usagef("unexpected argument %q (the capture file goes after -o)", fs.Arg(0))
	case o.output == "":
		return o, usagef("missing -o FILE")
	case o.qos < 0 || o.qos > 2:
		return o, usagef("--qos %d: must be 0, 1 or 2", o.qos)
	case o.duration < 0:
		return o, usagef("--duration must not be negative")
	case o.count < 0:
		return o, usagef("--count must not be negative")
	case o.flushInterval <= 0 || o.flushInterval > time.Minute:
		return o, usagef("--flush-interval %s: must be between 1ns and 1m", o.flushInterval)
	case !o.clean && o.conn.clientID == "":
		return o, usagef("--clean=false needs a fixed --client-id (the broker keeps the session under that id)")
	}
	if err := o.ring.check(&o, fs.Changed); err != nil {
		return o, err
	}
	if !o.ring.on() {
		if err := o.split.check(o.output); err != nil {
			return o, err
		}
	}
	if err := topic.ValidateAll(o.topics); err != nil {
		return o, err
	}
	return o, nil
}

func cmdRecord(ctx context.Context, args []string, cio *cliIO) (err error) {
	var res recorder.Result
	o, err := parseRecord(args, cio)
	if err != nil {
		return err
	}
	copts, err := o.conn.options(cio, "mqtape-rec")
	if err != nil {
		return err
	}
	copts.CleanSession = o.clean
	copts.ManualAck = true
	copts.AutoReconnect = true
	if _, err := copts.TLS.Config(""); err != nil && copts.Broker.TLS() {
		return err // bad TLS files: fail before touching the capture
	}
	decoders, err := o.decoders.toStore(ctx) // usage errors before touching the capture
	if err != nil {
		return err
	}
	if o.ring.on() {
		return runSnapshots(ctx, cio, &o, recordDialer(cio, &o, copts, o.output), o.recorderConfig(copts), decoders)
	}
	output, split, err := o.split.firstPart(ctx, cio, o.output, o.quiet)
	if err != nil {
		return err
	}
	fi, statErr := os.Stat(output)
	isNew := statErr != nil
	wasEmpty := statErr == nil && fi.Mode().IsRegular() && fi.Size() == 0
	capture, err := storage.OpenWrite(output)
	if err != nil {
		if isNew {
			// Created and then failed (e.g. the disk is full): no
			// half-made file behind.
			os.Remove(output)
		}
		return err
	}
	capture.SetCompression(o.compress)
	defer func() {
		capture.Close()
		if res.SessionID == 0 {
			// Nothing was recorded (e.g. the broker was unreachable): do
			// not leave an empty capture behind, nor turn an empty file
			// into one.
			if isNew {
				os.Remove(output)
			} else if wasEmpty {
				os.Truncate(output, 0)
			}
		}
	}()

	if err := recoverSpool(ctx, cio, capture, o.quiet); err != nil {
		return err
	}
	if err := storeDecoders(ctx, capture, decoders, isNew || wasEmpty); err != nil {
		return err
	}

	cfg := o.recorderConfig(copts)
	cfg.Split = split
	rec := recorder.New(capture, recordDialer(cio, &o, copts, output), cfg)
	status := newStatusLine(cio, o.quiet)
	stopStatus := status.start(recordStatusLine(rec.Stats))
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	if split == nil {
		// Parts come and go (retention deletes them): not watched.
		watchCapture(runCtx, output, 500*time.Millisecond, stopRun)
	}
	res, err = rec.Run(runCtx)
	stopStatus()
	if err == nil && errors.Is(context.Cause(runCtx), errCaptureGone) {
		err = rescueCapture(ctx, capture, output, res.Stored)
	}
	if !isNew && !wasEmpty && res.SessionID != 0 {
		err = errors.Join(err, storeDecoders(context.WithoutCancel(ctx), capture, decoders, true))
	}
	if res.SessionID != 0 && !o.quiet {
		printRecordSummary(cio, output, res)
	}
	if err != nil {
		if errors.Is(err, recorder.ErrWriter) {
			return fmt.Errorf("%v (everything committed before this is intact in %s)", err, lastPart(output, res))
		}
		return err
	}
	return nil
}

// subscriptions are the filters to subscribe to ('#' by default).
func (o *recordOptions) subscriptions() []mqtt.Subscription {
	var subs []mqtt.Subscription
	for _, t := range o.topics {
		subs = append(subs, mqtt.Subscription{Filter: t, QoS: byte(o.qos)})
	}
	if len(subs) == 0 {
		subs = []mqtt.Subscription{{Filter: "#", QoS: byte(o.qos)}}
	}
	return subs
}

// recorderConfig is the recording's configuration from the flags.
func (o *recordOptions) recorderConfig(copts mqtt.Options) recorder.Config {
	host, _ := os.Hostname()
	return recorder.Config{
		Filters: o.subscriptions(), Sys: o.sys, Count: o.count, Duration: o.duration, FlushInterval: o.flushInterval,
		Session: storage.SessionInfo{Source: "subscriber", Broker: copts.Broker.String(), ClientID: copts.ClientID,
			Protocol: copts.ProtocolVersion, CleanSession: o.clean, Version: version, Host: host},
	}
}

// recordDialer connects with copts and, once connected the first time,
// says what is being recorded where.
func recordDialer(cio *cliIO, o *recordOptions, copts mqtt.Options, output string) recorder.Dialer {
	var banner sync.Once
	return func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		c, err := connect(ctx, copts, h)
		if err == nil && !o.quiet {
			// Only once connected: a failure is then the only line.
			banner.Do(func() {
				what := "recording"
				if o.ring.on() {
					what = fmt.Sprintf("recording snapshots (ring %s, trigger %q, post %s; SIGUSR1 triggers by hand) of", o.ring.ring, o.ring.trigger, o.ring.post)
				}
				fmt.Fprintf(cio.stderr, "%s %s → %s (filters %s, QoS %d); Ctrl-C to stop\n",
					what, copts.Broker, output, strings.Join(filterNames(o.subscriptions(), o.sys), " "), o.qos)
			})
		}
		return c, err
	}
}

// storeDecoders stores record's --decode/--proto (nil: none given) when
// now: a new capture carries them from the start, an existing one gets them
// once its session has begun, so a recording that never starts leaves it
// as it was.
func storeDecoders(ctx context.Context, capture *storage.Capture, d *storage.Decoders, now bool) error {
	if d == nil || !now {
		return nil
	}
	return capture.SetDecoders(ctx, *d)
}

// firstPart returns the file to record into: output itself, or with
// --split-* the first free part name and the rotation's settings. The
// spool of the part before it (a split recording killed before its last
// part was closed) is recovered into that part first.
func (f *splitFlags) firstPart(ctx context.Context, cio *cliIO, output string, quiet bool) (string, *recorder.Split, error) {
	if !f.on() {
		return output, nil, nil
	}
	name, n := storage.NextPartName(output, 1, time.Now())
	// A recording killed during a rotation leaves spools in its last two
	// parts at most.
	for k := n - 1; k >= max(1, n-2); k-- {
		if err := recoverPartSpool(ctx, cio, storage.PartName(output, k, time.Now()), quiet); err != nil {
			return "", nil, err
		}
	}
	id := make([]byte, 8)
	rand.Read(id)
	return name, &recorder.Split{Size: f.sizeB, Every: f.every, Keep: f.keep, MaxTotal: f.totalB,
		Pattern: output, First: n, Recording: hex.EncodeToString(id)}, nil
}

// recoverPartSpool recovers the spool of a part left by a killed
// recording, if it has one.
func recoverPartSpool(ctx context.Context, cio *cliIO, part string, quiet bool) error {
	if spools, err := storage.SpoolFiles(part); err != nil || len(spools) == 0 {
		return nil
	}
	c, err := storage.OpenWrite(part)
	if err != nil {
		return err
	}
	err = recoverSpool(ctx, cio, c, quiet)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("part %s: %w", part, err)
	}
	return nil
}

// lastPart names the part a split recording ended in (file otherwise).
func lastPart(file string, r recorder.Result) string {
	if len(r.Parts) > 0 {
		return r.Parts[len(r.Parts)-1].Path
	}
	return file
}

// recoverSpool adds to the capture what an earlier recorder, killed before
// it could commit, left in its spool (acknowledged to the broker, so only
// there), and says so.
func recoverSpool(ctx context.Context, cio *cliIO, capture *storage.Capture, quiet bool) error {
	rep, err := capture.RecoverSpool(ctx)
	if err != nil {
		return fmt.Errorf("recover the spool of an earlier recording: %w", err)
	}
	if rep.Recovered > 0 && !quiet {
		fmt.Fprintf(cio.stderr, "recovered %s from the spool of an earlier recording that stopped without closing its session\n",
			humanize.Count(rep.Recovered, "message", "messages"))
	}
	for _, l := range rep.Lost {
		fmt.Fprintf(cio.stderr, "WARNING: spool %s (the records after it were lost)\n", l)
	}
	for _, f := range rep.Busy {
		fmt.Fprintf(cio.stderr, "note: %s belongs to a recorder still running; left alone\n", f)
	}
	for _, f := range rep.Orphans {
		fmt.Fprintf(cio.stderr, "WARNING: %s is not a spool of a session in this capture (perhaps of an earlier file at this path); left alone, delete it if you do not need it\n", f)
	}
	return nil
}

// tuneMemory sets the garbage collector for recording at full broker speed.
// The recorder's live heap is its bounded queue (recorder.Config.QueueBytes
// of payload) plus a few megabytes, while it allocates every payload twice
// (paho copies each packet): with the default GOGC=100 the collector ran
// every few hundred milliseconds and cost about a tenth of the CPU. GC
// percent 400 makes it rare; the soft limit of 96 MiB keeps the heap, and
// RSS under ~150 MB, when the queue is full. GOGC and GOMEMLIMIT in the
// environment win. main calls it (process-wide settings: not in tests).
func tuneMemory(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
}

func filterNames(subs []mqtt.Subscription, sys bool) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.Filter)
	}
	if sys {
		out = append(out, "$SYS/#")
	}
	return out
}

// rateMeter turns a growing count into a rate over about the last second.
type rateMeter struct {
	at   []time.Time
	vals []int64
}

func (m *rateMeter) rate(n int64) float64 {
	now := time.Now()
	m.at, m.vals = append(m.at, now), append(m.vals, n)
	for len(m.at) > 2 && now.Sub(m.at[1]) >= time.Second {
		m.at, m.vals = m.at[1:], m.vals[1:]
	}
	if d := now.Sub(m.at[0]).Seconds(); d > 0 {
		return float64(n-m.vals[0]) / d
	}
	return 0
}

// recordStatusLine returns a status renderer with its own rate meter.
func recordStatusLine(stats func() recorder.Stats) func() string {
	var m rateMeter
	return func() string {
		s := stats()
		return recordStatus(s, m.rate(s.Stored))
	}
}

func recordStatus(s recorder.Stats, rate float64) string {
	el := time.Since(s.Started)
	conn := ""
	if !s.Connected {
		conn = "  DISCONNECTED"
	}
	warn := ""
	if s.Dropped > 0 {
		warn += fmt.Sprintf("  DROPPED %d", s.Dropped)
	}
	if s.BrokerDropped > 0 {
		warn += fmt.Sprintf("  BROKER DROPPED %d", s.BrokerDropped)
	}
	part := ""
	if s.Part != "" {
		part = "  → " + filepath.Base(s.Part)
	}
	if s.Ring != nil {
		part += "  " + ringStatus(s.Ring)
	}
	return fmt.Sprintf("%s msgs  %s msg/s  %s  %d topics  %s  reconnects %d%s%s%s",
		humanize.GroupDigits(s.Stored), humanize.GroupDigits(int64(rate)), humanBytes(s.Bytes), s.Topics, fmtElapsed(el),
		s.Reconnects, part, warn, conn)
}

func printRecordSummary(cio *cliIO, file string, r recorder.Result) {
	w := cio.stderr
	el := r.Ended.Sub(r.Started)
	if r.Started.IsZero() {
		el = 0
	}
	fmt.Fprintf(w, "\nrecorded %s (%s) on %s in %s into %s, session %d\n",
		humanize.Count(r.Stored, "message", "messages"), humanBytes(r.Bytes), humanize.Count(int64(r.Topics), "topic", "topics"),
		el.Round(time.Millisecond), file, r.SessionID)
	fmt.Fprintf(w, "stop reason: %s\n", r.StopReason)
	printParts(w, r.Parts)
	for _, f := range r.Filters {
		g := fmt.Sprintf("granted QoS %d", f.Granted)
		if f.Granted == 0x80 {
			g = "DENIED by the broker"
		}
		fmt.Fprintf(w, "  filter %-30s requested QoS %d, %s\n", termsafe.Cell(f.Filter, topicColumn), f.QoS, g)
	}
	if r.Reconnects > 0 {
		fmt.Fprintf(w, "reconnects: %d (see mqtape info %s for the gaps)\n", r.Reconnects, file)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(w, "WARNING: %s received but not stored (the disk could not keep up); recorded as events\n",
			humanize.Count(r.Dropped, "message was", "messages were"))
	}
	switch {
	case r.BrokerDropped > 0:
		fmt.Fprintf(w, "WARNING: the broker reports %s dropped while recording ($SYS/broker/publish/messages/dropped, as of its last update)\n",
			humanize.Count(r.BrokerDropped, "message", "messages"))
	case r.BrokerCounts:
		fmt.Fprintf(w, "broker dropped: 0 (its $SYS/broker/publish/messages/dropped, as of its last update)\n")
	}
}

// printParts lists a split recording's parts.
func printParts(w io.Writer, parts []recorder.PartInfo) {
	if len(parts) < 2 {
		return
	}
	var kept, deleted []string
	for _, p := range parts {
		if p.Deleted {
			deleted = append(deleted, filepath.Base(p.Path))
		} else {
			kept = append(kept, filepath.Base(p.Path))
		}
	}
	fmt.Fprintf(w, "parts: %s\n", strings.Join(kept, " "))
	if len(deleted) > 0 {
		fmt.Fprintf(w, "deleted by retention: %s\n", strings.Join(deleted, " "))
	}
}
