package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
)

const infoUsage = `info [--json] [--events] FILE...

Summarise a capture: format version, recording sessions, totals, per-topic
statistics and events (disconnects, denied subscriptions, drops): how many
of each kind and the last 20; --events lists them all.

"retained" counts messages with the retain flag. Captures from mqtape serve
and MQTT 5 recordings (retain-as-published) see the publisher's flag, so
live retained publishes count. In MQTT 3.1.1 a subscriber sees retain=1 only
on messages the broker sends from its retained store when the subscription
is made; "from store" counts those.

Control characters in data show visibly (\x1b, ⟨U+202E⟩); tables show at
most 80 characters of a topic, --json every name whole.

Several captures — files, a directory (its *.db files) or a quoted glob such as
'run-*.db' — are read as one capture in time order: the parts of a split
recording (record --split-size) count every message once.`

const infoExamples = `  mqtape info capture.db
  mqtape info --events capture.db | grep auth_failed
  mqtape info --json capture.db | jq '.topics[] | select(.count > 100) | .topic'
  mqtape info --json capture.db | jq .event_counts
`

// infoLastEvents is how many of the newest events info lists without --events.
const infoLastEvents = 20

type infoOptions struct {
	inputs []string // the captures read as one (openInputs)
	json   bool
	events bool
	file   string
}

func parseInfo(args []string, cio *cliIO) (infoOptions, error) {
	var o infoOptions
	fs := newFlagSet("info", infoUsage, infoExamples, cio)
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	fs.BoolVar(&o.events, "events", false, fmt.Sprintf("list every event (default: counts per kind and the last %d)", infoLastEvents))
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	o.inputs, o.file, err = captureArgs(fs)
	return o, err
}

// Info is the JSON form of mqtape info.
type Info struct {
	File          string        `json:"file"`
	FormatVersion int           `json:"format_version"`
	FileBytes     int64         `json:"file_bytes"`
	Sessions      []infoSession `json:"sessions"`
	Totals        infoTotals    `json:"totals"`
	Topics        []infoTopic   `json:"topics"`
	// EventCounts counts every event per kind; Events holds the last
	// infoLastEvents of EventsTotal, or all of them with --events.
	EventCounts map[string]int64 `json:"event_counts"`
	EventsTotal int64            `json:"events_total"`
	Events      []infoEvent      `json:"events"`
}

type infoSession struct {
	ID           int64            `json:"id"`
	Source       string           `json:"source"`
	Broker       string           `json:"broker"`
	ClientID     string           `json:"client_id"`
	Protocol     string           `json:"protocol"`
	CleanSession bool             `json:"clean_session"`
	Filters      []storage.Filter `json:"filters"`
	Start        time.Time        `json:"start"`
	End          time.Time        `json:"end"`
	DurationS    float64          `json:"duration_s"`
	StopReason   string           `json:"stop_reason"`
	Closed       bool             `json:"closed"`
	Dropped      int64            `json:"dropped"`
	Version      string           `json:"mqtape_version"`
	Host         string           `json:"host"`
}

type infoTotals struct {
	Messages     int64 `json:"messages"`
	PayloadBytes int64 `json:"payload_bytes"`
	// StoredBytes is what the payloads take in the file (less than
	// PayloadBytes when compressed); CompressionRatio is stored/payload
	// bytes, present when some payloads are stored compressed.
	StoredBytes      int64     `json:"stored_bytes"`
	CompressionRatio float64   `json:"compression_ratio,omitempty"`
	Topics           int       `json:"topics"`
	First            time.Time `json:"first,omitzero"`
	Last             time.Time `json:"last,omitzero"`
	DurationS        float64   `json:"duration_s"`
	PeakRate         int64     `json:"peak_rate"`
	Retained         int64     `json:"retained"`
	FromStore        int64     `json:"from_store"`
	Dropped          int64     `json:"dropped"`
}

type infoTopic struct {
	Topic     string    `json:"topic"`
	Count     int64     `json:"count"`
	Bytes     int64     `json:"bytes"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	AvgRate   float64   `json:"avg_rate"`
	PeakRate  int64     `json:"peak_rate"`
	Retained  int64     `json:"retained"`
	FromStore int64     `json:"from_store"`
	QoS       [3]int64  `json:"qos"`
}

type infoEvent struct {
	Session int64     `json:"session"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Detail  string    `json:"detail"`
}

func cmdInfo(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseInfo(args, cio)
	if err != nil {
		return err
	}
	c, err := openInputs(ctx, cio, o.inputs, true)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := buildInfo(ctx, c, o.events)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(cio.stdout, info)
	}
	printInfo(cio, info, 0)
	return nil
}

