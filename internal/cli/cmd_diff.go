package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mqtape/mqtape/diff"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/storage"
)

const diffUsage = `diff [flags] A.db B.db

Compare two captures for regression checks, A being the baseline:

  - topics with live messages only in A or only in B;
  - per topic, count changes beyond --count-tolerance, rate changes beyond
    --rate-tolerance (messages per second over the topic's span, compared
    when both spans are at least 1 s) and mean payload size changes beyond
    --size-tolerance;
  - per topic, the live messages in order: A's and B's are aligned (a lost
    message shows as one missing message, not as every later one changed);
    JSON objects and arrays up to 1 MiB are compared field by field (key
    order and number spelling do not matter; --ignore-field leaves fields
    out), other payloads byte by byte; QoS and retain flags count too;
  - messages that only moved within their topic's order are paired and
    listed as moved: MQTT orders messages per publisher and QoS only, so
    two recordings of the same traffic may interleave differently. They
    are a difference only with --strict-order;
  - the retained state at the end: per topic, the last retained message
    (messages from the broker's retained store at subscribe time, and live
    messages recorded with retain=1 by mqtape serve, imports or MQTT 5).

Packet ids, dup flags, absolute times and the session layout are not
compared, so two recordings of the same deterministic traffic are equal.

A capture and the recording of its replay are equal too: mqtape play
publishes the retained state first (retain=1), so the recording of the
replay sees it as the first live message on those topics. When one side
has a retained-store message on a topic and the other has none, the other
side's first live message there counts as its retained state at the start
when it has the same payload and that side has exactly one live message
more on the topic.

--ignore-field PATH: dot-separated keys with [N] indexes, e.g. ts, meta.seq,
readings[0].t; * matches any one key or index, ** any depth (**.ts: every
"ts"); repeatable.

Payloads that a binary or compressed decoder reads (Sparkplug B, protobuf,
CBOR, MessagePack, gzip+…; see --decode and mqtape export --help) are
compared as their decoded values, field by field, --ignore-field applying
(e.g. '**.timestamp' for Sparkplug); --no-decode compares their bytes.

Exit codes (diff's own): 0 equal within the tolerances, 1 different,
2 error (bad flag, bad --decode, ...), 4 a file that is missing, not a
capture, damaged or of a newer format (as for every verb), 130 interrupted.

A or B may be a directory or a quoted glob: the parts of a split recording
read as one capture.`

const diffExamples = `  mqtape diff before.db after.db
  mqtape diff --ignore-field ts --ignore-field '**.seq' golden.db run.db
  mqtape diff -t 'plant/#' --count-tolerance 2 --rate-tolerance 20% a.db b.db
  mqtape diff --ignore-timing --json a.db b.db | jq '.topics[] | select(.significant)'
  mqtape diff --strict-order golden.db run.db                       # the order within each topic counts too
  mqtape diff --ignore-field '**.timestamp' sparkplug-before.db sparkplug-after.db
  mqtape diff --decode 'acme/#=protobuf:acme.v1.Reading' --proto reading.proto a.db b.db
`

type diffOptions struct {
	sel            selectFlags
	rateTolerance  string
	sizeTolerance  string
	countTolerance int64
	ignoreTiming   bool
	ignoreFields   []string
	maxDetails     int
	json           bool
	a, b           string
	opts           diff.Options
	decoders       decodeFlags
	noDecode       bool
}

