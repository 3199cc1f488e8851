package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

const playUsage = `play [flags] FILE

Publish a capture's messages to a broker with their original timing: every
message is scheduled against one absolute clock (deadline = start + offset /
speed), so a long replay does not drift. Sessions of a multi-session capture
play one after the other. Payload bytes, topic, QoS and retain flag are sent
as recorded.

Retained state: messages a recording received from the broker's retained
store when it subscribed are published first, with retain=1, at the start of
each session, also when --from starts mid-capture (--retained keep). skip
leaves them out; live publishes them at their recorded time with retain=0.

QoS 1/2 publishes do not wait for their acknowledgement: up to --max-inflight
may be outstanding before the schedule waits. The report at the end says how
faithful the replay was: intended vs actual duration, lateness of each
publish against its deadline (p50/p90/p99/max) and acknowledgement failures.

A broker that is not on this machine (not a loopback address or
localhost) gets a question on the terminal before anything is sent;
--yes skips it, and without a terminal play refuses (exit 2) unless --yes
is given: replaying into production by mistake is the worst accident.

On a terminal a progress bar shows on stderr; keys: space pause/resume,
→ step one message while paused, + / - double / halve the speed, Ctrl-C stop
(exit 130, with the report so far).`

const playExamples = `  mqtape play capture.db --broker mqtt://127.0.0.1:1883            # original timing, once
  mqtape play capture.db --speed 4 --loop 3 -t 'plant/#' -x 'plant/+/debug' --from 30s --to 2m
  mqtape play capture.db --speed max                                 # as fast as the broker takes it
  mqtape play capture.db --topic-prefix sandbox/ --retained skip --dry-run
  mqtape play capture.db --remap plant/1/=sandbox/plant/1/ --max-gap 5s --qos 1
  mqtape play capture.db --json > report.json                        # fidelity report for scripts
`

