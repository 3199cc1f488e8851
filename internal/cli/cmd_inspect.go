package cli

import (
	"context"
	"errors"
	"time"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/inspector"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
)

const inspectUsage = `inspect [flags] FILE...

Browse, filter and decode a capture in a terminal UI. Opens captures of
millions of messages instantly: the message table reads pages of rows on
demand and never loads the capture into memory. A capture that is still
being recorded grows on screen (f follows the newest message).

Keys (? in the UI lists them all):
  arrows PgUp PgDn Home End g G   move through the messages
  /   filter: plant/+/temp  status/#  payload~REGEX  TEXT  qos>=1  retained  1m..2m
  :   jump to an offset (1m30s), a clock time (10:05:30), +30s, or a seq (#123)
  t   topic tree with counts (Enter filters to a subtree)
  v   payload view (decoded, JSON, text, hex)   d   diff to the previous message on the topic
  s   statistics and charts              r   clock times or offsets
  e   export the filter to JSON lines    w   write the selected payload to a file
  p   play the filter from the selected message to a broker (the --broker flags)
  q   quit

The broker flags are used only by p. Like mqtape play, p connects with the
MQTT version the capture was recorded with (an MQTT 5 capture replays with
its messages' properties) unless -V says otherwise.

The detail pane shows a payload that a binary or compressed decoder reads
(Sparkplug B with metric names from the births, protobuf, CBOR, MessagePack,
gzip+…) as its decoded tree; v cycles to the recorded JSON, text and hex.
The table's payload column shows the decoded value on one line
(Temperature=21.75 Running=true Count=3), the / line's .PATH and metric:
terms match decoded values, and the s page plots their numeric fields
(Sparkplug metrics by name).

Several captures — files, a directory (its *.db files) or a quoted glob such as
'run-*.db' — are read as one capture in time order: the parts of a split
recording (record --split-size) count every message once. Those parts are read
where they are, so hundreds of them open as fast as one file, and a last part
still being recorded is followed like a live capture.

` + decodeFlagsHelp

const inspectExamples = `  mqtape inspect capture.db
  mqtape inspect --filter 'plant/+/temp qos>=1' capture.db
  mqtape inspect --filter 'spBv1.0/# metric:Temperature>30' sparkplug.db
  mqtape inspect --decode 'sensors/#=cbor' --filter '.celsius>25' capture.db
  mqtape inspect --utc --follow live.db                  # while mqtape record writes live.db
  mqtape inspect parts/                                  # the parts of record --split-every 1h -o parts/run.db
  mqtape inspect -b mqtts://broker.example:8883 -u me capture.db   # p plays to this broker
  mqtape inspect --decode 'acme/#=protobuf:acme.v1.Reading' --proto reading.proto capture.db
`

type inspectOptions struct {
	inputs  []string // the captures read as one (openInputs)
	conn    connFlags
	filter  string
	utc     bool
	follow  bool
	noMouse bool
	poll    time.Duration
	file    string
	decode  decodeFlags
}

func parseInspect(args []string, cio *cliIO) (inspectOptions, error) {
	var o inspectOptions
	fs := newFlagSet("inspect", inspectUsage, inspectExamples, cio)
	fs.StringVar(&o.filter, "filter", "", "start with this filter (the / line's query language)")
	fs.BoolVar(&o.utc, "utc", false, "show and read clock times in UTC (default: local time)")
	fs.BoolVar(&o.follow, "follow", false, "start in follow mode: keep the newest message selected")
	fs.BoolVar(&o.noMouse, "no-mouse", false, "leave the mouse to the terminal (for selecting text)")
	fs.DurationVar(&o.poll, "poll", time.Second, "how often to look for new messages in a capture being recorded (0: never)")
	o.conn.asRecorded = true
	o.conn.register(fs)
	o.decode.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.poll < 0 {
		return o, usagef("--poll %s: must not be negative", o.poll)
	}
	var err error
	o.inputs, o.file, err = captureArgs(fs)
	return o, err
}

func cmdInspect(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseInspect(args, cio)
	if err != nil {
		return err
	}
	// Broker settings are checked now, so a mistake is reported before the
	// UI starts rather than when p is pressed.
	copts, err := o.conn.options(cio, "mqtape-inspect")
	if err != nil {
		return err
	}
	reg, err := o.decode.registry(ctx)
	if err != nil {
		return err
	}
	c, err := openInputs(ctx, cio, o.inputs, true)
	if err != nil {
		return err
	}
	defer c.Close()
	if reg, err = withCapture(ctx, reg, c, cio.stderr); err != nil {
		return err
	}
	res := export.NewResolver(c, reg)
	protocol, _ := o.conn.version() // checked by options; 0: as recorded
	opts := inspector.Options{Filter: o.filter, Follow: o.follow, Mouse: !o.noMouse, Poll: o.poll,
		Broker: copts.Broker.String(), Connect: connector(copts), Protocol: protocol, Decode: res.Decode, MayDecode: res.MayDecode}
	if o.poll == 0 {
		opts.Poll = -1
	}
	if o.utc {
		opts.Location = time.UTC
	}
	err = inspector.Start(ctx, c, opts)
	if errors.Is(err, filter.ErrFilter) {
		return usagef("--filter: %v", err)
	}
	return err
}

// connector connects p's publisher with the flags' options, the broker URL
// typed in the UI and the protocol level the inspector chose.
func connector(base mqtt.Options) inspector.Connector {
	return func(ctx context.Context, broker string, protocol int) (replay.Publisher, func(), error) {
		b, err := mqtt.ParseBroker(broker)
		if err != nil {
			return nil, nil, err
		}
		o := base
		o.Broker, o.ProtocolVersion = b, protocol
		client, err := connect(ctx, o, mqtt.Handlers{})
		if err != nil {
			return nil, nil, err
		}
		return client, func() { client.Disconnect(250 * time.Millisecond) }, nil
	}
}