func parseDiff(args []string, cio *cliIO) (diffOptions, error) {
	var o diffOptions
	fs := newFlagSet("diff", diffUsage, diffExamples, cio)
	o.sel.register(fs, true)
	fs.StringVar(&o.rateTolerance, "rate-tolerance", "10%", "per-topic rate change tolerated (10% or 0.1)")
	fs.Int64Var(&o.countTolerance, "count-tolerance", 0, "messages per topic that may be missing or extra")
	fs.StringVar(&o.sizeTolerance, "size-tolerance", "10%", "per-topic mean payload size change tolerated")
	fs.BoolVar(&o.ignoreTiming, "ignore-timing", false, "do not compare rates")
	fs.BoolVar(&o.opts.StrictOrder, "strict-order", false, "messages in another order within a topic are a difference")
	fs.StringArrayVar(&o.ignoreFields, "ignore-field", nil, "JSON field to leave out of payload comparisons (repeatable)")
	fs.IntVar(&o.maxDetails, "max-details", diff.DefaultMaxDetails, "message differences listed per topic (counts are complete)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	o.decoders.register(fs)
	fs.BoolVar(&o.noDecode, "no-decode", false, "compare payload bytes, not decoded values")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if fs.NArg() != 2 {
		return o, usagef("expected two captures, got %d arguments", fs.NArg())
	}
	if o.noDecode && o.decoders.given() {
		return o, usagef("--no-decode with --decode or --proto: choose one")
	}
	o.a, o.b = fs.Arg(0), fs.Arg(1)
	var err error
	if o.opts.RateTolerance, err = parseTolerance("--rate-tolerance", o.rateTolerance); err != nil {
		return o, err
	}
	if o.opts.SizeTolerance, err = parseTolerance("--size-tolerance", o.sizeTolerance); err != nil {
		return o, err
	}
	if o.countTolerance < 0 {
		return o, usagef("--count-tolerance %d: must not be negative", o.countTolerance)
	}
	if o.maxDetails < 0 {
		return o, usagef("--max-details %d: must not be negative", o.maxDetails)
	}
	o.opts.CountTolerance, o.opts.IgnoreTiming, o.opts.MaxDetails = o.countTolerance, o.ignoreTiming, o.maxDetails
	if o.maxDetails == 0 {
		o.opts.MaxDetails = -1
	}
	for _, f := range o.ignoreFields {
		p, err := diff.ParsePath(f)
		if err != nil {
			return o, usagef("--ignore-field: %v", err)
		}
		o.opts.IgnoreFields = append(o.opts.IgnoreFields, p)
	}
	if o.opts.Query, err = o.sel.query(); err != nil {
		return o, err
	}
	return o, nil
}

// source reads c decoded (with the flags' decoders, then the ones c
// carries), or as recorded with --no-decode.
func (o *diffOptions) source(ctx context.Context, c *storage.Capture, cio *cliIO) (diff.Source, error) {
	if o.noDecode {
		return c, nil
	}
	reg, err := o.decoders.registry(ctx)
	if err != nil {
		return nil, err
	}
	if reg, err = withCapture(ctx, reg, c, cio.stderr); err != nil {
		return nil, err
	}
	return export.DecodedSource{Capture: c, Registry: reg}, nil
}

// parseTolerance reads "10%" or "0.1". Zero means exact (stored as a tiny
// positive value: 0 in diff.Options selects the default).
func parseTolerance(flag, s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil || v < 0 || v != v {
		return 0, usagef("%s %q: use a percentage such as 10%% or a fraction such as 0.1", flag, s)
	}
	if pct {
		v /= 100
	}
	if v == 0 {
		v = 1e-12
	}
	return v, nil
}

// errDifferent makes diff exit 1.
var errDifferent = errors.New("the captures differ")

func cmdDiff(ctx context.Context, args []string, cio *cliIO) error {
	err := runDiff(ctx, args, cio)
	switch {
	case err == nil, errors.Is(err, errDifferent):
		return err // exit 0, or 1 via exitError
	case ctx.Err() != nil:
		return errInterrupted
	case errors.Is(err, pflag.ErrHelp):
		return err
	}
	// diff's errors exit 2 (like cmp and diff), except a file that is not a
	// sound capture: 4, as for every verb. Both are above 1, "different".
	var ue usageError
	if errors.As(err, &ue) || exitCode(err) == exitCapture {
		return err
	}
	return usageError{err}
}

func runDiff(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseDiff(args, cio)
	if err != nil {
		return err
	}
	var srcs [2]diff.Source
	for i, path := range []string{o.a, o.b} {
		c, err := openInputs(ctx, cio, []string{path}, true)
		if err != nil {
			return err
		}
		defer c.Close()
		if srcs[i], err = o.source(ctx, c, cio); err != nil {
			return err
		}
	}
	r, err := diff.Compare(ctx, srcs[0], o.a, srcs[1], o.b, o.opts)
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(cio.stdout, r); err != nil {
			return err
		}
	} else if err := r.WriteText(cio.text); err != nil {
		return err
	}
	if !r.Equal {
		return fmt.Errorf("%w: %s", errDifferent, strings.TrimPrefix(r.Verdict(), "different: "))
	}
	return nil
}
