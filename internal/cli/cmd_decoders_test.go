package cli

import (
	"errors"
	"slices"
	"testing"
)

func TestParseDecoders(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   func(o decodersOptions) bool // nil: a usage error
	}{
		{[]string{"c.db"}, func(o decodersOptions) bool { return !o.set && o.file == "c.db" }},
		{[]string{"--json", "c.db"}, func(o decodersOptions) bool { return o.json && o.file == "c.db" }},
		{[]string{"set", "c.db", "--decode", "a/#=cbor", "--decode", "b=gzip+json", "--proto", "r.proto", "--proto-path", "inc"},
			func(o decodersOptions) bool {
				return o.set && o.file == "c.db" && slices.Equal(o.decoders.rules, []string{"a/#=cbor", "b=gzip+json"}) &&
					slices.Equal(o.decoders.protos, []string{"r.proto"}) && slices.Equal(o.decoders.protoPaths, []string{"inc"})
			}},
		{[]string{"./set"}, func(o decodersOptions) bool { return !o.set && o.file == "./set" }},
		{[]string{"set", "c.db"}, nil},                         // nothing to store
		{[]string{"--decode", "a=json", "c.db"}, nil},          // storing needs 'set'
		{[]string{"set", "a.db", "b.db", "--proto", "x"}, nil}, // one file
		{nil, nil},
	} {
		o, err := parseDecoders(tc.args, testIO())
		var ue usageError
		switch {
		case tc.ok == nil && !errors.As(err, &ue):
			t.Errorf("%q: %v, want a usage error", tc.args, err)
		case tc.ok != nil && (err != nil || !tc.ok(o)):
			t.Errorf("%q: %+v, %v", tc.args, o, err)
		}
	}
}

func TestParseExportDecodeFlags(t *testing.T) {
	o, err := parseExport([]string{"--decode", "spBv1.0/#=json", "--proto", "a.proto", "c.db"}, testIO())
	if err != nil || !slices.Equal(o.decoders.rules, []string{"spBv1.0/#=json"}) || o.noDecode {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseExport([]string{"--no-decode", "c.db"}, testIO())
	if err != nil || !o.noDecode {
		t.Fatalf("%+v %v", o, err)
	}
	var ue usageError
	if _, err := parseExport([]string{"--no-decode", "--proto", "a.proto", "c.db"}, testIO()); !errors.As(err, &ue) {
		t.Fatalf("--no-decode with --proto: %v", err)
	}
}