type playOptions struct {
	conn        connFlags
	sel         selectFlags
	speedFlag   string
	qosFlag     string
	retained    string
	remapFlags  []string
	loop        int
	maxGap      time.Duration
	topicPrefix string
	maxInflight int
	dryRun      bool
	yes         bool
	json        bool
	quiet       bool
	file        string

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
	fs.BoolVar(&o.dryRun, "dry-run", false, "do not connect: print what would be sent")
	fs.BoolVarP(&o.yes, "yes", "y", false, "replay into a broker that is not on this machine (not loopback) without asking")
	fs.BoolVar(&o.json, "json", false, "print the report (or the --dry-run plan) as JSON on stdout")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar and no human report")
	o.conn.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.file, err = oneFile(fs); err != nil {
		return o, err
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
	o.query, err = o.sel.query()
	return o, err
}

func (o *playOptions) config() replay.Config {
	loop := o.loop
	if loop == 0 {
		loop = replay.Forever
	}
	return replay.Config{Query: o.query, Speed: o.speed, Loop: loop, MaxGap: o.maxGap, Retained: o.retainedMode,
		OverrideQoS: o.overrideQoS, QoS: o.qos, TopicPrefix: o.topicPrefix, Remap: o.remaps, MaxInflight: o.maxInflight}
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
	capture, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	defer capture.Close()
	if err := checkSelection(ctx, capture, &o); err != nil {
		return err
	}
	if o.dryRun {
		p, err := replay.New(capture, noPublisher{}, o.config())
		if err != nil {
			return err
		}
		plan, err := p.Plan(ctx)
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(cio.stdout, planJSON(o, plan))
		}
		printPlan(cio.stdout, o, plan)
		return nil
	}

	copts, err := o.conn.options(cio, "mqtape-play")
	if err != nil {
		return err
	}
	// At --speed max no publish waits for a deadline: batch them into
	// fewer writes (one system call per PUBLISH was a fifth of the CPU).
	copts.CoalesceWrites = math.IsInf(o.speed, 1)
	if !copts.Broker.IsLoopback() && !o.yes {
		n, err := capture.Count(ctx, o.query)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("%s messages from %s", groupDigits(n*int64(max(o.loop, 1))), o.file)
		if err := confirmRemote(ctx, copts.Broker, what, isTerminalReader(cio.stdin), cio.stdin, cio.stderr); err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	client, err := mqttclient.Connect(ctx, copts, mqtt.Handlers{Lost: func(err error) {
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

	interactive := cio.stderrTTY && !o.quiet
	var plan *replay.Plan
	if interactive {
		if pl, err := p.Plan(ctx); err == nil {
			plan = &pl
		}
		fmt.Fprintf(cio.stderr, "playing %s → %s; keys: space pause/resume, → step, +/- speed, Ctrl-C stop\n",
			o.file, copts.Broker)
	}
	restoreTerm := func() {}
	if interactive {
		restoreTerm = startKeys(cio.stdin, p, func() { stop(errInterrupted) })
	}
	stopStatus := newStatusLine(cio, o.quiet).start(func() string { return playStatus(p.Progress(), plan, o.loop) })
	rep, runErr := p.Run(runCtx)
	restoreTerm()
	stopStatus()

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
	if !o.quiet {
		printPlayReport(cio.stderr, o, copts.Broker.String(), rep)
	}
	if o.json {
		if err := writeJSON(cio.stdout, reportJSON(o, copts.Broker.String(), rep, runErr)); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr == nil && rep.AckFailures+rep.Unacked > 0 {
		runErr = fmt.Errorf("%d of %d publishes failed or were not acknowledged (first error: %v)",
			rep.AckFailures+rep.Unacked, rep.Published, rep.AckError)
	}
	return runErr
}

// confirmRemote asks on the terminal before replaying into a broker that
// is not on this machine: replaying into production by mistake is the worst
// accident mqtape can cause. Without a terminal to ask on it refuses (exit
// 2); --yes skips the question.
func confirmRemote(ctx context.Context, b mqtt.Broker, what string, tty bool, in io.Reader, out io.Writer) error {
	if !tty {
		return usagef("%s is not a loopback broker: replaying into it needs confirmation, and there is no terminal to ask on; pass --yes to confirm", b)
	}
	fmt.Fprintf(out, "%s is not a loopback broker: publish %s to it? [y/N] ", b, what)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		answer <- strings.ToLower(strings.TrimSpace(line))
	}()
	select {
	case a := <-answer:
		if a == "y" || a == "yes" {
			return nil
		}
		return usagef("not confirmed: nothing was sent to %s (pass --yes to skip the question)", b)
	case <-ctx.Done():
		fmt.Fprintln(out)
		return errInterrupted
	}
}

// checkSelection refuses a --session the capture does not have and topic
// rewrites that would produce an invalid topic name, before connecting.
func checkSelection(ctx context.Context, c *storage.Capture, o *playOptions) error {
	if o.query.Session != 0 {
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return err
		}
		found := false
		for _, s := range sessions {
			found = found || s.ID == o.query.Session
		}
		if !found {
			return usagef("--session %d: %s has %d session(s) (see mqtape info)", o.query.Session, o.file, len(sessions))
		}
	}
	p, err := replay.New(c, noPublisher{}, o.config())
	if err != nil {
		return usageError{err}
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if o.query.Match != nil && !o.query.Match(t.Name) {
			continue
		}
		if _, err := p.Topic(t.Name); err != nil {
			return usageError{err}
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func speedString(s float64) string {
	if math.IsInf(s, 1) {
		return "max"
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

func passesString(loop int) string {
	if loop == 0 {
		return "until Ctrl-C"
	}
	return strconv.Itoa(loop)
}

// PlayPlan is the JSON form of mqtape play --dry-run.
type PlayPlan struct {
	File      string          `json:"file"`
	Speed     string          `json:"speed"`
	Passes    int             `json:"passes"` // 0: until Ctrl-C
	Sessions  []int64         `json:"sessions"`
	Messages  int64           `json:"messages_per_pass"`
	Restored  int64           `json:"retained_restores_per_pass"`
	Bytes     int64           `json:"payload_bytes_per_pass"`
	CaptureS  float64         `json:"capture_s_per_pass"`
	DurationS float64         `json:"duration_s_per_pass"` // at this speed
	First     *PlayPlanMsg    `json:"first,omitempty"`
	Last      *PlayPlanMsg    `json:"last,omitempty"`
	Topics    []PlayPlanTopic `json:"topics"`
}

// PlayPlanMsg is one message of a PlayPlan.
type PlayPlanMsg struct {
	AtS      float64 `json:"at_s"` // at this speed, from the start of the pass
	Seq      int64   `json:"seq"`
	Session  int64   `json:"session"`
	Topic    string  `json:"topic"`
	Original string  `json:"original_topic"`
	QoS      byte    `json:"qos"`
	Retain   bool    `json:"retain"`
	Restore  bool    `json:"restore"`
	Bytes    int     `json:"bytes"`
}

// PlayPlanTopic counts a topic's messages in a PlayPlan.
type PlayPlanTopic struct {
	Topic    string `json:"topic"`
	Original string `json:"original_topic"`
	Count    int64  `json:"count"`
}

func atSpeed(d time.Duration, speed float64) time.Duration {
	if math.IsInf(speed, 1) {
		return 0
	}
	return time.Duration(float64(d) / speed)
}

func planJSON(o playOptions, pl replay.Plan) PlayPlan {
	out := PlayPlan{File: o.file, Speed: speedString(o.speed), Passes: o.loop, Sessions: pl.Sessions, Messages: pl.Messages,
		Restored: pl.Restored, Bytes: pl.Bytes, CaptureS: pl.Duration.Seconds(), DurationS: atSpeed(pl.Duration, o.speed).Seconds(),
		Topics: []PlayPlanTopic{}}
	if out.Sessions == nil {
		out.Sessions = []int64{}
	}
	msg := func(m replay.PlannedMessage) *PlayPlanMsg {
		return &PlayPlanMsg{AtS: atSpeed(m.At, o.speed).Seconds(), Seq: m.Seq, Session: m.Session, Topic: m.Topic,
			Original: m.Original, QoS: m.QoS, Retain: m.Retain, Restore: m.Restore, Bytes: m.Bytes}
	}
	if pl.Messages > 0 {
		out.First, out.Last = msg(pl.First), msg(pl.Last)
	}
	for _, t := range pl.Topics {
		out.Topics = append(out.Topics, PlayPlanTopic{t.Topic, t.Original, t.Count})
	}
	return out
}

func printPlan(w io.Writer, o playOptions, pl replay.Plan) {
	fmt.Fprintf(w, "dry run: nothing is sent\n")
	var ids []string
	for _, s := range pl.Sessions {
		ids = append(ids, strconv.FormatInt(s, 10))
	}
	fmt.Fprintf(w, "capture:   %s, session(s) %s\n", o.file, strings.Join(ids, ", "))
	fmt.Fprintf(w, "messages:  %s per pass (%s retained restores), %s payload, on %d topics\n",
		groupDigits(pl.Messages), groupDigits(pl.Restored), humanBytes(pl.Bytes), len(pl.Topics))
	d := atSpeed(pl.Duration, o.speed)
	total := "until Ctrl-C"
	if o.loop > 0 {
		total = (d * time.Duration(o.loop)).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "duration:  %s per pass at speed %s (%s of capture time), %s pass(es): %s\n",
		d.Round(time.Millisecond), speedString(o.speed), pl.Duration.Round(time.Millisecond), passesString(o.loop), total)
	line := func(label string, m replay.PlannedMessage) {
		var flags []string
		flags = append(flags, fmt.Sprintf("session %d", m.Session), fmt.Sprintf("seq %d", m.Seq), fmt.Sprintf("QoS %d", m.QoS),
			humanBytes(int64(m.Bytes)))
		if m.Retain {
			flags = append(flags, "retain")
		}
		if m.Restore {
			flags = append(flags, "retained restore")
		}
		fmt.Fprintf(w, "%-10s +%-10s %s  (%s)\n", label, atSpeed(m.At, o.speed).Round(time.Microsecond), m.Topic, strings.Join(flags, ", "))
	}
	if pl.Messages == 0 {
		fmt.Fprintln(w, "nothing selected")
		return
	}
	line("first:", pl.First)
	line("last:", pl.Last)
	fmt.Fprintln(w, "topics:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range pl.Topics {
		from := ""
		if t.Original != t.Topic {
			from = "← " + t.Original
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", groupDigits(t.Count), t.Topic, from)
	}
	tw.Flush()
}

// PlayReport is the JSON form of the fidelity report.
type PlayReport struct {
	File        string       `json:"file"`
	Broker      string       `json:"broker"`
	Speed       string       `json:"speed"`
	Passes      int          `json:"passes"`
	Published   int64        `json:"published"`
	Restored    int64        `json:"retained_restores"`
	IntendedS   float64      `json:"intended_s"`
	ActualS     float64      `json:"actual_s"`
	DriftMS     float64      `json:"drift_ms"`
	ElapsedS    float64      `json:"elapsed_s"`
	Lateness    LatenessJSON `json:"lateness_ms"`
	AckFailures int64        `json:"ack_failures"`
	Unacked     int64        `json:"unacknowledged"`
	AckError    string       `json:"ack_error,omitempty"`
	Interrupted bool         `json:"interrupted"`
	Error       string       `json:"error,omitempty"`
}

// LatenessJSON is the lateness of the timed publishes, in milliseconds.
type LatenessJSON struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func reportJSON(o playOptions, broker string, r replay.Report, err error) PlayReport {
	out := PlayReport{File: o.file, Broker: broker, Speed: speedString(r.Speed), Passes: r.Passes, Published: r.Published,
		Restored: r.Restored, IntendedS: r.Intended.Seconds(), ActualS: r.Actual.Seconds(), DriftMS: msf(r.Drift()),
		ElapsedS: r.Elapsed.Seconds(), AckFailures: r.AckFailures, Unacked: r.Unacked, Interrupted: r.Interrupted,
		Lateness: LatenessJSON{r.Lateness.Count, msf(r.Lateness.P50), msf(r.Lateness.P90), msf(r.Lateness.P99), msf(r.Lateness.Max)}}
	if r.AckError != nil {
		out.AckError = r.AckError.Error()
	}
	if err != nil && !errors.Is(err, errInterrupted) {
		out.Error = err.Error()
	}
	return out
}

func fmtMS(d time.Duration) string { return strconv.FormatFloat(msf(d), 'f', 3, 64) + "ms" }

func printPlayReport(w io.Writer, o playOptions, broker string, r replay.Report) {
	verb := "played"
	if r.Interrupted {
		verb = "interrupted after"
	}
	fmt.Fprintf(w, "\n%s %s messages (%s retained restores) to %s in %s, %d pass(es), speed %s\n", verb,
		groupDigits(r.Published), groupDigits(r.Restored), broker, r.Elapsed.Round(time.Millisecond), r.Passes, speedString(r.Speed))
	if !math.IsInf(r.Speed, 1) {
		drift := r.Drift()
		sign := "+"
		if drift < 0 {
			sign = "-"
			drift = -drift
		}
		fmt.Fprintf(w, "timing:    intended %s, actual %s, drift %s%s\n", r.Intended.Round(time.Microsecond),
			r.Actual.Round(time.Microsecond), sign, fmtMS(drift))
		l := r.Lateness
		fmt.Fprintf(w, "lateness:  p50 %s  p90 %s  p99 %s  max %s  (%s timed publishes)\n", fmtMS(l.P50), fmtMS(l.P90),
			fmtMS(l.P99), fmtMS(l.Max), groupDigits(l.Count))
	} else if r.Actual > 0 {
		fmt.Fprintf(w, "rate:      %s msg/s\n", groupDigits(int64(float64(r.Published)/r.Elapsed.Seconds())))
	}
	acks := fmt.Sprintf("acks:      %d failed, %d unacknowledged", r.AckFailures, r.Unacked)
	if r.AckError != nil {
		acks += fmt.Sprintf(" (first error: %v)", r.AckError)
	}
	fmt.Fprintln(w, acks)
}

// playStatus renders the progress bar line.
func playStatus(pr replay.Progress, plan *replay.Plan, loop int) string {
	state := "▶"
	if pr.Paused {
		state = "⏸ PAUSED"
	}
	speed := "×" + speedString(pr.Speed)
	late := "late " + fmtMS(pr.Lateness)
	if plan == nil || loop == 0 {
		return fmt.Sprintf("%s pass %d  %s  %s msgs  %s  %s", state, pr.Pass, fmtElapsed(pr.Position),
			groupDigits(pr.Published), late, speed)
	}
	total := plan.Duration * time.Duration(loop)
	msgs := plan.Messages * int64(loop)
	frac := 0.0
	if total > 0 {
		frac = float64(pr.Position) / float64(total)
	} else if msgs > 0 {
		frac = float64(pr.Published) / float64(msgs)
	}
	frac = min(max(frac, 0), 1)
	const width = 20
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	eta := "--:--"
	if !pr.Paused {
		eta = fmtElapsed(atSpeed(max(total-pr.Position, 0), pr.Speed))
	}
	return fmt.Sprintf("%s %s/%s [%s] %s/%s msgs  %s  %s  ETA %s", state, fmtElapsed(pr.Position), fmtElapsed(total), bar,
		groupDigits(pr.Published), groupDigits(msgs), late, speed, eta)
}

// keyAction is what a key pressed during play asks for.
type keyAction int

const (
	keyTogglePause keyAction = iota + 1
	keyStep
	keyFaster
	keySlower
	keyInterrupt
)

// parseKeys turns raw terminal input into actions.
func parseKeys(b []byte) []keyAction {
	var out []keyAction
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == ' ':
			out = append(out, keyTogglePause)
		case c == '+' || c == '=':
			out = append(out, keyFaster)
		case c == '-' || c == '_':
			out = append(out, keySlower)
		case c == 0x03 || c == 'q':
			out = append(out, keyInterrupt)
		case c == 0x1b && i+2 < len(b) && (b[i+1] == '[' || b[i+1] == 'O'):
			if b[i+2] == 'C' {
				out = append(out, keyStep)
			}
			i += 2
		}
	}
	return out
}

// applyKey carries out one action on the player.
func applyKey(p *replay.Player, a keyAction, interrupt func()) {
	switch a {
	case keyTogglePause:
		p.TogglePause()
	case keyStep:
		p.Step()
	case keyFaster, keySlower:
		s := p.Speed()
		if math.IsInf(s, 1) {
			return
		}
		if a == keyFaster {
			s = min(s*2, 1024)
		} else {
			s = max(s/2, 1.0/1024)
		}
		_ = p.SetSpeed(s)
	case keyInterrupt:
		interrupt()
	}
}

// startKeys reads keys from stdin in raw mode while play runs, when stdin
// is a terminal; the returned function restores the terminal. Raw mode
// turns Ctrl-C into a key, which interrupts like the signal would.
func startKeys(stdin io.Reader, p *replay.Player, interrupt func()) (restore func()) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for _, a := range parseKeys(buf[:n]) {
				applyKey(p, a, interrupt)
			}
		}
	}()
	return func() { _ = term.Restore(fd, old) }
}
