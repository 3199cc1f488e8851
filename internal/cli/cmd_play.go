package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

const playUsage = `play [flags] FILE...

Publish a capture's messages to a broker with their original timing: every
message is scheduled against one absolute clock (deadline = start + offset /
speed), so a long replay does not drift. Sessions of a multi-session capture
play one after the other. Payload bytes, topic, QoS and retain flag are sent
as recorded.

Protocol: play connects with the MQTT version the capture was recorded with,
so an MQTT 5 capture replays as MQTT 5 with its messages' properties
(content type, response topic, correlation data, user properties, message
expiry as recorded). -V 311 replays it as MQTT 3.1.1 and says how many
messages lose their properties.

A selection that contains nothing (--from past the end, a -t/-x that
matches no topic) is an error (exit 1) that says what the capture holds: its
topics, or its sessions and their span; --from not before --to is a usage
error (exit 2).

Retained state: messages a recording received from the broker's retained
store when it subscribed are published first, with retain=1, at the start of
each session, also when --from starts mid-capture (--retained keep). skip
leaves them out; live publishes them at their recorded time with retain=0.

Sparkplug B: when --from starts inside a session, the births in force at
that point (each edge node's latest NBIRTH and its devices' DBIRTHs, unless
a death followed) are published first, as recorded, so a Sparkplug host
does not answer the replay with rebirth requests. --sparkplug-seq renumber
rewrites each payload's seq to count on from the NBIRTH as published
(keep, the default, sends the recorded seq).

QoS 1/2 publishes do not wait for their acknowledgement: up to --max-inflight
may be outstanding before the schedule waits. The report at the end says how
faithful the replay was: intended vs actual duration, lateness of each
publish against its deadline (p50/p90/p99/max) and acknowledgement failures.

A broker that is not on this machine (not a loopback address or
localhost) gets a question on the terminal before anything is sent;
--yes skips it, and without a terminal play refuses (exit 2) unless --yes
is given: replaying into production by mistake is the worst accident.

--dry-run with --decode or --proto also lists every message one pass would
send, in the order and with the payload it would be sent (births first,
--sparkplug-seq applied): its time at this speed, topic and decoded value
on one line (Sparkplug B as Temperature=21.75 Running=true, other values as
compact JSON, decode_error: … when the decoder fails); with --json they are
the plan's "messages", each with decoded or payload as export writes them.
The decoders the capture carries apply after the flags'; --decode
'spBv1.0/#=sparkplug' lists a Sparkplug capture with no other decoder.

On a terminal a progress bar shows on stderr; keys: space pause/resume,
→ step one message while paused, + / - double / halve the speed, q or Ctrl-C
stop (exit 130, with the report so far). The report gives the speed at the
end, and the one it started with when + / - changed it.

Several captures — files, a directory (its *.db files) or a quoted glob such as
'run-*.db' — are read as one capture in time order: the parts of a split
recording (record --split-size) count every message once.

` + decodeFlagsHelp

const playExamples = `  mqtape play capture.db --broker mqtt://127.0.0.1:1883            # original timing, once
  mqtape play capture.db --speed 4 --loop 3 -t 'plant/#' -x 'plant/+/debug' --from 30s --to 2m
  mqtape play capture.db --speed max                                 # as fast as the broker takes it
  mqtape play capture.db --topic-prefix sandbox/ --retained skip --dry-run
  mqtape play capture.db --remap plant/1/=sandbox/plant/1/ --max-gap 5s --qos 1
  mqtape play sparkplug.db --from 10m --sparkplug-seq renumber      # births first, seq following on
  mqtape play capture.db --json > report.json                        # fidelity report for scripts
  mqtape play sparkplug.db --dry-run --decode 'spBv1.0/#=sparkplug' --from 10m   # each message, decoded
  mqtape play capture.db --dry-run --decode 'acme/#=protobuf:acme.v1.Reading' --proto reading.proto --json
`

type playOptions struct {
	inputs       []string // the captures read as one (openInputs)
	conn         connFlags
	sel          selectFlags
	speedFlag    string
	qosFlag      string
	retained     string
	remapFlags   []string
	loop         int
	maxGap       time.Duration
	topicPrefix  string
	maxInflight  int
	dryRun       bool
	sparkplugSeq string
	decode       decodeFlags
	yes          bool
	json         bool
	quiet        bool
	file         string

	// Resolved from the flags.
	speed        float64 // math.Inf(1) for max
	overrideQoS  bool
	qos          byte
	retainedMode replay.RetainedMode
	remaps       []replay.Remap
	query        storage.Query
}

