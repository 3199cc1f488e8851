package export

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// Writer writes messages as JSON lines or CSV rows, byte for byte what
// encoding/json (HTML escaping off) and encoding/csv make of a Record, but
// with the payload streamed: its base64 form and its text are written as
// they are made, never held as strings, so a message with a payload of
// size P needs no memory beyond the payload itself.
type Writer struct {
	w    *bufio.Writer
	csv  bool
	head bytes.Buffer // the fields before the payload, encoded
	enc  *json.Encoder
	cw   *csv.Writer
}

// NewJSONWriter returns a Writer of JSON lines to w.
func NewJSONWriter(w io.Writer) *Writer {
	x := &Writer{w: bufio.NewWriterSize(w, 256<<10)}
	x.enc = json.NewEncoder(&x.head)
	x.enc.SetEscapeHTML(false)
	return x
}

// NewCSVWriter returns a Writer of CSV rows to w, after writing the header.
func NewCSVWriter(w io.Writer) (*Writer, error) {
	x := &Writer{w: bufio.NewWriterSize(w, 256<<10), csv: true}
	x.cw = csv.NewWriter(&x.head)
	if err := x.cw.Write(CSVHeader); err != nil {
		return nil, err
	}
	x.cw.Flush()
	_, err := x.head.WriteTo(x.w)
	return x, err
}

// Flush writes what is buffered.
func (x *Writer) Flush() error { return x.w.Flush() }

// Write writes one message and what decoding it gave (decoded and
// decode_error, as Record.AddDecoded; a zero Result adds neither).
func (x *Writer) Write(m *storage.Message, res decode.Result) error {
	// The record without payload and properties: its fields up to
	// client_id are encoded as usual, the rest is streamed after them.
	r := New(&storage.Message{Seq: m.Seq, Session: m.Session, TimeNS: m.TimeNS, OffsetNS: m.OffsetNS, Topic: m.Topic,
		QoS: m.QoS, Retain: m.Retain, Dup: m.Dup, PacketID: m.PacketID, FromStore: m.FromStore, ClientID: m.ClientID})
	r.Payload = nil
	text := utf8.Valid(m.Payload)
	x.head.Reset()
	if x.csv {
		r.AddDecoded(res)
		return x.writeCSV(r, m.Payload, text, m)
	}
	if err := x.enc.Encode(&r); err != nil {
		return err
	}
	// `…,"client_id":"x","payload_b64":""}` and a newline: cut before
	// the empty payload_b64.
	head := x.head.Bytes()
	head = head[:len(head)-len(`"payload_b64":""}`+"\n")]
	x.w.Write(head)
	x.w.WriteString(`"payload_b64":"`)
	writeBase64(x.w, m.Payload)
	x.w.WriteByte('"')
	if text {
		x.w.WriteString(`,"payload":`)
		writeJSONString(x.w, m.Payload)
	}
	if m.Props != nil {
		x.head.Reset()
		if err := x.enc.Encode(m.Props); err != nil {
			return err
		}
		x.w.WriteString(`,"properties":`)
		x.w.Write(bytes.TrimSuffix(x.head.Bytes(), []byte("\n")))
	}
	var tail Record
	if tail.AddDecoded(res); tail.Decoded != nil || tail.DecodeError != "" {
		// `{"decoded":…,"decode_error":"…"}` and a newline: the fields
		// without the braces.
		x.head.Reset()
		if err := x.enc.Encode(decodedFields{tail.Decoded, tail.DecodeError}); err != nil {
			return err
		}
		x.w.WriteByte(',')
		x.w.Write(x.head.Bytes()[1 : x.head.Len()-len("}\n")])
	}
	_, err := x.w.WriteString("}\n")
	return err
}

// decodedFields are Record's last fields, encoded as Record encodes them.
type decodedFields struct {
	Decoded     json.RawMessage `json:"decoded,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

// writeCSV writes the CSV row of r (its payload fields empty) with payload
// streamed into them.
func (x *Writer) writeCSV(r Record, payload []byte, text bool, m *storage.Message) error {
	r.Properties = m.Props
	row := r.CSV()
	const payloadB64, payloadText = 12, 13 // indexes in CSVHeader
	// The fields before payload_b64, ending with a comma.
	if err := x.cw.Write(append(row[:payloadB64:payloadB64], "")); err != nil {
		return err
	}
	x.cw.Flush()
	head := x.head.Bytes()
	x.w.Write(head[:len(head)-1]) // without the newline
	writeBase64(x.w, payload)
	x.w.WriteByte(',')
	if text {
		writeCSVField(x.w, payload)
	}
	x.w.WriteByte(',')
	x.head.Reset()
	if err := x.cw.Write(row[payloadText+1:]); err != nil {
		return err
	}
	x.cw.Flush()
	_, err := x.head.WriteTo(x.w)
	return err
}

// writeBase64 writes p in standard base64, straight into w's buffer.
func writeBase64(w *bufio.Writer, p []byte) {
	const chunk = 3 << 10 // a multiple of 3: no padding inside
	for len(p) > 0 {
		if w.Available() < 4<<10 {
			if w.Flush() != nil {
				return // the error sticks: Write reports it
			}
		}
		n := min(len(p), chunk)
		buf := w.AvailableBuffer()[:base64.StdEncoding.EncodedLen(n)]
		base64.StdEncoding.Encode(buf, p[:n])
		w.Write(buf)
		p = p[n:]
	}
}

// writeJSONString writes valid UTF-8 text as a JSON string, escaped as
// encoding/json escapes it with HTML escaping off.
func writeJSONString(w *bufio.Writer, s []byte) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= utf8.RuneSelf {
			c, size := utf8.DecodeRune(s[i:])
			if c == '\u2028' || c == '\u2029' {
				w.Write(s[start:i])
				w.WriteString(`\u202`)
				w.WriteByte(hex[c&0xF])
				start = i + size
			}
			i += size
			continue
		}
		if b >= 0x20 && b != '"' && b != '\\' {
			i++
			continue
		}
		w.Write(s[start:i])
		switch b {
		case '\\', '"':
			w.WriteByte('\\')
			w.WriteByte(b)
		case '\b':
			w.WriteString(`\b`)
		case '\f':
			w.WriteString(`\f`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		default:
			w.WriteString(`\u00`)
			w.WriteByte(hex[b>>4])
			w.WriteByte(hex[b&0xF])
		}
		i++
		start = i
	}
	w.Write(s[start:])
	w.WriteByte('"')
}

// writeCSVField writes one CSV field as encoding/csv writes it (comma
// separator, LF line ends): quoted, with quotes doubled, when it holds a
// comma, quote, CR or LF, starts with a space or is `\.`.
func writeCSVField(w *bufio.Writer, s []byte) {
	first, _ := utf8.DecodeRune(s)
	quote := len(s) > 0 && (bytes.ContainsAny(s, ",\"\r\n") || string(s) == `\.` || unicode.IsSpace(first))
	if !quote {
		w.Write(s)
		return
	}
	w.WriteByte('"')
	for len(s) > 0 {
		i := bytes.IndexByte(s, '"')
		if i < 0 {
			w.Write(s)
			break
		}
		w.Write(s[:i+1])
		w.WriteByte('"')
		s = s[i+1:]
	}
	w.WriteByte('"')
}
