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
// not decode are on json channels. Two parts that carry the decoders
// themselves export with one schema record.
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
	decoded := protobufMessages(t, readMCAP(t, node, out))
	want := 0
	for _, r := range exportLines(t, append(dec, path)...) {
		if strings.HasPrefix(r["topic"].(string), "acme/") && r["decode_error"] == nil {
			want++
		}
	}
	if decoded != want || want != 2 {
		t.Errorf("%d messages decode with the MCAP schema; JSON export decodes %d (want 2)", decoded, want)
	}

	// Two parts that carry the decoders and descriptors themselves (a
	// schema each in mqtape): still one schema record.
	if code, _, stderr := runCLI(t, context.Background(), append([]string{"decoders", "set", path}, dec...)...); code != exitOK {
		t.Fatalf("decoders set: exit %d\n%s", code, stderr)
	}
	part2 := filepath.Join(t.TempDir(), "part2.db")
	if code, _, stderr := runCLI(t, context.Background(), "cut", path, "-o", part2); code != exitOK {
		t.Fatalf("cut: exit %d\n%s", code, stderr)
	}
	both := filepath.Join(t.TempDir(), "both.mcap")
	if code, _, stderr := runCLI(t, context.Background(), "export", "--format", "mcap", "-o", both, path, part2); code != exitOK {
		t.Fatalf("export of two parts: exit %d\n%s", code, stderr)
	}
	if n := protobufMessages(t, readMCAP(t, node, both)); n != 2*want {
		t.Errorf("two parts: %d messages decode with the MCAP schema, want %d", n, 2*want)
	}
}

// protobufMessages checks f's one protobuf schema (acme.v1.Reading, a
// FileDescriptorSet that loads on its own), that acme/pb/1 and acme/gz/1
// are its channels and every other topic a json channel, and decodes every
// message on them with it: it returns how many did.
func protobufMessages(t *testing.T, f mcapFile) int {
	t.Helper()
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
	return decoded
}
