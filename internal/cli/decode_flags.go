package cli

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/mqtape/mqtape/decode"
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