// buildInfo summarises the capture; allEvents keeps every event, not only
// the last infoLastEvents.
func buildInfo(ctx context.Context, c *storage.Capture, allEvents bool) (Info, error) {
	info := Info{File: c.Path(), FormatVersion: c.Version(), Sessions: []infoSession{}, Topics: []infoTopic{},
		EventCounts: map[string]int64{}, Events: []infoEvent{}}
	for _, f := range c.Files() { // a set read as one: all its files
		if fi, err := os.Stat(f); err == nil {
			info.FileBytes += fi.Size()
		}
	}
	sessions, err := c.Sessions(ctx)
	if err != nil {
		return info, err
	}
	var recorded time.Duration
	for _, s := range sessions {
		start, end := time.Unix(0, s.StartedNS).UTC(), time.Unix(0, s.EndNS()).UTC()
		reason := s.StopReason
		if !s.Closed() {
			reason = "not closed (still recording, or the recorder was killed)"
		}
		proto := "3.1.1"
		if s.Protocol == 5 {
			proto = "5"
		}
		info.Sessions = append(info.Sessions, infoSession{ID: s.ID, Source: s.Source, Broker: s.Broker, ClientID: s.ClientID,
			Protocol: proto, CleanSession: s.CleanSession, Filters: s.Filters, Start: start, End: end,
			DurationS: end.Sub(start).Seconds(), StopReason: reason, Closed: s.Closed(), Dropped: s.Dropped,
			Version: s.Version, Host: s.Host})
		recorded += end.Sub(start)
		info.Totals.Dropped += s.Dropped
	}
	tot, topics, err := c.Stats(ctx)
	if err != nil {
		return info, err
	}
	info.Totals.Messages, info.Totals.PayloadBytes, info.Totals.Topics = tot.Messages, tot.Bytes, tot.Topics
	info.Totals.PeakRate, info.Totals.DurationS = tot.PeakRate, recorded.Seconds()
	info.Totals.StoredBytes = tot.Stored
	if tot.Stored != tot.Bytes && tot.Bytes > 0 {
		info.Totals.CompressionRatio = float64(tot.Stored) / float64(tot.Bytes)
	}
	if tot.Messages > 0 {
		info.Totals.First, info.Totals.Last = time.Unix(0, tot.FirstNS).UTC(), time.Unix(0, tot.LastNS).UTC()
	}
	for _, t := range topics {
		info.Totals.Retained += t.Retained
		info.Totals.FromStore += t.FromStore
		info.Topics = append(info.Topics, infoTopic{Topic: t.Topic, Count: t.Count, Bytes: t.Bytes,
			First: time.Unix(0, t.FirstNS).UTC(), Last: time.Unix(0, t.LastNS).UTC(), AvgRate: tot.AvgRate(t.Count),
			PeakRate: t.PeakRate, Retained: t.Retained, FromStore: t.FromStore, QoS: t.QoS})
	}
	events, err := c.Events(ctx, 0)
	if err != nil {
		return info, err
	}
	info.EventsTotal = int64(len(events))
	for _, e := range events {
		info.EventCounts[e.Kind]++
	}
	if !allEvents && len(events) > infoLastEvents {
		events = events[len(events)-infoLastEvents:]
	}
	for _, e := range events {
		info.Events = append(info.Events, infoEvent{Session: e.Session, Time: time.Unix(0, e.TimeNS).UTC(), Kind: e.Kind, Detail: e.Detail})
	}
	return info, nil
}

const clock = "2006-01-02 15:04:05.000"

// topicColumn is how many characters of a topic a table shows (the
// --json forms carry it whole): one long topic must not widen every row.
const topicColumn = 80

