package storage

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

// TestDecodersStoredAndReplaced: a version 1 capture migrates when its
// decoders are set, reads them back, and a second set replaces them
// without touching the messages.
func TestDecodersStoredAndReplaced(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, path)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := r.Decoders(ctx); err != nil || !d.IsEmpty() {
		t.Fatalf("a v1 capture carries %+v, %v", d, err)
	}
	r.Close()

	set := func(d Decoders) {
		t.Helper()
		w, err := OpenWrite(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetDecoders(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (Decoders, []Message) {
		t.Helper()
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		d, err := r.Decoders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := r.Page(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Version() != FormatVersion {
			t.Fatalf("version %d after SetDecoders", r.Version())
		}
		return d, msgs
	}
	first := Decoders{Rules: []DecoderRule{{"acme/#", "protobuf:acme.v1.Reading"}, {"a/=b", "gzip+cbor"}},
		DescriptorSet: []byte{0x0a, 0x02, 0x08, 0x01}, Files: []string{"reading.proto"}}
	set(first)
	got, msgs := read()
	if !reflect.DeepEqual(got, first) || len(msgs) != 1 || string(msgs[0].Payload) != "hi" {
		t.Fatalf("stored %+v, read %+v; messages %+v", first, got, msgs)
	}
	second := Decoders{Rules: []DecoderRule{{"#", "msgpack"}}}
	set(second)
	if got, msgs := read(); !reflect.DeepEqual(got, second) || len(msgs) != 1 {
		t.Fatalf("replaced with %+v, read %+v", second, got)
	}
}

// setDecodersAt stores d in the capture at path.
func setDecodersAt(t *testing.T, path string, d Decoders) {
	t.Helper()
	w, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetDecoders(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func decodersAt(t *testing.T, path string) Decoders {
	t.Helper()
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Decoders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCutAndMergeCarryDecoders: a cut carries its input's decoders; a merge
// carries every input's rules once, in input order, and their descriptor
// sets concatenated.
func TestCutAndMergeCarryDecoders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := writeSessions(t, filepath.Join(dir, "a.db"), testSession{info: SessionInfo{Source: "subscriber"}, msgs: []Message{at(0, "x")}})
	b := writeSessions(t, filepath.Join(dir, "b.db"), testSession{info: SessionInfo{Source: "subscriber"}, msgs: []Message{at(1, "y")}})
	da := Decoders{Rules: []DecoderRule{{"a/#", "cbor"}, {"s/#", "msgpack"}}, DescriptorSet: []byte{0x0a, 0x01, 0x41}, Files: []string{"a.proto"}}
	db := Decoders{Rules: []DecoderRule{{"s/#", "msgpack"}, {"b/#", "gzip+json"}}, DescriptorSet: []byte{0x0a, 0x01, 0x42}, Files: []string{"b.proto"}}
	setDecodersAt(t, a, da)
	setDecodersAt(t, b, db)

	cut := filepath.Join(dir, "cut.db")
	ic, oc := openPair(t, a, cut)
	if _, err := Cut(ctx, ic, oc, CutOptions{}); err != nil {
		t.Fatal(err)
	}
	oc.Close()
	if got := decodersAt(t, cut); !reflect.DeepEqual(got, da) {
		t.Errorf("cut carries %+v, want %+v", got, da)
	}

	ins := make([]*Capture, 0, 2)
	for _, p := range []string{a, b} {
		c, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ins = append(ins, c)
	}
	merged := filepath.Join(dir, "merged.db")
	mc, err := OpenWrite(merged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(ctx, ins, mc, MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	mc.Close()
	want := Decoders{Rules: []DecoderRule{{"a/#", "cbor"}, {"s/#", "msgpack"}, {"b/#", "gzip+json"}},
		DescriptorSet: []byte{0x0a, 0x01, 0x41, 0x0a, 0x01, 0x42}, Files: []string{"a.proto", "b.proto"}}
	if got := decodersAt(t, merged); !reflect.DeepEqual(got, want) {
		t.Errorf("merge carries %+v, want %+v", got, want)
	}
}
