package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
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
	var reg *decode.Registry
	if o.decode.given() {
		var err error
		if reg, err = o.decode.registry(ctx); err != nil {
			return err
		}
		if reg, err = withCapture(ctx, reg, capture, cio.stderr); err != nil {
			return err
		}
	}
	p, err := replay.New(capture, noPublisher{}, o.config())
	if err != nil {
		return err
	}
	plan, err := p.Plan(ctx)
	if err != nil {
		return err
	}
	if reg != nil && plan.Messages > 0 {
		return listPlan(ctx, p, reg, o, plan, cio)
	}
	if o.json {
		return writeJSON(cio.stdout, planJSON(o, plan))
	}
	printPlan(cio.text, o, plan)
	return nil
}

// PlayPlanListed is one message of a dry run's list (--decode): what
// play would publish, with its payload's decoded value as export
// writes it (decoded and decode_error; payload when it is text).
type PlayPlanListed struct {
	PlayPlanMsg
	Birth       bool            `json:"birth,omitempty"` // a Sparkplug birth in force at --from, published first
	Payload     *string         `json:"payload,omitempty"`
	Decoded     json.RawMessage `json:"decoded,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

// listPlan prints the plan and then every message one pass sends, its
// payload decoded in the order it would be published (so Sparkplug
// aliases resolve from the births published before them). With --json the
// messages are the plan's "messages", streamed after its other fields.
func listPlan(ctx context.Context, p *replay.Player, reg *decode.Registry, o playOptions, plan replay.Plan, cio *cliIO) error {
	var head bytes.Buffer
	var out *termsafe.Writer
	var bw *bufio.Writer
	if o.json {
		if err := writeJSON(&head, planJSON(o, plan)); err != nil {
			return err
		}
		out = termsafe.NewJSONWriter(cio.stdout)
		bw = bufio.NewWriter(out)
		bw.Write(bytes.TrimSuffix(head.Bytes(), []byte("\n}\n")))
		bw.WriteString(",\n  \"messages\": [")
	} else {
		printPlan(cio.text, o, plan)
		bw = bufio.NewWriter(cio.text)
		bw.WriteString("messages:\n")
	}
	dec := reg.NewDecoder()
	first := true
	_, err := p.PlanEach(ctx, func(pm replay.PlannedMessage, m *storage.Message) error {
		l := PlayPlanListed{PlayPlanMsg: planMsg(pm, o.speed)}
		l.Birth = pm.Birth
		res := dec.Decode(m.Topic, m.Props, m.Payload)
		var r export.Record
		r.AddDecoded(res)
		l.Decoded, l.DecodeError = r.Decoded, r.DecodeError
		if l.Decoded == nil && utf8.Valid(m.Payload) {
			s := string(m.Payload)
			l.Payload = &s
		}
		if !o.json {
			_, err := fmt.Fprintf(bw, "  +%-10s %s  %s\n", atSpeed(pm.At, o.speed).Round(time.Microsecond),
				termsafe.Cell(pm.Topic, topicColumn), termsafe.Cell(listedValue(l, len(m.Payload)), 200))
			return err
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString("\n    ")
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if o.json {
		bw.WriteString("\n  ]\n}\n")
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if out != nil {
		return out.Flush()
	}
	return nil
}

// listedValue is a listed message's payload on one line: its decoded
// value's summary, the decoder's error, its text or its size.
func listedValue(l PlayPlanListed, size int) string {
	switch {
	case l.Decoded != nil:
		return decode.Summary(l.Decoded, 0)
	case l.DecodeError != "":
		return "decode_error: " + l.DecodeError
	case l.Payload != nil:
		return *l.Payload
	}
	return fmt.Sprintf("⟨%s binary, not decoded⟩", humanBytes(int64(size)))
}

func planJSON(o playOptions, pl replay.Plan) PlayPlan {
	out := PlayPlan{File: o.file, Speed: speedString(o.speed), Passes: o.loop, Sessions: pl.Sessions, Messages: pl.Messages,
		Restored: pl.Restored, Bytes: pl.Bytes, WithProps: pl.WithProps, Protocol: o.conn.protocol, CaptureS: pl.Duration.Seconds(), DurationS: atSpeed(pl.Duration, o.speed).Seconds(),
		Topics: []PlayPlanTopic{}}
	if out.Sessions == nil {
		out.Sessions = []int64{}
	}
	msg := func(m replay.PlannedMessage) *PlayPlanMsg {
		pm := planMsg(m, o.speed)
		return &pm
	}
	if pl.Messages > 0 {
		out.First, out.Last = msg(pl.First), msg(pl.Last)
	}
	for _, t := range pl.Topics {
		out.Topics = append(out.Topics, PlayPlanTopic{t.Topic, t.Original, t.Count})
	}
	return out
}

func planMsg(m replay.PlannedMessage, speed float64) PlayPlanMsg {
	return PlayPlanMsg{AtS: atSpeed(m.At, speed).Seconds(), Seq: m.Seq, Session: m.Session, Topic: m.Topic,
		Original: m.Original, QoS: m.QoS, Retain: m.Retain, Restore: m.Restore, Bytes: m.Bytes}
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