func parsePlay(args []string, cio *cliIO) (playOptions, error) {
	var o playOptions
	fs := newFlagSet("play", playUsage, playExamples, cio)
	fs.StringVar(&o.speedFlag, "speed", "1", "playback rate `X`: 1 original, 4 four times faster, 0.25 slower, or max")
	fs.IntVar(&o.loop, "loop", 1, "play the selection `N` times (0: until Ctrl-C)")
	o.sel.register(fs, true)
	fs.DurationVar(&o.maxGap, "max-gap", 0, "cap every gap between messages at this (capture time), e.g. an idle night")
	fs.StringVar(&o.qosFlag, "qos", "", "publish every message at QoS `N` (default: as recorded)")
	fs.StringVar(&o.retained, "retained", "keep", "retained-store messages `MODE`: keep (restore first, retain=1), skip, or live (retain=0, at their time)")
	fs.StringVar(&o.topicPrefix, "topic-prefix", "", "prepend `P` to every topic (after --remap), e.g. sandbox/")
	fs.StringArrayVar(&o.remapFlags, "remap", nil, "rewrite topics starting with OLD to start with NEW: `OLD=NEW` (repeatable; first match wins)")
	fs.IntVar(&o.maxInflight, "max-inflight", replay.DefaultMaxInflight, "publishes awaiting their acknowledgement (`N`) before the schedule waits")
	fs.StringVar(&o.sparkplugSeq, "sparkplug-seq", "keep", "Sparkplug B seq `MODE`: keep (as recorded) or renumber (count on from each NBIRTH as published)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "do not connect: print what would be sent")
	fs.BoolVarP(&o.yes, "yes", "y", false, "replay into a broker that is not on this machine (not loopback) without asking")
	fs.BoolVar(&o.json, "json", false, "print the report (or the --dry-run plan) as JSON on stdout")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar and no human report")
	o.decode.register(fs)
	o.conn.asRecorded = true
	o.conn.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.inputs, o.file, err = captureArgs(fs); err != nil {
		return o, err
	}
	if o.decode.given() && !o.dryRun {
		return o, usagef("--decode and --proto list the decoded payloads of a --dry-run; play sends payloads as recorded")
	}
	if o.speed, err = replay.ParseSpeed(o.speedFlag); err != nil {
		return o, usagef("--speed %q: %w", o.speedFlag, replay.ErrBadSpeed)
	}
	switch o.qosFlag {
	case "":
	case "0", "1", "2":
		o.overrideQoS, o.qos = true, o.qosFlag[0]-'0'
	default:
		return o, usagef("--qos %q: must be 0, 1 or 2", o.qosFlag)
	}
	if o.retainedMode, err = replay.ParseRetainedMode(o.retained); err != nil {
		return o, usagef("--retained %q: use keep, skip or live", o.retained)
	}
	if o.sparkplugSeq != "keep" && o.sparkplugSeq != "renumber" {
		return o, usagef("--sparkplug-seq %q: use keep or renumber", o.sparkplugSeq)
	}
	for _, r := range o.remapFlags {
		rm, err := replay.ParseRemap(r)
		if err != nil {
			return o, usagef("--remap: %v", err)
		}
		o.remaps = append(o.remaps, rm)
	}
	if strings.ContainsAny(o.topicPrefix, "+#\x00") {
		return o, usagef("--topic-prefix %q: topic names cannot contain '+', '#' or NUL", o.topicPrefix)
	}
	switch {
	case o.loop < 0:
		return o, usagef("--loop %d: use a number of passes, or 0 to repeat until Ctrl-C", o.loop)
	case o.maxGap < 0:
		return o, usagef("--max-gap must not be negative")
	case o.maxInflight < 1:
		return o, usagef("--max-inflight %d: must be at least 1", o.maxInflight)
	}
	if _, err := o.conn.version(); err != nil {
		return o, err
	}
	o.query, err = o.sel.query()
	return o, err
}

func (o *playOptions) config() replay.Config {
	loop := o.loop
	if loop == 0 {
		loop = replay.Forever
	}
	return replay.Config{Query: o.query, Speed: o.speed, Loop: loop, MaxGap: o.maxGap, Retained: o.retainedMode,
		OverrideQoS: o.overrideQoS, QoS: o.qos, TopicPrefix: o.topicPrefix, Remap: o.remaps, MaxInflight: o.maxInflight,
		SparkplugRenumber: o.sparkplugSeq == "renumber"}
}

func speedString(s float64) string {
	if math.IsInf(s, 1) {
		return "max"
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

func atSpeed(d time.Duration, speed float64) time.Duration {
	if math.IsInf(speed, 1) {
		return 0
	}
	return time.Duration(float64(d) / speed)
}

// noPublisher stands in for the broker during --dry-run; it is never called.
type noPublisher struct{}

func (noPublisher) Publish(string, byte, bool, []byte) mqtt.Token {
	return replay.DoneToken(errors.New("dry run"))
}

func cmdPlay(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parsePlay(args, cio)
	if err != nil {
		return err
	}
	capture, err := openInputs(ctx, cio, o.inputs, true)
	if err != nil {
		return err
	}
	defer capture.Close()
	if err := checkSelection(ctx, capture, &o); err != nil {
		return err
	}
	if err := checkNotEmpty(ctx, capture, o.file, o.query); err != nil {
		return err
	}
	if err := playProtocol(ctx, capture, &o, cio); err != nil {
		return err
	}
	if o.dryRun {
		return runPlayDryRun(ctx, capture, o, cio)
	}
	return runPlay(ctx, capture, o, cio)
}

// runPlay connects to the broker (asking first if it is not on this
// machine), plays the selection and reports how faithful the replay was.
func runPlay(ctx context.Context, capture *storage.Capture, o playOptions, cio *cliIO) error {
	copts, err := o.conn.options(cio, "mqtape-play")
	if err != nil {
		return err
	}
	// At --speed max no publish waits for a deadline: batch them into
	// fewer writes (one system call per PUBLISH was a fifth of the CPU).
	copts.CoalesceWrites = math.IsInf(o.speed, 1)
	if err := confirmPlayTarget(ctx, capture, o, copts.Broker, cio); err != nil {
		return err
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	client, err := connect(ctx, copts, mqtt.Handlers{Lost: func(err error) {
		stop(fmt.Errorf("%w: connection lost: %v", mqtt.ErrUnreachable, err))
	}})
	if err != nil {
		return err
	}
	defer client.Disconnect(250 * time.Millisecond)
	p, err := replay.New(capture, client, o.config())
	if err != nil {
		return err
	}
	rep, runErr := playWithControls(ctx, runCtx, p, o, copts.Broker, cio, func() { stop(errInterrupted) })
	return reportPlay(cio, o, copts.Broker.String(), rep, playOutcome(ctx, runCtx, runErr))
}

// playProtocol resolves -V: when not given, the version the selection was
// recorded with (replay.RecordedProtocol). -V 311 on an MQTT 5 capture
// warns how many messages lose their properties (the selection is read
// once to count them).
func playProtocol(ctx context.Context, capture *storage.Capture, o *playOptions, cio *cliIO) error {
	recorded, err := replay.RecordedProtocol(ctx, capture, o.query)
	if err != nil {
		return err
	}
	recorded5 := recorded == 5
	v, _ := o.conn.version() // checked by parsePlay
	if v == 0 && recorded5 || v == 5 {
		o.conn.protocol = "5"
		return nil
	}
	o.conn.protocol = "311"
	if v == 0 || !recorded5 {
		return nil
	}
	p, err := replay.New(capture, noPublisher{}, o.config())
	if err != nil {
		return err
	}
	pl, err := p.Plan(ctx)
	if err != nil {
		return err
	}
	if pl.WithProps > 0 {
		fmt.Fprintf(cio.stderr, "warning: %s was recorded with MQTT 5: over MQTT 3.1.1 (-V %s) %s of %s %s %s properties "+
			"(content type, response topic, correlation data, user properties, expiry); leave out -V to replay as MQTT 5\n",
			o.file, o.conn.protocol, humanize.Count(pl.WithProps, "message", "messages"), humanize.GroupDigits(pl.Messages),
			humanize.Plural(pl.WithProps, "loses", "lose"), humanize.Plural(pl.WithProps, "its", "their"))
	}
	return nil
}

// confirmPlayTarget asks before replaying into a broker that is not on this
// machine, unless --yes was given (see confirmRemote).
func confirmPlayTarget(ctx context.Context, capture *storage.Capture, o playOptions, b mqtt.Broker, cio *cliIO) error {
	if b.IsLoopback() || o.yes {
		return nil
	}
	n, err := capture.Count(ctx, o.query)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s messages from %s", humanize.GroupDigits(n*int64(max(o.loop, 1))), o.file)
	return confirmRemote(ctx, b, what, isTerminalReader(cio.stdin), cio.stdin, cio.stderr)
}

// playWithControls runs p until runCtx ends. On a terminal, without
// --quiet, it first announces the replay, then reads the control keys from
// stdin (interrupt is called for Ctrl-C or q) and redraws the progress line
// on stderr while p runs. The plan behind the progress bar is read with ctx.
func playWithControls(ctx, runCtx context.Context, p *replay.Player, o playOptions, broker mqtt.Broker, cio *cliIO,
	interrupt func()) (replay.Report, error) {
	var plan *replay.Plan
	restoreTerm := func() {}
	if cio.stderrTTY && !o.quiet {
		if pl, err := p.Plan(ctx); err == nil {
			plan = &pl
		}
		fmt.Fprintf(cio.stderr, "playing %s → %s; keys: space pause/resume, → step, +/- speed, q or Ctrl-C stop\n",
			o.file, broker)
		restoreTerm = startKeys(cio.stdin, p, interrupt)
	}
	stopStatus := newStatusLine(cio, o.quiet).start(func() string { return playStatus(p.Progress(), plan, o.loop) })
	rep, err := p.Run(runCtx)
	restoreTerm()
	stopStatus()
	return rep, err
}

// playOutcome turns the error Run returned into the command's: a signal or
// the Ctrl-C key is errInterrupted, a lost connection its cause (runCtx's),
// a topic rewrite that produced an invalid name a usage error.
func playOutcome(ctx, runCtx context.Context, runErr error) error {
	cause := context.Cause(runCtx)
	switch {
	case runErr == nil:
	case ctx.Err() != nil || errors.Is(cause, errInterrupted):
		runErr = errInterrupted
	case cause != nil && runCtx.Err() != nil:
		runErr = cause
	case errors.Is(runErr, replay.ErrBadRewrite):
		runErr = usageError{runErr}
	}
	return runErr
}
