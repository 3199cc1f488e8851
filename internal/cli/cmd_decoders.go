package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

const decodersUsage = `decoders [--json] FILE
       mqtape decoders set FILE --decode FILTER=FORMAT… [--proto FILE…] [--proto-path DIR…]

List the payload decoders a capture carries: its --decode map (first match
wins) and the protobuf message types of the descriptors stored with it.
mqtape record --decode/--proto stores them; 'decoders set' stores them into
an existing capture, replacing what it carried, and touches nothing else
(an older capture is migrated to the current format first). Readers
(export) apply them after any --decode on their own command line.

` + decodeFlagsHelp

const decodersExamples = `  mqtape decoders capture.db
  mqtape decoders set capture.db --decode 'acme/#=protobuf:acme.v1.Reading' --proto protos/reading.proto
  mqtape decoders set capture.db --decode 'sensors/+/cbor=cbor' --decode 'logs/#=gzip+json'
  mqtape decoders --json capture.db | jq '.decoders'
`

type decodersOptions struct {
	set      bool
	json     bool
	decoders decodeFlags
	file     string
}

func parseDecoders(args []string, cio *cliIO) (decodersOptions, error) {
	var o decodersOptions
	fs := newFlagSet("decoders", decodersUsage, decodersExamples, cio)
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	o.decoders.register(fs)
	if len(args) > 0 && args[0] == "set" {
		o.set, args = true, args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.set && !o.decoders.given():
		return o, usagef("decoders set: nothing to store: give --decode FILTER=FORMAT or --proto FILE")
	case !o.set && o.decoders.given():
		return o, usagef("--decode and --proto store decoders only with 'mqtape decoders set FILE'")
	}
	var err error
	o.file, err = oneFile(fs)
	return o, err
}

// decodersInfo is the JSON form of mqtape decoders.
type decodersInfo struct {
	File         string            `json:"file"`
	Decoders     []decoderRuleInfo `json:"decoders"`
	ProtoFiles   []string          `json:"proto_files"`
	MessageTypes []string          `json:"message_types"`
}

type decoderRuleInfo struct {
	Filter string `json:"filter"`
	Format string `json:"format"`
}

func cmdDecoders(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseDecoders(args, cio)
	if err != nil {
		return err
	}
	if o.set {
		return setDecoders(ctx, o, cio)
	}
	c, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := c.Decoders(ctx)
	if err != nil {
		return err
	}
	info := decodersInfo{File: o.file, Decoders: []decoderRuleInfo{}, ProtoFiles: []string{}, MessageTypes: []string{}}
	for _, r := range d.Rules {
		info.Decoders = append(info.Decoders, decoderRuleInfo(r))
	}
	if len(d.DescriptorSet) > 0 {
		schema, err := decode.UnmarshalSchema(d.DescriptorSet)
		if err != nil {
			return fmt.Errorf("read the decoders of %q: %w", o.file, err)
		}
		info.ProtoFiles, info.MessageTypes = schema.Files(), schema.Messages()
	}
	if o.json {
		return writeJSON(cio.stdout, info)
	}
	return printDecoders(cio, info)
}

func printDecoders(cio *cliIO, info decodersInfo) error {
	w := cio.stdout
	if len(info.Decoders) == 0 && len(info.ProtoFiles) == 0 {
		fmt.Fprintf(w, "%s carries no decoders (store some: mqtape decoders set %s --decode FILTER=FORMAT)\n", info.File, info.File)
	} else {
		fmt.Fprintf(w, "decode map of %s (first match wins; --decode on the command line comes first):\n", info.File)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, r := range info.Decoders {
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, r.Filter, r.Format)
		}
		tw.Flush()
		if len(info.ProtoFiles) > 0 {
			fmt.Fprintf(w, "protobuf files: %s\n", strings.Join(info.ProtoFiles, ", "))
			fmt.Fprintf(w, "message types: %s\n", strings.Join(info.MessageTypes, ", "))
		}
	}
	_, err := fmt.Fprintln(w, "built in: Sparkplug B for spBv1.0/… topics; the MQTT 5 content type of each message")
	return err
}

// setDecoders stores the flags' decoders in an existing capture: one
// that mqtape can read (a missing, empty or foreign file is refused
// untouched), replacing what it carried.
func setDecoders(ctx context.Context, o decodersOptions, cio *cliIO) error {
	d, err := o.decoders.toStore(ctx)
	if err != nil {
		return err
	}
	r, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	r.Close()
	c, err := storage.OpenWrite(o.file)
	if err != nil {
		return err
	}
	if err := c.SetDecoders(ctx, *d); err != nil {
		c.Close()
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	fmt.Fprintf(cio.stderr, "stored %s and %s in %s\n", humanize.Count(int64(len(d.Rules)), "decoder", "decoders"),
		humanize.Count(int64(len(d.Files)), "protobuf file", "protobuf files"), o.file)
	return nil
}
