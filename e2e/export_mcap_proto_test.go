package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestExportMCAPProtobuf: a capture recorded over a real broker, with
// protobuf and gzip'd protobuf publishers, exported to MCAP with --decode
// and --proto and read by @mcap/core: the topics whose messages decode are
// protobuf channels with one protobuf schema named acme.v1.Reading whose
// FileDescriptorSet loads on its own, and every message on them decodes
// with that schema (as many as JSON export decodes); the payloads that do
// not decode are on json channels.
func TestExportMCAPProtobuf(t *testing.T) {
	node := nodeWith(t, "@mcap/core")
	path, protoFile, _ := recordDecodeCapture(t)
	dec := []string{"--decode", "acme/pb/#=protobuf:acme.v1.Reading", "--decode", "acme/gz/#=gzip+protobuf:acme.v1.Reading",
		"--proto", protoFile}
	out := filepath.Join(t.TempDir(), "pb.mcap")
	code, _, stderr := runCLI(t, context.Background(), append(append([]string{"export", "--format", "mcap", "-o", out}, dec...), path)...)
	if code != exitOK {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	f := readMCAP(t, node, out)
	if len(f.Schemas) != 1 || f.Schemas[0].Name != "acme.v1.Reading" || f.Schemas[0].Encoding != "protobuf" {
		t.Fatalf("schemas: %+v", f.Schemas)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(f.Schemas[0].Data, &set); err != nil {
		t.Fatalf("schema data is not a FileDescriptorSet: %v", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("schema data does not stand alone: %v", err)
	}
	d, err := files.FindDescriptorByName("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	md := d.(protoreflect.MessageDescriptor)

	pbChannels := map[int]bool{}
	for _, c := range f.Channels {
		isPB := c.Encoding == "protobuf" && c.Schema == f.Schemas[0].ID
		want := c.Topic == "acme/pb/1" || c.Topic == "acme/gz/1"
		if isPB != want || !isPB && (c.Encoding != "json" || c.Schema != 0) {
			t.Errorf("channel %q: encoding %q schema %d", c.Topic, c.Encoding, c.Schema)
		}
		pbChannels[c.ID] = isPB
	}
	decoded := 0
	for _, m := range f.Indexed {
		if !pbChannels[m.Channel] {
			continue
		}
		r := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(m.Data, r); err != nil || r.Get(md.Fields().ByName("sensor_id")).String() != "s-1" ||
			r.Get(md.Fields().ByName("celsius")).Float() != 21.75 {
			t.Errorf("message %d on channel %d: %v %v", m.Sequence, m.Channel, r, err)
			continue
		}
		decoded++
	}
	want := 0
	for _, r := range exportLines(t, append(dec, path)...) {
		if strings.HasPrefix(r["topic"].(string), "acme/") && r["decode_error"] == nil {
			want++
		}
	}
	if decoded != want || want != 2 {
		t.Errorf("%d messages decode with the MCAP schema; JSON export decodes %d (want 2)", decoded, want)
	}
}
