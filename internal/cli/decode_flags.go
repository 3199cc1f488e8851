package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// decodeFlags choose payload decoders: --decode FILTER=FORMAT (first match
// wins), --proto FILE and --proto-path DIR.
type decodeFlags struct {
	rules      []string
	protos     []string
	protoPaths []string
}

const decodeFlagsHelp = `Payload decoders (--decode, --proto): a message is decoded by the first
--decode FILTER=FORMAT whose filter matches its topic; else as Sparkplug B
when its topic is in the spBv1.0/ namespace; else as its MQTT 5 content type
says (application/json, application/cbor, application/msgpack,
application/x-protobuf; messageType=NAME); else as before (JSON if it parses,
text if UTF-8, hex). FORMAT is json, text, cbor, msgpack, sparkplug or
protobuf:FULL.MESSAGE.NAME, optionally after a content encoding: gzip+json,
zlib+cbor, deflate+protobuf:acme.v1.Reading. --proto compiles .proto files
(google/protobuf/*.proto are built in) or reads a FileDescriptorSet
(protoc --include_imports --descriptor_set_out=FILE).`

func (d *decodeFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&d.rules, "decode", nil, "decode payloads on topics matching FILTER as FORMAT: FILTER=FORMAT (repeatable, first match wins)")
	fs.StringArrayVar(&d.protos, "proto", nil, "a .proto file to compile, or a FileDescriptorSet, for protobuf:NAME (repeatable)")
	fs.StringArrayVar(&d.protoPaths, "proto-path", nil, "a directory to find the imports of --proto files in (repeatable)")
}

// registry compiles the flags into a decoder registry. A bad FORMAT, a
// .proto that does not compile or an unknown message type is a usage
// error naming it.
func (d *decodeFlags) registry(ctx context.Context) (*decode.Registry, error) {
	rules, err := decode.ParseRules(d.rules)
	if err != nil {
		return nil, usageError{fmt.Errorf("--decode %w", err)}
	}
	schema, err := decode.LoadSchema(ctx, d.protos, d.protoPaths)
	if err != nil {
		return nil, usageError{err}
	}
	reg, err := decode.NewRegistry(rules, schema)
	if err != nil {
		return nil, usageError{fmt.Errorf("--decode %w", err)}
	}
	return reg, nil
}

// given reports whether any decoder flag was given.
func (d *decodeFlags) given() bool { return len(d.rules) > 0 || len(d.protos) > 0 }

// withCapture adds the decoders the capture carries after the flags' (the
// command line wins), noting on stderr what of them cannot be used.
func withCapture(ctx context.Context, reg *decode.Registry, c *storage.Capture, stderr io.Writer) (*decode.Registry, error) {
	stored, err := c.Decoders(ctx)
	if err != nil || stored.IsEmpty() {
		return reg, err
	}
	rules := make([]string, len(stored.Rules))
	for i, r := range stored.Rules {
		rules[i] = r.Filter + "=" + r.Format
	}
	reg, notes := reg.WithStored(rules, stored.DescriptorSet)
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	return reg, nil
}

// toStore compiles the flags into what a capture keeps (nil: no flags).
func (d *decodeFlags) toStore(ctx context.Context) (*storage.Decoders, error) {
	if !d.given() {
		return nil, nil
	}
	reg, err := d.registry(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := storedDecoders(reg)
	return &stored, err
}

// storedDecoders is what a registry holds, as a capture keeps it.
func storedDecoders(reg *decode.Registry) (storage.Decoders, error) {
	var d storage.Decoders
	for _, r := range reg.Rules() {
		d.Rules = append(d.Rules, storage.DecoderRule{Filter: r.Filter, Format: r.Format.String()})
	}
	if reg.Schema().Len() == 0 {
		return d, nil
	}
	set, err := reg.Schema().Marshal()
	if err != nil {
		return d, fmt.Errorf("store the protobuf descriptors: %w", err)
	}
	d.DescriptorSet, d.Files = set, reg.Schema().Files()
	return d, nil
}
