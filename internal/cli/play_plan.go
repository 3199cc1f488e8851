package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// PlayPlan is the JSON form of mqtape play --dry-run.
type PlayPlan struct {
	File      string          `json:"file"`
	Speed     string          `json:"speed"`
	Passes    int             `json:"passes"` // 0: until Ctrl-C
	Sessions  []int64         `json:"sessions"`
	Messages  int64           `json:"messages_per_pass"`
	Restored  int64           `json:"retained_restores_per_pass"`
	Bytes     int64           `json:"payload_bytes_per_pass"`
	WithProps int64           `json:"with_properties_per_pass"` // messages with MQTT 5 properties
	Protocol  string          `json:"protocol_version"`         // what play connects with: 311 or 5
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

// runPlayDryRun prints what play would send (--dry-run, as JSON with
// --json) without connecting to the broker.
func runPlayDryRun(ctx context.Context, capture *storage.Capture, o playOptions, cio *cliIO) error {
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
	printPlan(cio.text, o, plan)
	return nil
}

func planJSON(o playOptions, pl replay.Plan) PlayPlan {
	out := PlayPlan{File: o.file, Speed: speedString(o.speed), Passes: o.loop, Sessions: pl.Sessions, Messages: pl.Messages,
		Restored: pl.Restored, Bytes: pl.Bytes, WithProps: pl.WithProps, Protocol: o.conn.protocol, CaptureS: pl.Duration.Seconds(), DurationS: atSpeed(pl.Duration, o.speed).Seconds(),
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
	fmt.Fprintf(w, "capture:   %s, %s %s\n", termsafe.String(o.file), humanize.Plural(int64(len(ids)), "session", "sessions"), strings.Join(ids, ", "))
	fmt.Fprintf(w, "messages:  %s per pass (%s), %s payload, on %s\n",
		humanize.GroupDigits(pl.Messages), humanize.Count(pl.Restored, "retained restore", "retained restores"), humanBytes(pl.Bytes),
		humanize.Count(int64(len(pl.Topics)), "topic", "topics"))
	if pl.WithProps > 0 {
		kept := "sent"
		if o.conn.protocol != "5" {
			kept = "dropped: MQTT 3.1.1"
		}
		fmt.Fprintf(w, "protocol:  MQTT %s; %s with MQTT 5 properties (%s)\n", o.conn.protocol,
			humanize.Count(pl.WithProps, "message", "messages"), kept)
	}
	d := atSpeed(pl.Duration, o.speed)
	total := "until Ctrl-C"
	if o.loop > 0 {
		total = (d * time.Duration(o.loop)).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "duration:  %s per pass at speed %s (%s of capture time), %s: %s\n",
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
		fmt.Fprintf(w, "%-10s +%-10s %s  (%s)\n", label, atSpeed(m.At, o.speed).Round(time.Microsecond),
			termsafe.Cell(m.Topic, topicColumn), strings.Join(flags, ", "))
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
			from = "← " + termsafe.Cell(t.Original, topicColumn)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", humanize.GroupDigits(t.Count), termsafe.Cell(t.Topic, topicColumn), from)
	}
	tw.Flush()
}

func passesString(loop int) string {
	if loop == 0 {
		return "passes until Ctrl-C"
	}
	return humanize.Count(int64(loop), "pass", "passes")
}
