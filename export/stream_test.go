package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// encoded is what encoding/json and encoding/csv make of m's Record: the
// Writer must write exactly this.
func encoded(t testing.TB, m *storage.Message, res decode.Result) (jsonl, csvRow string) {
	t.Helper()
	var jb, cb bytes.Buffer
	enc := json.NewEncoder(&jb)
	enc.SetEscapeHTML(false)
	r := New(m)
	r.AddDecoded(res)
	if err := enc.Encode(&r); err != nil {
		t.Fatal(err)
	}
	cw := csv.NewWriter(&cb)
	cw.Write(r.CSV())
	cw.Flush()
	return jb.String(), cb.String()
}

func streamed(t testing.TB, m *storage.Message, res decode.Result) (jsonl, csvRow string) {
	t.Helper()
	var jb, cb bytes.Buffer
	jw := NewJSONWriter(&jb)
	cw, err := NewCSVWriter(&cb)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []*Writer{jw, cw} {
		if err := w.Write(m, res); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	header := strings.Join(CSVHeader, ",") + "\n"
	if !strings.HasPrefix(cb.String(), header) {
		t.Fatalf("no CSV header: %q", cb.String())
	}
	return jb.String(), strings.TrimPrefix(cb.String(), header)
}

func sameAsEncoding(t testing.TB, m *storage.Message, res decode.Result) {
	t.Helper()
	wantJ, wantC := encoded(t, m, res)
	gotJ, gotC := streamed(t, m, res)
	if gotJ != wantJ {
		t.Errorf("JSON line differs for payload %q:\n got %q\nwant %q", m.Payload, gotJ, wantJ)
	}
	if gotC != wantC {
		t.Errorf("CSV row differs for payload %q:\n got %q\nwant %q", m.Payload, gotC, wantC)
	}
}

func TestWriterMatchesEncoding(t *testing.T) {
	props := &mqtt.Properties{ContentType: "text/plain", UserProperties: []mqtt.UserProperty{{Key: "k", Value: "v,\"x\""}}}
	for _, p := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x01\b\f\n\r\t\x1b\x7f end",
		"\u2028 and \u2029", "c1 \u0085\u009b bidi \u202e", "emoji 🙂", "comma, here", " leading space", `\.`,
		"\xff\xfe binary", "a\"b", strings.Repeat("x\"y,", 100000)} {
		for _, m := range []*storage.Message{
			{Seq: 1, Session: 2, TimeNS: 1.7e18, OffsetNS: 5, Topic: "a/b", QoS: 1, Payload: []byte(p)},
			{Seq: 3, Session: 1, TimeNS: 1, Topic: "t,\"q\" ", Retain: true, Dup: true, FromStore: true, PacketID: 9,
				ClientID: "dev \"1\"", Props: props, Payload: []byte(p)},
		} {
			sameAsEncoding(t, m, decode.Result{})
			for _, format := range fuzzFormats {
				sameAsEncoding(t, m, decodeAs(t, format, m))
			}
		}
	}
}

// fuzzFormats are decoders whose values and errors the Writer must write
// as the encoders do: text (no decoded field), binary values, and errors
// for most payloads.
var fuzzFormats = []string{"text", "cbor", "msgpack", "gzip+json", "sparkplug"}

// decodeAs decodes m's payload with a real decoder of format.
func decodeAs(t testing.TB, format string, m *storage.Message) decode.Result {
	t.Helper()
	rules, err := decode.ParseRules([]string{"#=" + format})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := decode.NewRegistry(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg.NewDecoder().Decode(m.Topic, m.Props, m.Payload)
}

// FuzzWriterMatchesEncoding: for any payload, topic and client id the
// streamed line and row are the encoders'.
func FuzzWriterMatchesEncoding(f *testing.F) {
	f.Add([]byte("x"), "a/b", "", false)
	f.Add([]byte("\u2028\"\\\x00,"), " t,", "c\"", true)
	f.Add([]byte{0xff, 0}, "\\.", "\r\n", false)
	f.Add([]byte{0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x42, 0xff, 0x00}, "c", "", false) // CBOR {"a":1,"b":h'ff00'}
	f.Add([]byte{0x81, 0xa1, 'k', 0xc3}, "m", "", true)                               // MessagePack {"k":true}
	f.Fuzz(func(t *testing.T, payload []byte, topic, client string, withProps bool) {
		m := &storage.Message{Seq: 1, Session: 1, TimeNS: 7, Topic: topic, ClientID: client, Payload: payload}
		if withProps {
			m.Props = &mqtt.Properties{ResponseTopic: topic}
		}
		sameAsEncoding(t, m, decode.Result{})
		for _, format := range fuzzFormats {
			sameAsEncoding(t, m, decodeAs(t, format, m))
		}
	})
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// TestWriterReportsWriteErrors: a closed stdout (| head) is an error, also
// in the middle of a large payload, never a panic.
func TestWriterReportsWriteErrors(t *testing.T) {
	w := NewJSONWriter(failWriter{})
	err := w.Write(&storage.Message{Topic: "a", Payload: bytes.Repeat([]byte{0xff}, 1<<20)}, decode.Result{})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		t.Fatal("no error")
	}
}
