package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

const decodeTestProto = `syntax = "proto3";
package acme.v1;
message Reading {
  string sensor_id = 1;
  double celsius = 2;
  int64 count = 3;
  bool ok = 4;
}
`

// readingPayload encodes an acme.v1.Reading with Go's protobuf library.
func readingPayload(t *testing.T, protoFile, sensor string, celsius float64) []byte {
	t.Helper()
	s, err := decode.LoadSchema(context.Background(), []string{protoFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.Message("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("sensor_id"), protoreflect.ValueOfString(sensor))
	m.Set(md.Fields().ByName("celsius"), protoreflect.ValueOfFloat64(celsius))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exportLines runs export with args and returns its records by seq order.
func exportLines(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	code, out, stderr := runCLI(t, context.Background(), append([]string{"export"}, args...)...)
	if code != exitOK {
		t.Fatalf("export %v: exit %d: %s", args, code, stderr)
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func decodedJSON(t *testing.T, r map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(r["decoded"])
	return string(b)
}

// TestDecodeRecordExport: an edge node, protobuf, CBOR, MessagePack and
// gzip'd JSON publishers over a real broker, recorded by mqtape record,
// exported with decoders; broken payloads give decode_error, never a
// failed export.
func TestDecodeRecordExport(t *testing.T) {
	path, protoFile, n := recordDecodeCapture(t)
	dec := []string{"--decode", "acme/pb/#=protobuf:acme.v1.Reading", "--decode", "acme/gz/#=gzip+protobuf:acme.v1.Reading",
		"--decode", "sensors/cbor=cbor", "--decode", "sensors/msgpack=msgpack", "--proto", protoFile}
	recs := exportLines(t, append(dec, path)...)
	if len(recs) != n {
		t.Fatalf("exported %d records, want %d", len(recs), n)
	}
	checkDecodedRecords(t, recs)
	checkSparkplugExport(t, path, recs)
	checkWhere(t, path, dec)

	// --no-decode: today's fields only.
	for _, r := range exportLines(t, "--no-decode", path) {
		if r["decoded"] != nil || r["decode_error"] != nil {
			t.Fatalf("--no-decode printed %v", r)
		}
	}
	// CSV carries decoded as JSON text.
	_, out, _ := runCLI(t, context.Background(), "export", "--format", "csv", "-t", "sensors/cbor", "--decode", "sensors/cbor=cbor", path)
	if !strings.Contains(out, `decoded,decode_error`) || !strings.Contains(out, `"{""celsius"":21.5,""raw"":""AQI=""}"`) {
		t.Errorf("csv: %s", out)
	}
	// play --dry-run lists the same values, decoded in send order.
	code, out, stderr := runCLI(t, context.Background(), append([]string{"play", "--dry-run", "--decode", "spBv1.0/#=sparkplug"},
		append(dec, path)...)...)
	for _, want := range []string{"spBv1.0/plant/DDATA/edge1/pump1  Running=true Count=3\n", `acme/gz/1  {"sensor_id":"s-1","celsius":21.75,`,
		"acme/gz/corrupt  decode_error: gzip+protobuf:acme.v1.Reading: gzip: ", `plain/json  {"v":1}`} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("play --dry-run --decode: exit %d, want %q in\n%s%s", code, want, out, stderr)
		}
	}
}

// recordDecodeCapture records an edge node, protobuf, CBOR, MessagePack
// and gzip'd protobuf publishers through a real broker with mqtape record;
// it returns the capture, the .proto and the number of messages.
func recordDecodeCapture(t *testing.T) (path, protoFile string, n int) {
	t.Helper()
	dir := t.TempDir()
	protoFile = filepath.Join(dir, "reading.proto")
	if err := os.WriteFile(protoFile, []byte(decodeTestProto), 0o644); err != nil {
		t.Fatal(err)
	}
	cb, _ := cbor.Marshal(map[string]any{"celsius": 21.5, "raw": []byte{1, 2}})
	mp, _ := msgpack.Marshal(map[string]any{"celsius": 22.5, "tags": []string{"a"}})
	pb := readingPayload(t, protoFile, "s-1", 21.75)
	type pubMsg struct {
		topic   string
		payload []byte
		props   *mqtt.Properties
	}
	var msgs []pubMsg
	for _, m := range sparkplugtest.EdgeNode() {
		msgs = append(msgs, pubMsg{m.Topic, m.Payload, nil})
	}
	msgs = append(msgs,
		pubMsg{"acme/pb/1", pb, nil},
		pubMsg{"acme/pb/truncated", pb[:len(pb)-2], nil},
		pubMsg{"acme/gz/1", gzipped(t, pb), nil},
		pubMsg{"acme/gz/corrupt", []byte("\x1f\x8b not really gzip"), nil},
		pubMsg{"sensors/cbor", cb, nil},
		pubMsg{"sensors/msgpack", mp, nil},
		pubMsg{"plain/json", []byte(`{"v":1}`), nil},
		pubMsg{"dev/ct", cb, &mqtt.Properties{ContentType: "application/cbor"}},
	)

	url := startBroker(t).URL()
	path = filepath.Join(dir, "decode.db")
	wait := recordCLI(t, context.Background(), path, "--broker", url, "-V", "5", "--quiet", "--count", "16")
	pub := connect5(t, url, "edge-"+t.Name())
	for _, m := range msgs {
		publish5(t, pub, m.topic, 1, false, m.payload, m.props)
	}
	if code, _, stderr := wait(); code != exitOK {
		t.Fatalf("record: exit %d %s", code, stderr)
	}
	return path, protoFile, len(msgs)
}

// checkDecodedRecords: every format decoded, broken payloads with
// decode_error, plain JSON as before.
func checkDecodedRecords(t *testing.T, recs []map[string]any) {
	t.Helper()
	byTopic := map[string]map[string]any{}
	for _, r := range recs {
		byTopic[r["topic"].(string)] = r
	}
	wantPB := `{"celsius":21.75,"count":"0","ok":false,"sensor_id":"s-1"}` // every field, the .proto's names
	for topic, want := range map[string]string{
		"acme/pb/1":       wantPB,
		"acme/gz/1":       wantPB,
		"sensors/cbor":    `{"celsius":21.5,"raw":"AQI="}`,
		"sensors/msgpack": `{"celsius":22.5,"tags":["a"]}`,
		"dev/ct":          `{"celsius":21.5,"raw":"AQI="}`,
	} {
		if got := decodedJSON(t, byTopic[topic]); got != want {
			t.Errorf("%s: decoded %s, want %s", topic, got, want)
		}
	}
	for topic, want := range map[string]string{
		"acme/pb/truncated": "protobuf:acme.v1.Reading: ",
		"acme/gz/corrupt":   "gzip+protobuf:acme.v1.Reading: gzip: ",
	} {
		r := byTopic[topic]
		if e, _ := r["decode_error"].(string); !strings.HasPrefix(e, want) || r["decoded"] != nil {
			t.Errorf("%s: decode_error %q decoded %v, want an error beginning %q", topic, e, r["decoded"], want)
		}
	}
	if r := byTopic["plain/json"]; r["decoded"] != nil || r["decode_error"] != nil || r["payload"] != `{"v":1}` {
		t.Errorf("plain JSON keeps today's fields only: %v", r)
	}

}

// checkSparkplugExport: aliases resolved from the births, the seq gap
// marked, also when -t leaves the births out.
func checkSparkplugExport(t *testing.T, path string, recs []map[string]any) {
	t.Helper()
	var sp []string
	for _, r := range recs[:8] {
		sp = append(sp, decodedJSON(t, r))
	}
	if !strings.Contains(sp[1], `{"alias":2,"datatype":"Float","name":"Temperature","value":21.75}`) ||
		!strings.Contains(sp[3], `{"alias":10,"datatype":"Boolean","name":"Running","value":true}`) ||
		!strings.Contains(sp[4], `"seq_gap":true`) || strings.Contains(sp[3], "seq_gap") ||
		!strings.Contains(sp[7], `{"alias":2,"datatype":"Double","name":"Pressure","value":2.25}`) {
		t.Errorf("sparkplug decoded:\n%s", strings.Join(sp, "\n"))
	}

	// Only the device's data: its names still come from the births the
	// selection leaves out.
	dd := exportLines(t, "-t", "spBv1.0/+/DDATA/#", path)
	if len(dd) != 2 || !strings.Contains(decodedJSON(t, dd[0]), `"name":"Count"`) || strings.Contains(decodedJSON(t, dd[0]), "unresolved") ||
		!strings.Contains(decodedJSON(t, dd[1]), `"seq_gap":true`) {
		t.Errorf("-t DDATA: %v", dd)
	}

}

// checkWhere: --where on decoded values, with the decoders dec, and with -t.
func checkWhere(t *testing.T, path string, dec []string) {
	t.Helper()
	topicsOf := func(recs []map[string]any) string {
		var ts []string
		for _, r := range recs {
			ts = append(ts, r["topic"].(string))
		}
		return strings.Join(ts, " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"--where", ".celsius>21.6"}, dec...), "acme/pb/1 acme/gz/1 sensors/msgpack"},
		{append([]string{"--where", `.sensor_id="s-1"`, "-t", "acme/gz/#"}, dec...), "acme/gz/1"},
		{[]string{"--where", "metric:Temperature>21"}, "spBv1.0/plant/NDATA/edge1"},
		{[]string{"--where", "metric:Count<0", "-t", "spBv1.0/+/DDATA/#"}, "spBv1.0/plant/DDATA/edge1/pump1"},
		{[]string{"--where", `metric:"Node Control/Rebirth"=false`}, "spBv1.0/plant/NBIRTH/edge1"},
		{[]string{"--where", ".v=1", "--no-decode"}, "plain/json"}, // the JSON payload
	} {
		code, out, stderr := runCLI(t, context.Background(), append(append([]string{"export"}, tc.args...), path)...)
		var recs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(l), &r) == nil {
				recs = append(recs, r)
			}
		}
		if code != exitOK || topicsOf(recs) != tc.want {
			t.Errorf("export %v: exit %d, topics %q, want %q %s", tc.args, code, topicsOf(recs), tc.want, stderr)
		}
	}
	// A query that matches nothing is an empty selection (exit 1, saying
	// how many messages it looked at), as an empty -t/--from is.
	code, out, stderr := runCLI(t, context.Background(), "export", "--where", ".celsius>1000", path)
	if code != exitError || out != "" || !strings.Contains(stderr, "--where .celsius>1000 matches none of the") {
		t.Errorf("export --where matching nothing: exit %d, stdout %q, stderr %q; want exit 1 naming the query", code, out, stderr)
	}
}

// TestDecodeUsageErrors: a bad FORMAT, an unknown message type and a
// .proto that does not compile are usage errors naming what is wrong, before
// the capture is opened.
func TestDecodeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.proto")
	os.WriteFile(bad, []byte("syntax = \"proto3\";\nmessage A {\n  strin x = 1;\n}\n"), 0o644)
	good := filepath.Join(dir, "reading.proto")
	os.WriteFile(good, []byte(decodeTestProto), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--decode", "a/#=xml"}, `--decode "a/#=xml": unknown format "xml"`},
		{[]string{"--decode", "sensors"}, `--decode "sensors": use FILTER=FORMAT`},
		{[]string{"--decode", "a/#=protobuf:acme.v1.Nope", "--proto", good}, `unknown protobuf message type "acme.v1.Nope" (.proto files loaded: reading.proto)`},
		{[]string{"--proto", bad}, "bad.proto:3:3:"},
		{[]string{"--no-decode", "--decode", "a=json"}, "--no-decode with --decode"},
	} {
		code, out, stderr := runCLI(t, context.Background(), append(append([]string{"export"}, tc.args...), filepath.Join(dir, "none.db"))...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "goroutine") {
			t.Errorf("export %v: exit %d, stderr %q; want exit 2 naming %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestDecodersCarriedByCapture: record --decode/--proto stores the map and
// the compiled descriptors; export decodes without the .proto file; the
// command line wins over the stored map; decoders lists them; decoders set
// stores them into another capture and changes nothing else in it.
func TestDecodersCarriedByCapture(t *testing.T) {
	dir := t.TempDir()
	protoFile := filepath.Join(dir, "reading.proto")
	if err := os.WriteFile(protoFile, []byte(decodeTestProto), 0o644); err != nil {
		t.Fatal(err)
	}
	pb := readingPayload(t, protoFile, "s-9", 19.5)
	cb, _ := cbor.Marshal(map[string]any{"celsius": 18.5})

	url := startBroker(t).URL()
	path := filepath.Join(dir, "carried.db")
	wait := recordCLI(t, context.Background(), path, "--broker", url, "--quiet", "--count", "2",
		"--decode", "acme/#=protobuf:acme.v1.Reading", "--decode", "sensors/#=cbor", "--proto", protoFile)
	pub := connect5(t, url, "pub-"+t.Name())
	publish5(t, pub, "acme/r1", 1, false, pb, nil)
	publish5(t, pub, "sensors/s1", 1, false, cb, nil)
	if code, _, stderr := wait(); code != exitOK {
		t.Fatalf("record: exit %d %s", code, stderr)
	}
	if err := os.Remove(protoFile); err != nil { // the capture carries what it needs
		t.Fatal(err)
	}
	recs := exportLines(t, path)
	if got := decodedJSON(t, recs[0]); got != `{"celsius":19.5,"count":"0","ok":false,"sensor_id":"s-9"}` {
		t.Errorf("protobuf from the stored descriptors: %s", got)
	}
	if got := decodedJSON(t, recs[1]); got != `{"celsius":18.5}` {
		t.Errorf("cbor from the stored map: %s", got)
	}
	// The command line wins: sensors/# as MessagePack fails on CBOR.
	recs = exportLines(t, "--decode", "sensors/#=msgpack", path)
	if e, _ := recs[1]["decode_error"].(string); !strings.HasPrefix(e, "msgpack: ") {
		t.Errorf("--decode over the stored map: %v", recs[1])
	}

	code, out, stderr := runCLI(t, context.Background(), "decoders", path)
	if code != exitOK || !strings.Contains(out, "acme/#") || !strings.Contains(out, "protobuf:acme.v1.Reading") ||
		!strings.Contains(out, "sensors/#") || !strings.Contains(out, "message types: acme.v1.Reading") {
		t.Errorf("decoders: exit %d\n%s%s", code, out, stderr)
	}

	// decoders set into a capture recorded without them.
	plain := filepath.Join(dir, "plain.db")
	wait = recordCLI(t, context.Background(), plain, "--broker", url, "--quiet", "--count", "1")
	publish5(t, pub, "sensors/s2", 1, false, cb, nil)
	if code, _, stderr := wait(); code != exitOK {
		t.Fatalf("record: exit %d %s", code, stderr)
	}
	_, before, _ := runCLI(t, context.Background(), "export", "--no-decode", plain)
	if r := exportLines(t, plain); r[0]["decoded"] != nil {
		t.Fatalf("decoded before set: %v", r[0])
	}
	if code, _, stderr := runCLI(t, context.Background(), "decoders", "set", plain, "--decode", "sensors/#=cbor"); code != exitOK ||
		!strings.Contains(stderr, "stored 1 decoder and 0 protobuf files") {
		t.Fatalf("decoders set: exit %d %s", code, stderr)
	}
	if r := exportLines(t, plain); decodedJSON(t, r[0]) != `{"celsius":18.5}` {
		t.Errorf("after set: %v", r[0])
	}
	if _, after, _ := runCLI(t, context.Background(), "export", "--no-decode", plain); after != before {
		t.Errorf("decoders set changed the messages:\n%s\n%s", before, after)
	}
	code, out, _ = runCLI(t, context.Background(), "decoders", "--json", plain)
	if code != exitOK || !strings.Contains(out, `"filter": "sensors/#"`) || !strings.Contains(out, `"proto_files": []`) {
		t.Errorf("decoders --json: %s", out)
	}
	if code, _, stderr := runCLI(t, context.Background(), "decoders", "set", filepath.Join(dir, "missing.db"), "--decode", "a=json"); code != exitCapture {
		t.Errorf("set on a missing file: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("decoders set created a capture")
	}
}

// writeEdgeNode writes the sparkplugtest edge node's messages into a
// capture, the NDATA (message 1) replaced by ndata.
func writeEdgeNode(t *testing.T, path string, ndata []byte) {
	t.Helper()
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() {
		p := m.Payload
		if i == 1 {
			p = ndata
		}
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * 1e6, Topic: m.Topic, QoS: 1, Payload: p})
	}
	capturetest.Write(t, path, capturetest.Session{Messages: msgs})
}

// TestDiffDecodedSparkplug: diff compares Sparkplug payloads as decoded
// values: a changed metric is named by its field path, a changed
// timestamp is left out by --ignore-field, and --no-decode compares bytes.
func TestDiffDecodedSparkplug(t *testing.T) {
	dir := t.TempDir()
	temp := func(ts uint64, v float32) []byte {
		return sparkplugtest.Payload(ts, 1, sparkplugtest.Metric{Alias: 2, HasAlias: true, Value: v})
	}
	a, hotter, later := filepath.Join(dir, "a.db"), filepath.Join(dir, "hotter.db"), filepath.Join(dir, "later.db")
	writeEdgeNode(t, a, temp(1001, 21.75))
	writeEdgeNode(t, hotter, temp(1001, 22.5))
	writeEdgeNode(t, later, temp(5555, 21.75))

	code, out, stderr := runCLI(t, context.Background(), "diff", "--json", a, hotter)
	if code != exitError || !strings.Contains(out, `"path": "metrics[0].value"`) || !strings.Contains(out, "21.75") ||
		!strings.Contains(out, "22.5") {
		t.Errorf("a changed metric: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, context.Background(), "diff", "--ignore-field", "timestamp", a, later); code != exitOK {
		t.Errorf("only the timestamp differs, ignored: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, _ := runCLI(t, context.Background(), "diff", "--no-decode", "--ignore-field", "timestamp", a, later); code != exitError {
		t.Errorf("--no-decode compares bytes: exit %d, want 1", code)
	}
}

// TestPlaySparkplugFromBroker: play --from inside a Sparkplug session
// through a real broker: the births in force come first, and
// --sparkplug-seq renumber makes seq follow on from them.
func TestPlaySparkplugFromBroker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sp.db")
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * 1e9, Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	capturetest.Write(t, path, capturetest.Session{Messages: msgs})
	url := startBroker(t).URL()
	sub := testbroker.Subscribe(t, url)
	if code, _, stderr := runCLI(t, context.Background(), "play", path, "-b", url, "--from", "3500ms", "--speed", "max",
		"--sparkplug-seq", "renumber", "--quiet"); code != exitOK {
		t.Fatalf("play: exit %d %s", code, stderr)
	}
	reg, _ := decode.NewRegistry(nil, nil)
	dec := reg.NewDecoder()
	var got []string
	for _, r := range sub.Wait(t, 6) {
		res := dec.Decode(r.Topic, nil, []byte(r.Body))
		var p struct{ Seq int }
		json.Unmarshal(res.Value, &p)
		got = append(got, fmt.Sprintf("%s:%d", strings.TrimPrefix(r.Topic, "spBv1.0/plant/"), p.Seq))
		if strings.Contains(string(res.Value), "unresolved_alias") || strings.Contains(string(res.Value), "seq_gap") {
			t.Errorf("%s decoded %s", r.Topic, res.Value)
		}
	}
	want := "NBIRTH/edge1:0 DBIRTH/edge1/pump1:1 DDATA/edge1/pump1:2 DDEATH/edge1/pump1:3 NBIRTH/edge1:0 NDATA/edge1:1"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("received\n %s\nwant\n %s", g, want)
	}
}
