package inspector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// Connector connects to a broker for p with MQTT protocol level protocol
// (4: 3.1.1, 5: MQTT 5): it returns the publisher and a function that
// disconnects. cmd_inspect wires mqttclient; tests a fake.
type Connector func(ctx context.Context, broker string, protocol int) (replay.Publisher, func(), error)

// replayQuery turns a filter into the replay's query, starting at seq
// fromSeq.
func replayQuery(f Filter, fromSeq int64) storage.Query {
	q := f.Query(nil)
	q.AfterSeq = max(fromSeq-1, 0)
	return q
}

// openPlay asks for the broker, then for the speed as confirmation, then
// plays the filtered messages from the selected one.
func (u *UI) openPlay() {
	switch {
	case u.opts.Connect == nil:
		u.fail(errors.New("play: not available here"))
		return
	case u.jobCancel != nil:
		u.fail(fmt.Errorf("%s is running (Esc cancels it)", u.job))
		return
	}
	sel := u.selected()
	if sel == nil {
		u.fail(errors.New("play: no message selected"))
		return
	}
	from, n := sel.Seq, u.m.total-u.selectedRow()
	u.say("play the filtered messages from seq %d (%s of them) with their original timing", from, humanize.GroupDigits(n))
	u.ask("play to broker:", u.opts.Broker, func(broker string) error {
		broker = strings.TrimSpace(broker)
		if broker == "" {
			return errors.New("play: no broker")
		}
		b, err := mqtt.ParseBroker(broker)
		if err != nil {
			return err
		}
		askSpeed := func() {
			u.say("Enter plays %s from seq %d to %s; speed 2 is twice as fast, max as fast as possible; Esc cancels",
				humanize.Count(n, "message", "messages"), from, broker)
			u.ask("speed:", "1", func(s string) error {
				// Typed text: spaces and case do not matter (2X, " max").
				speed, err := replay.ParseSpeed(strings.ToLower(strings.TrimSpace(s)))
				if err != nil {
					return err
				}
				u.play(broker, from, speed)
				return nil
			}, func() { u.say("play cancelled") })
		}
		if b.IsLoopback() {
			askSpeed()
			return nil
		}
		// Replaying into production by mistake is the worst accident this
		// tool can cause: a broker on another machine needs a typed yes.
		u.say("%s is not on this machine: type yes to replay into it; Esc cancels", b)
		u.ask("replay into a remote broker?", "", func(s string) error {
			if strings.TrimSpace(strings.ToLower(s)) != "yes" {
				return errors.New("type yes to confirm, or Esc to cancel")
			}
			askSpeed()
			return nil
		}, func() { u.say("play cancelled") })
		return nil
	}, nil)
}

// play connects and replays in the background, showing progress; Esc stops.
func (u *UI) play(broker string, from int64, speed float64) {
	q := replayQuery(u.filter, from)
	connect := u.opts.Connect
	ctx, cancel := context.WithCancel(u.ctx)
	u.job, u.jobCancel = "connecting to "+broker+"…", cancel
	u.status, u.statusErr = "", false // the prompt's instructions are done; the job line says what runs
	u.spawnCtx(ctx, func(ctx context.Context) {
		done := func(msg string, err error) {
			u.post(func() {
				u.job, u.jobCancel = "", nil
				if err != nil {
					u.fail(err)
				} else {
					u.say("%s", msg)
				}
			})
		}
		protocol, err := u.opts.Protocol, error(nil)
		if protocol == 0 { // the version the played messages were recorded with, like mqtape play
			if protocol, err = replay.RecordedProtocol(ctx, u.c, q); err != nil {
				done("", fmt.Errorf("play: %w", err))
				return
			}
		}
		pub, disconnect, err := connect(ctx, broker, protocol)
		if err != nil {
			done("", fmt.Errorf("play: %w", err))
			return
		}
		defer disconnect()
		p, err := replay.New(u.c, pub, replay.Config{Query: q, Speed: speed})
		if err != nil {
			done("", fmt.Errorf("play: %w", err))
			return
		}
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					pr := p.Progress()
					u.post(func() {
						if u.jobCancel != nil {
							u.job = fmt.Sprintf("playing to %s: %s published, at %s (Esc stops)", broker,
								humanize.GroupDigits(pr.Published), fmtSpan(pr.Position))
						}
					})
				}
			}
		}()
		rep, err := p.Run(ctx)
		close(stop)
		switch {
		case rep.Interrupted:
			done(fmt.Sprintf("play stopped: %s published", humanize.GroupDigits(rep.Published)), nil)
		case err != nil:
			done("", fmt.Errorf("play: %w", err))
		case rep.AckFailures+rep.Unacked > 0:
			done("", fmt.Errorf("play: %d of %d publishes failed or were not acknowledged (first error: %v)",
				rep.AckFailures+rep.Unacked, rep.Published, rep.AckError))
		default:
			done(fmt.Sprintf("played %s to %s over %s in %s (drift %s)%s", humanize.Count(rep.Published, "message", "messages"),
				broker, protocolName(protocol), fmtSpan(rep.Elapsed), rep.Drift().Round(time.Microsecond), propsLost(rep)), nil)
		}
	})
}

// protocolName names an MQTT protocol level as users know it.
func protocolName(level int) string {
	if level == 5 {
		return "MQTT 5"
	}
	return "MQTT 3.1.1"
}

// propsLost says how many played messages lost their MQTT 5 properties
// (an MQTT 5 capture played with -V 311), like play's warning.
func propsLost(rep replay.Report) string {
	if rep.PropsDropped == 0 {
		return ""
	}
	return fmt.Sprintf("; %s lost %s MQTT 5 properties (-V 311)", humanize.Count(rep.PropsDropped, "message", "messages"),
		humanize.Plural(rep.PropsDropped, "its", "their"))
}
