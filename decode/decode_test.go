package decode

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/mqtt"
)

const readingProto = `syntax = "proto3";
package acme.v1;
import "google/protobuf/timestamp.proto";
import "units.proto";
message Reading {
  string sensor_id = 1;
  double celsius = 2;
  int64 count = 3;
  bool ok = 4;
  google.protobuf.Timestamp at = 5;
  Unit unit = 6;
}
`

const unitsProto = `syntax = "proto3";
package acme.v1;
enum Unit { UNIT_UNSPECIFIED = 0; UNIT_CELSIUS = 1; }
`

// writeProtos writes the test schema: reading.proto in dir/protos, which
// imports units.proto from dir/common (found through --proto-path).
func writeProtos(t *testing.T) (reading, common string) {
	t.Helper()
	dir := t.TempDir()
	for p, src := range map[string]string{"protos/reading.proto": readingProto, "common/units.proto": unitsProto} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "protos/reading.proto"), filepath.Join(dir, "common")
}

// encodeReading encodes an acme.v1.Reading with Go's protobuf library.
func encodeReading(t *testing.T, s *Schema, sensor string, celsius float64, count int64) []byte {
	t.Helper()
	md, err := s.Message("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	f := md.Fields()
	m.Set(f.ByName("sensor_id"), protoreflect.ValueOfString(sensor))
	m.Set(f.ByName("celsius"), protoreflect.ValueOfFloat64(celsius))
	m.Set(f.ByName("count"), protoreflect.ValueOfInt64(count))
	ts, err := proto.Marshal(timestamppb.New(timeAt()))
	if err != nil {
		t.Fatal(err)
	}
	at := dynamicpb.NewMessage(f.ByName("at").Message())
	if err := proto.Unmarshal(ts, at); err != nil {
		t.Fatal(err)
	}
	m.Set(f.ByName("at"), protoreflect.ValueOfMessage(at))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadTestSchema(t *testing.T) *Schema {
	t.Helper()
	reading, common := writeProtos(t)
	s, err := LoadSchema(context.Background(), []string{reading}, []string{common})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustRules(t *testing.T, s ...string) []Rule {
	t.Helper()
	r, err := ParseRules(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecodeFormats(t *testing.T) {
	s := loadTestSchema(t)
	reg, err := NewRegistry(mustRules(t, "pb/#=protobuf:acme.v1.Reading", "gpb/#=gzip+protobuf:acme.v1.Reading",
		"cbor/#=cbor", "mp/#=msgpack", "gj/#=gzip+json", "zc/#=zlib+cbor", "txt/#=gzip+text", "j/#=json"), s)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := cbor.Marshal(map[any]any{"celsius": 21.5, "raw": []byte{1, 2}, 7: "seven", "list": []any{1, "a"}})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := msgpack.Marshal(map[string]any{"celsius": 21.5, "raw": []byte{1, 2}, "n": uint64(1) << 63})
	if err != nil {
		t.Fatal(err)
	}
	var zc bytes.Buffer
	zw := zlib.NewWriter(&zc)
	zw.Write(cb)
	zw.Close()
	pb := encodeReading(t, s, "s-1", 21.75, 1<<60)
	wantPB := `{"sensor_id":"s-1","celsius":21.75,"count":"1152921504606846976","ok":false,` +
		`"at":"2026-11-26T10:00:00.250Z","unit":"UNIT_UNSPECIFIED"}`
	wantCBOR := `{"7":"seven","celsius":21.5,"list":[1,"a"],"raw":"AQI="}`
	for _, tc := range []struct {
		topic   string
		props   *mqtt.Properties
		payload []byte
		want    string // the decoded JSON, or the error's beginning after "!"
	}{
		{"pb/1", nil, pb, wantPB},
		{"gpb/1", nil, gz(t, pb), wantPB},
		{"pb/truncated", nil, pb[:len(pb)-3], "!protobuf:acme.v1.Reading: "},
		{"pb/wrongtype", nil, []byte("\xff\xff\xff"), "!protobuf:acme.v1.Reading: "},
		{"gpb/corrupt", nil, append([]byte{0x1f, 0x8b}, "not gzip at all"...), "!gzip+protobuf:acme.v1.Reading: gzip: invalid header"},
		{"gpb/cut", nil, gz(t, pb)[:12], "!gzip+protobuf:acme.v1.Reading: gzip: cut short: "},
		{"cbor/1", nil, cb, wantCBOR},
		{"zc/1", nil, zc.Bytes(), wantCBOR},
		{"cbor/bad", nil, []byte{0xbf, 0x61}, "!cbor: unexpected EOF"},
		{"mp/1", nil, mp, `{"celsius":21.5,"n":9223372036854775808,"raw":"AQI="}`},
		{"mp/bad", nil, []byte{0xc1}, "!msgpack: unknown code c1"},
		{"gj/1", nil, gz(t, []byte(`{"a": [1, 2]}`)), `{"a":[1,2]}`},
		{"gj/notjson", nil, gz(t, []byte(`{"a":`)), "!gzip+json: not JSON: "},
		{"txt/1", nil, gz(t, []byte("héllo")), `"héllo"`},
		{"j/bad", nil, []byte("nope"), "!json: not JSON"},
		{"ct/cbor", &mqtt.Properties{ContentType: "application/cbor"}, cb, wantCBOR},
		{"ct/pb", &mqtt.Properties{ContentType: `application/x-protobuf; messageType="acme.v1.Reading"`}, pb, wantPB},
		{"ct/pbunknown", &mqtt.Properties{ContentType: "application/x-protobuf; messageType=acme.v1.Nope"}, pb,
			`!protobuf:acme.v1.Nope: unknown protobuf message type "acme.v1.Nope"`},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			res := reg.NewDecoder().Decode(tc.topic, tc.props, tc.payload)
			if !res.Selected {
				t.Fatal("no decoder selected")
			}
			if want, ok := strings.CutPrefix(tc.want, "!"); ok {
				if res.Err == nil || !strings.HasPrefix(res.Err.Error(), want) {
					t.Fatalf("error %v, want it to begin %q (value %s)", res.Err, want, res.Value)
				}
				return
			}
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if string(res.Value) != tc.want {
				t.Fatalf("decoded\n %s\nwant\n %s", res.Value, tc.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	reg, err := NewRegistry(mustRules(t, "a/=x/#=cbor", "a/#=msgpack", "spBv1.0/#=json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewRegistry(nil, nil)
	for _, tc := range []struct {
		reg   *Registry
		topic string
		ct    string
		want  string // "" none
	}{
		{reg, "a/=x/1", "", "cbor"}, // a filter may contain "="
		{reg, "a/b", "application/json", "msgpack"},
		{reg, "spBv1.0/g/NDATA/e", "", "json"}, // the user's map first
		{plain, "spBv1.0/g/NDATA/e", "application/json", "sparkplug"},
		{plain, "spBv1.0/STATE/host", "", ""},
		{plain, "x", "application/json; charset=utf-8", "json"},
		{plain, "x", "text/plain", "text"},
		{plain, "x", "application/msgpack", "msgpack"},
		{plain, "x", "application/x-protobuf", ""}, // no message type: nothing to decode with
		{plain, "x", "image/png", ""},
		{plain, "x", "", ""},
	} {
		var props *mqtt.Properties
		if tc.ct != "" {
			props = &mqtt.Properties{ContentType: tc.ct}
		}
		f, ok := tc.reg.Select(tc.topic, props)
		if got := f.String(); ok != (tc.want != "") || ok && got != tc.want {
			t.Errorf("Select(%q, %q) = %q, %v; want %q", tc.topic, tc.ct, got, ok, tc.want)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	for in, want := range map[string]string{
		"sensors":                "use FILTER=FORMAT",
		"a/#=xml":                `unknown format "xml"`,
		"a/#=brotli+json":        `unknown content encoding "brotli"`,
		"a/#=protobuf":           "protobuf needs the full message name",
		"a/#=protobuf:a..b":      "protobuf needs the full message name",
		"a/#=cbor:x":             "only protobuf takes a message name",
		"a/#/b=json":             "a/#/b",
		"a/#=gzip+protobuf:a.B ": "protobuf needs the full message name",
	} {
		_, err := ParseRule(in)
		if err == nil || !errors.Is(err, ErrBadFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRule(%q) = %v, want ErrBadFormat mentioning %q", in, err, want)
		}
	}
	for _, ok := range []string{"a/#=json", "#=deflate+protobuf:acme.v1.Reading", "+/x=zlib+cbor", "a=gzip+text"} {
		r, err := ParseRule(ok)
		if err != nil || r.String() != ok {
			t.Errorf("ParseRule(%q) = %v, %v", ok, r, err)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.proto")
	os.WriteFile(bad, []byte("syntax = \"proto3\";\nmessage A {\n  strin x = 1;\n}\n"), 0o644)
	_, err := LoadSchema(context.Background(), []string{bad}, nil)
	if !errors.Is(err, ErrBadSchema) || !strings.Contains(err.Error(), "bad.proto:3:") {
		t.Fatalf("a .proto that does not compile: %v; want ErrBadSchema naming bad.proto:3", err)
	}
	_, err = LoadSchema(context.Background(), []string{filepath.Join(dir, "missing.proto")}, nil)
	if !errors.Is(err, ErrBadSchema) || !strings.Contains(err.Error(), "missing.proto") {
		t.Fatalf("a missing .proto: %v", err)
	}
	_, err = NewRegistry(mustRules(t, "#=protobuf:acme.v1.Nope"), loadTestSchema(t))
	if !errors.Is(err, ErrBadFormat) || !strings.Contains(err.Error(), `"acme.v1.Nope"`) ||
		!strings.Contains(err.Error(), "reading.proto") {
		t.Fatalf("an unknown type: %v", err)
	}
}

// TestDescriptorSetRoundTrip: a schema written as a FileDescriptorSet (as
// protoc --include_imports --descriptor_set_out writes it, and as a
// capture stores it) decodes the same without the .proto files.
func TestDescriptorSetRoundTrip(t *testing.T) {
	s := loadTestSchema(t)
	set, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "reading.pb")
	if err := os.WriteFile(p, set, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := LoadSchema(context.Background(), []string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb := encodeReading(t, s, "s-2", -3, 7)
	for _, sc := range []*Schema{s, s2} {
		v, err := sc.decodeProto("acme.v1.Reading", pb)
		if err != nil || !strings.Contains(string(v), `"sensor_id":"s-2","celsius":-3,"count":"7"`) {
			t.Fatalf("decoded %s, %v", v, err)
		}
	}
	if got := strings.Join(s2.Files(), " "); got != "google/protobuf/timestamp.proto reading.proto units.proto" {
		t.Fatalf("files %s", got)
	}
	// Two captures' sets concatenated (a merge) name each file twice.
	if twice, err := UnmarshalSchema(append(append([]byte{}, set...), set...)); err != nil || twice.Len() != s2.Len() {
		t.Fatalf("concatenated sets: %v", err)
	}
}

func TestSparkplugEdgeNode(t *testing.T) {
	reg, _ := NewRegistry(nil, nil)
	dec := reg.NewDecoder()
	var got []string
	for _, m := range sparkplugtest.EdgeNode() {
		res := dec.Decode(m.Topic, nil, m.Payload)
		if res.Err != nil {
			t.Fatalf("%s: %v", m.Topic, res.Err)
		}
		got = append(got, string(res.Value))
	}
	want := []string{
		`{"timestamp":1000,"seq":0,"metrics":[{"name":"bdSeq","datatype":"Int64","value":0},` +
			`{"name":"Node Control/Rebirth","alias":1,"datatype":"Boolean","value":false},` +
			`{"name":"Temperature","alias":2,"datatype":"Float","value":20.5}]}`,
		`{"timestamp":1001,"seq":1,"metrics":[{"name":"Temperature","alias":2,"datatype":"Float","value":21.75}]}`,
		`{"timestamp":1002,"seq":2,"metrics":[{"name":"Running","alias":10,"datatype":"Boolean","value":false},` +
			`{"name":"Count","alias":11,"datatype":"Int32","value":0}]}`,
		`{"timestamp":1003,"seq":3,"metrics":[{"name":"Running","alias":10,"datatype":"Boolean","value":true},` +
			`{"name":"Count","alias":11,"datatype":"Int32","value":3}]}`,
		`{"timestamp":1004,"seq":5,"metrics":[{"name":"Count","alias":11,"datatype":"Int32","value":-4}],"seq_gap":true}`,
		`{"timestamp":1005,"seq":6,"metrics":[]}`,
		`{"timestamp":1006,"seq":0,"metrics":[{"name":"bdSeq","datatype":"Int64","value":1},` +
			`{"name":"Pressure","alias":2,"datatype":"Double","value":1.5}]}`,
		`{"timestamp":1007,"seq":1,"metrics":[{"name":"Pressure","alias":2,"datatype":"Double","value":2.25}]}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	// Data whose birth is not in the capture.
	res := reg.NewDecoder().Decode("spBv1.0/plant/DDATA/edge1/pump1", nil, sparkplugtest.EdgeNode()[3].Payload)
	if res.Err != nil || !strings.Contains(string(res.Value), `"unresolved_alias":true`) ||
		!strings.Contains(string(res.Value), `{"alias":10,"value":true}`) {
		t.Fatalf("data without a birth: %s, %v", res.Value, res.Err)
	}
}

// FuzzDecode: no payload makes any decoder panic.
func FuzzDecode(f *testing.F) {
	for _, m := range sparkplugtest.EdgeNode() {
		f.Add(m.Payload)
	}
	f.Add(gz(&testing.T{}, []byte(`{"a":1}`)))
	f.Add([]byte{0xbf, 0x61, 0x61, 0x01, 0xff})
	reg, err := NewRegistry([]Rule{
		{"c", Format{Kind: KindCBOR}}, {"m", Format{Kind: KindMsgpack}}, {"g", Format{Encoding: "gzip", Kind: KindJSON}},
		{"z", Format{Encoding: "zlib", Kind: KindText}}, {"d", Format{Encoding: "deflate", Kind: KindCBOR}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dec := reg.NewDecoder()
		for _, topic := range []string{"c", "m", "g", "z", "d", "spBv1.0/g/NBIRTH/e", "spBv1.0/g/DDATA/e/d"} {
			res := dec.Decode(topic, nil, b)
			if res.Err == nil && !json.Valid(res.Value) {
				t.Fatalf("%s: invalid JSON %s", topic, res.Value)
			}
		}
	})
}

func timeAt() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 250e6, time.UTC) }

// TestWithStored: the command line's rules come first, the stored ones
// after; stored descriptors decode without the .proto; what cannot be
// used is left out with a note.
func TestWithStored(t *testing.T) {
	s := loadTestSchema(t)
	set, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	flags, _ := NewRegistry(mustRules(t, "a/#=msgpack"), nil)
	reg, notes := flags.WithStored([]string{"a/#=cbor", "pb/#=protobuf:acme.v1.Reading", "x/#=protobuf:acme.v1.Gone", "bad"}, set)
	if len(notes) != 2 || !strings.Contains(notes[0], "acme.v1.Gone") || !strings.Contains(notes[1], `"bad"`) {
		t.Errorf("notes %q", notes)
	}
	if f, _ := reg.Select("a/1", nil); f.Kind != KindMsgpack {
		t.Errorf("a/1 decodes as %s: the command line must win", f)
	}
	res := reg.NewDecoder().Decode("pb/1", nil, encodeReading(t, s, "s-3", 1, 2))
	if res.Err != nil || !strings.Contains(string(res.Value), `"sensor_id":"s-3"`) {
		t.Errorf("stored protobuf: %s %v", res.Value, res.Err)
	}
	_, notes = flags.WithStored(nil, []byte("not a descriptor set"))
	if len(notes) != 1 || !strings.Contains(notes[0], "descriptors are not used") {
		t.Errorf("bad descriptors: %q", notes)
	}
}

func TestSummary(t *testing.T) {
	for _, c := range []struct {
		value string
		max   int
		want  string
	}{
		{`{"seq":3,"metrics":[{"name":"Temperature","alias":10,"datatype":"Double","value":21.75},{"name":"Running","value":true},` +
			`{"alias":12,"value":3},{"name":"Mode","value":"auto"}]}`, 0, `Temperature=21.75 Running=true #12=3 Mode="auto"`},
		{`{"seq":0,"metrics":[]}`, 0, `{"seq":0,"metrics":[]}`},
		{"{\n  \"celsius\": 21.5,\n  \"ok\": true\n}", 0, `{"celsius":21.5,"ok":true}`},
		{`[1, 2, 3]`, 0, `[1,2,3]`},
		{`"überlang"`, 5, `"übe…`},
		{`not json`, 0, ``},
	} {
		if got := Summary(json.RawMessage(c.value), c.max); got != c.want {
			t.Errorf("Summary(%s, %d) = %q, want %q", c.value, c.max, got, c.want)
		}
	}
}

// TestDescriptorSetOfMessage: one message type's FileDescriptorSet holds its
// file and everything it imports, imports first, and loads on its own;
// a gzip+protobuf message's Result carries the decompressed protobuf bytes
// and the schema that describes them, a failed one neither.
func TestDescriptorSetOfMessage(t *testing.T) {
	s := loadTestSchema(t)
	b, err := s.DescriptorSet("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range set.File {
		names = append(names, f.GetName())
	}
	if got := strings.Join(names, " "); got != "google/protobuf/timestamp.proto units.proto reading.proto" {
		t.Fatalf("files %s", got)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("the set does not stand alone: %v", err)
	}
	if _, err := files.FindDescriptorByName("acme.v1.Reading"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DescriptorSet("acme.v1.Nope"); !errors.Is(err, ErrBadFormat) {
		t.Fatalf("unknown message: %v", err)
	}

	reg, err := NewRegistry(mustRules(t, "r/#=gzip+protobuf:acme.v1.Reading"), s)
	if err != nil {
		t.Fatal(err)
	}
	pb := encodeReading(t, s, "s-1", 21.5, 3)
	res := reg.NewDecoder().Decode("r/1", nil, gz(t, pb))
	if res.Err != nil || !bytes.Equal(res.Raw, pb) || res.Schema != s {
		t.Fatalf("decoded: raw %x schema %v err %v", res.Raw, res.Schema, res.Err)
	}
	bad := reg.NewDecoder().Decode("r/1", nil, gz(t, []byte{0xff}))
	if bad.Err == nil || bad.Raw != nil || bad.Schema != nil {
		t.Fatalf("undecodable: raw %x schema %v err %v", bad.Raw, bad.Schema, bad.Err)
	}
}
