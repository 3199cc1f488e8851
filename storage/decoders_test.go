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
