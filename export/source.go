package export

import (
	"context"
	"iter"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// DecodedSource reads a capture with each payload that a binary or
// compressed decoder read replaced by its decoded value (JSON text), so
// that diff compares decoded values field by field. Payloads nothing
// decoded, or whose decoder failed, stay as recorded.
type DecodedSource struct {
	Capture  *storage.Capture
	Registry *decode.Registry
}

// Messages yields the messages q selects, decoded, in seq order.
func (s DecodedSource) Messages(ctx context.Context, q storage.Query) iter.Seq2[storage.Message, error] {
	return func(yield func(storage.Message, error) bool) {
		for d, err := range Decode(ctx, s.Capture, q, s.Registry) {
			if !yield(decodedMessage(d), err) || err != nil {
				return
			}
		}
	}
}

// Get returns one message, decoded. A Sparkplug message's aliases resolve
// from the births before it, which are read again for each call.
func (s DecodedSource) Get(ctx context.Context, seq int64) (storage.Message, error) {
	for d, err := range Decode(ctx, s.Capture, storage.Query{AfterSeq: seq - 1, Limit: 1}, s.Registry) {
		if err != nil {
			return storage.Message{}, err
		}
		if d.Seq == seq {
			return decodedMessage(d), nil
		}
	}
	return s.Capture.Get(ctx, seq) // its not-found error
}

// Payload calls fn with the payload of message seq as recorded: diff reads
// payloads over its size limit (Query.MaxPayload) this way and compares
// them byte by byte, never decoded.
func (s DecodedSource) Payload(ctx context.Context, seq int64, fn func(p []byte) error) error {
	return s.Capture.Payload(ctx, seq, fn)
}

func decodedMessage(d Decoded) storage.Message {
	m := d.Message
	if m.PayloadOmitted {
		return m // read apart with Payload, as recorded
	}
	if r := d.Result; r.Err == nil && r.Selected && r.Format.Binary() && r.Value != nil {
		m.Payload = r.Value
	}
	return m
}