// printInfo prints the human summary; maxTopics > 0 shows only the busiest
// topics.
func printInfo(cio *cliIO, in Info, maxTopics int) {
	w := cio.text
	fmt.Fprintf(w, "file:      %s (capture format v%d, %s)\n", termsafe.String(in.File), in.FormatVersion, humanBytes(in.FileBytes))
	fmt.Fprintf(w, "sessions:  %d\n", len(in.Sessions))
	for _, s := range in.Sessions {
		var filters []string
		for _, f := range s.Filters {
			g := fmt.Sprintf("%s (QoS %d", termsafe.Cell(f.Filter, topicColumn), f.QoS)
			switch f.Granted {
			case 0x80:
				g += ", DENIED)"
			case -1:
				g += ", not subscribed)"
			default:
				g += fmt.Sprintf(", granted %d)", f.Granted)
			}
			filters = append(filters, g)
		}
		fmt.Fprintf(w, "  #%d %s  %s  MQTT %s  client %q  clean=%v\n", s.ID, termsafe.String(s.Source), termsafe.String(s.Broker),
			s.Protocol, termsafe.String(s.ClientID), s.CleanSession)
		fmt.Fprintf(w, "     %s → %s UTC (%s)  stop: %s\n", s.Start.Format(clock), s.End.Format(clock),
			time.Duration(s.DurationS*1e9).Round(time.Millisecond), termsafe.String(s.StopReason))
		if len(filters) > 0 {
			fmt.Fprintf(w, "     filters: %s\n", strings.Join(filters, ", "))
		}
		fmt.Fprintf(w, "     mqtape %s on %s\n", termsafe.String(s.Version), termsafe.String(s.Host))
		if s.Dropped > 0 {
			fmt.Fprintf(w, "     DROPPED: %s received but not stored\n", humanize.Count(s.Dropped, "message", "messages"))
		}
	}
	t := in.Totals
	fmt.Fprintf(w, "messages:  %s (%s payload) on %s", humanize.GroupDigits(t.Messages), humanBytes(t.PayloadBytes),
		humanize.Count(int64(t.Topics), "topic", "topics"))
	if t.Messages > 0 {
		fmt.Fprintf(w, ", %s → %s UTC, peak %s msg/s", t.First.Format(clock), t.Last.Format(clock), humanize.GroupDigits(t.PeakRate))
	}
	fmt.Fprintln(w)
	if t.CompressionRatio > 0 {
		fmt.Fprintf(w, "stored:    %s: payloads zstd-compressed to %.1f%% of their size\n", humanBytes(t.StoredBytes), 100*t.CompressionRatio)
	}
	fmt.Fprintf(w, "retained:  %d with the retain flag (%d from the broker's retained store at subscribe time)\n", t.Retained, t.FromStore)
	topics := in.Topics
	if maxTopics > 0 && len(topics) > maxTopics {
		topics = slices.Clone(topics)
		slices.SortStableFunc(topics, func(a, b infoTopic) int { return cmp.Compare(b.Count, a.Count) })
		topics = topics[:maxTopics]
	}
	if len(topics) > 0 {
		fmt.Fprintln(w, "topics:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "COUNT\tBYTES\tAVG/s\tPEAK/s\tRETAINED\tQoS 0/1/2\tFIRST\tLAST\t  TOPIC\t")
		for _, tp := range topics {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%d\t%d\t%d/%d/%d\t%s\t%s\t  %s\t\n", humanize.GroupDigits(tp.Count), humanBytes(tp.Bytes),
				tp.AvgRate, tp.PeakRate, tp.Retained, tp.QoS[0], tp.QoS[1], tp.QoS[2],
				tp.First.Format("15:04:05.000"), tp.Last.Format("15:04:05.000"), termsafe.Cell(tp.Topic, topicColumn))
		}
		tw.Flush()
		if n := len(in.Topics) - len(topics); n > 0 {
			fmt.Fprintf(w, "  (%d more topics: %s info %s)\n", n, cio.program, termsafe.String(shellQuote(in.File)))
		}
	}
	printInfoEvents(w, cio.program, in)
}

// eventWidth is how many characters of an event's detail info prints (a
// detail holds whatever a client sent, e.g. a 10 MB topic); --json has it
// whole.
const eventWidth = 240

// printInfoEvents prints the event counts per kind (busiest first) and the
// events Info holds.
func printInfoEvents(w io.Writer, program string, in Info) {
	if in.EventsTotal == 0 {
		return
	}
	kinds := make([]string, 0, len(in.EventCounts))
	for k := range in.EventCounts {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(in.EventCounts[b], in.EventCounts[a]), cmp.Compare(a, b))
	})
	var counts []string
	for _, k := range kinds {
		counts = append(counts, fmt.Sprintf("%s %s", termsafe.String(k), humanize.GroupDigits(in.EventCounts[k])))
	}
	fmt.Fprintf(w, "events:    %s: %s\n", humanize.GroupDigits(in.EventsTotal), strings.Join(counts, ", "))
	if n := in.EventsTotal - int64(len(in.Events)); n > 0 {
		fmt.Fprintf(w, "  the last %d (%s earlier: %s info --events %s):\n", len(in.Events), humanize.GroupDigits(n), program,
			termsafe.String(shellQuote(in.File)))
	}
	for _, e := range in.Events {
		fmt.Fprintf(w, "  %s  #%d %-20s %s\n", e.Time.Format(clock), e.Session, termsafe.String(e.Kind), termsafe.Cell(e.Detail, eventWidth))
	}
}
