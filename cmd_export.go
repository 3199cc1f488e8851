package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/storage"
)

const exportUsage = `export [flags] FILE

Write a capture's messages to stdout in seq order, as JSON lines (one object
per message) or CSV with a header row. Streams in constant memory.

Fields: seq, session, time (RFC 3339, ns, UTC), ts_ns (Unix ns), offset_ns
(monotonic ns since the session started), topic, qos, retain, dup, packet_id,
from_store (1: sent from the broker's retained store at subscribe time),
client_id (the publisher, in captures made by mqtape serve; else empty),
payload_b64 (always), payload (the text, only when valid UTF-8), and
properties (MQTT 5 only, when present: content_type, payload_format,
message_expiry, response_topic, correlation_data_b64, user_properties as a
list of {"key","value"} in order, subscription_ids).`

const exportExamples = `  mqtape export capture.db > capture.jsonl
  mqtape export --format csv -t 'plant/+/temp' capture.db > temps.csv
  mqtape export --from 90s --to 2m --session 1 capture.db | jq -r .payload
  mqtape export --from 2026-11-26T10:00:00Z capture.db
`

type exportOptions struct {
	sel    selectFlags
	format string
	file   string
}

func parseExport(args []string, cio *cliIO) (exportOptions, error) {
	var o exportOptions
	fs := newFlagSet("export", exportUsage, exportExamples, cio)
	fs.StringVar(&o.format, "format", "jsonl", "jsonl or csv")
	o.sel.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.format != "jsonl" && o.format != "csv" && o.format != "json" {
		return o, usagef("--format %q: use jsonl or csv", o.format)
	}
	var err error
	o.file, err = oneFile(fs)
	return o, err
}

// ExportRecord is one exported message (JSON lines form).
type ExportRecord struct {
	Seq        int64   `json:"seq"`
	Session    int64   `json:"session"`
	Time       string  `json:"time"`
	TsNS       int64   `json:"ts_ns"`
	OffsetNS   int64   `json:"offset_ns"`
	Topic      string  `json:"topic"`
	QoS        byte    `json:"qos"`
	Retain     bool    `json:"retain"`
	Dup        bool    `json:"dup"`
	PacketID   uint16  `json:"packet_id"`
	FromStore  bool    `json:"from_store"`
	ClientID   string  `json:"client_id"`
	PayloadB64 string  `json:"payload_b64"`
	Payload    *string `json:"payload,omitempty"`
	// Properties are the MQTT 5 properties, only when the message had any.
	Properties *storage.Properties `json:"properties,omitempty"`
}

func exportRecord(m *storage.Message) ExportRecord {
	r := ExportRecord{Seq: m.Seq, Session: m.Session, Time: m.Time().Format(time.RFC3339Nano), TsNS: m.TimeNS,
		OffsetNS: m.OffsetNS, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Dup: m.Dup, PacketID: m.PacketID,
		FromStore: m.FromStore, ClientID: m.ClientID, Properties: m.Props, PayloadB64: base64.StdEncoding.EncodeToString(m.Payload)}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		r.Payload = &s
	}
	return r
}

var csvHeader = []string{"seq", "session", "time", "ts_ns", "offset_ns", "topic", "qos", "retain", "dup", "packet_id", "from_store", "client_id", "payload_b64", "payload", "properties"}

// propsJSON is the CSV form of the properties: their JSON object, or empty.
func propsJSON(p *storage.Properties) string {
	if p == nil {
		return ""
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func cmdExport(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseExport(args, cio)
	if err != nil {
		return err
	}
	q, err := o.sel.query()
	if err != nil {
		return err
	}
	c, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	defer c.Close()
	bw := bufio.NewWriterSize(cio.stdout, 256<<10)
	defer bw.Flush()
	var cw *csv.Writer
	var enc *json.Encoder
	if o.format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
	} else {
		enc = json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
	}
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	for m, err := range c.Messages(ctx, q) {
		if err != nil {
			return err
		}
		r := exportRecord(&m)
		if cw != nil {
			payload := ""
			if r.Payload != nil {
				payload = *r.Payload
			}
			err = cw.Write([]string{strconv.FormatInt(r.Seq, 10), strconv.FormatInt(r.Session, 10), r.Time,
				strconv.FormatInt(r.TsNS, 10), strconv.FormatInt(r.OffsetNS, 10), r.Topic, strconv.Itoa(int(r.QoS)),
				b(r.Retain), b(r.Dup), strconv.Itoa(int(r.PacketID)), b(r.FromStore), r.ClientID, r.PayloadB64, payload, propsJSON(r.Properties)})
		} else {
			err = enc.Encode(&r)
		}
		if err != nil {
			return err // e.g. stdout closed (| head)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	return bw.Flush()
}
