package storage

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestInheritSettings: a new part compresses when the part before it did
// and carries its decoders.
func TestInheritSettings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	from, err := OpenWrite(filepath.Join(dir, "p-0001.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	from.SetCompression(true)
	dec := Decoders{Rules: []DecoderRule{{Filter: "spBv1.0/#", Format: "sparkplug"}, {Filter: "b/#", Format: "gzip+json"}}}
	if err := from.SetDecoders(ctx, dec); err != nil {
		t.Fatal(err)
	}
	part, _, err := PreparePart(ctx, filepath.Join(dir, "p-0002.db"), SessionInfo{Source: "subscriber"})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if err := InheritSettings(ctx, from, part); err != nil {
		t.Fatal(err)
	}
	if !part.Compressing() {
		t.Error("the next part does not compress")
	}
	got, err := part.Decoders(ctx)
	if err != nil || !slices.Equal(got.Rules, dec.Rules) {
		t.Errorf("decoders %+v (%v), want %+v", got.Rules, err, dec.Rules)
	}
}
