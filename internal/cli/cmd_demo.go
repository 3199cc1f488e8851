package cli

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/demo"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

const demoUsage = `demo [--duration 20s] [-o demo.db]

Start an embedded MQTT broker on a free loopback port and a simulated fleet
of devices (JSON telemetry at different rates, retained status topics with
last wills, a device that drops off and comes back, binary payloads, an
occasional malformed payload), record it with the normal recorder over TCP,
then print the capture's summary and the commands to try next. Needs no
external broker.`

const demoExamples = `  mqtape demo
  mqtape demo --duration 1m -o fleet.db
`

type demoOptions struct {
	duration time.Duration
	output   string
	quiet    bool
}

func parseDemo(args []string, cio *cliIO) (demoOptions, error) {
	var o demoOptions
	fs := newFlagSet("demo", demoUsage, demoExamples, cio)
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the fleet publishes")
	fs.StringVarP(&o.output, "output", "o", "demo.db", "capture file to write (a new session is appended to an existing capture)")
	fs.BoolVar(&o.quiet, "quiet", false, "no live status line")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, usagef("unexpected argument %q", fs.Arg(0))
	case o.duration <= 0 || o.duration > 24*time.Hour:
		return o, usagef("--duration %s: must be between 1ns and 24h", o.duration)
	}
	return o, nil
}

func cmdDemo(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseDemo(args, cio)
	if err != nil {
		return err
	}
	b, err := broker.Start(broker.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	capture, err := storage.OpenWrite(o.output)
	if err != nil {
		return err
	}
	defer capture.Close()

	fleet := &demo.Fleet{Broker: b.URL(), Kick: b.Kick, Seed: 42}
	fmt.Fprintf(cio.stderr, "embedded broker on %s; %d simulated devices connecting\n", b.URL(), fleet.Devices())
	if err := fleet.Connect(ctx); err != nil {
		return err
	}
	defer fleet.Close()

	br, _ := mqtt.ParseBroker(b.URL())
	copts := mqtt.Options{Broker: br, ClientID: fmt.Sprintf("mqtape-demo-%d", os.Getpid()), CleanSession: true,
		ManualAck: true, AutoReconnect: true, ConnectTimeout: 5 * time.Second}
	subscribed := make(chan struct{})
	host, _ := os.Hostname()
	rec := recorder.New(capture, func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		c, err := mqttclient.Connect(ctx, copts, h)
		if err != nil {
			return nil, err
		}
		return &subscribeNotifier{Client: c, done: subscribed}, nil
	}, recorder.Config{Duration: o.duration + 250*time.Millisecond, // the fleet's run, plus time for its last messages
		Session: storage.SessionInfo{Source: "subscriber", Broker: copts.Broker.String(),
			ClientID: copts.ClientID, Protocol: 4, CleanSession: true, Version: version, Host: host}})

	recCtx, stopRec := context.WithCancel(ctx)
	defer stopRec()
	type outcome struct {
		res recorder.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := rec.Run(recCtx)
		done <- outcome{res, err}
	}()
	select {
	case <-subscribed:
	case out := <-done:
		return out.err
	}
	fmt.Fprintf(cio.stderr, "recording '#' into %s for %s; Ctrl-C stops early\n", o.output, o.duration)
	stopStatus := newStatusLine(cio, o.quiet).start(recordStatusLine(rec.Stats))
	_ = fleet.Run(ctx, o.duration)
	out := <-done
	stopStatus()
	if out.err != nil {
		return out.err
	}
	fmt.Fprintf(cio.stderr, "the fleet published %d messages and the broker sent its wills; recorded %d\n\n", fleet.Published(), out.res.Stored)

	r, err := storage.Open(o.output)
	if err != nil {
		return err
	}
	defer r.Close()
	info, err := buildInfo(ctx, r, false)
	if err != nil {
		return err
	}
	printInfo(cio, info, 12)
	printNextSteps(cio, o.output)
	return nil
}

// printNextSteps prints commands to try on the demo capture, spelled the way
// the user ran mqtape (go run ., ./mqtape, mqtape) so they work as printed.
func printNextSteps(cio *cliIO, output string) {
	fmt.Fprintf(cio.text, `
Next, try:
  %[1]s inspect %[2]s
      browse, filter and decode in a terminal UI
  %[1]s export -t 'home/+/thermostat/telemetry' --format csv %[2]s
      the thermostats' telemetry as CSV (JSON lines without --format)
  %[1]s serve -o live.db  (in another terminal), then
  %[1]s play %[2]s --broker mqtt://127.0.0.1:1883 --speed 4
      replay the fleet at 4x into a broker that records it again
  sqlite3 %[2]s "SELECT topic, count(*) FROM messages_view GROUP BY topic"
      the capture is plain SQLite (docs/capture-format.md)
`, cio.program, shellQuote(output))
}

// subscribeNotifier closes done after the first Subscribe returned.
type subscribeNotifier struct {
	mqtt.Client
	done chan struct{}
	once sync.Once
}

func (s *subscribeNotifier) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	g, err := s.Client.Subscribe(ctx, subs)
	s.once.Do(func() { close(s.done) })
	return g, err
}
