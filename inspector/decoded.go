package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// DecodeFunc decodes a message's payload with mqtape's decoder registry
// (for the detail pane, the payload column, the / filter and the plots).
// The error is about reading the capture; a decoder that fails on the
// payload gives Result.Err.
type DecodeFunc func(ctx context.Context, m *storage.Message) (decode.Result, error)

// decodeTimeout bounds one decoding for the UI (Sparkplug births read on
// first use included).
const decodeTimeout = 2 * time.Second

// binaryDecoded decodes m with the options' decoder: ok when a binary or
// compressed decoder was selected for it (its value or its error is then
// what the payload means).
func (u *UI) binaryDecoded(ctx context.Context, m *storage.Message) (res decode.Result, ok bool) {
	if u.opts.Decode == nil {
		return res, false
	}
	res, err := u.opts.Decode(ctx, m)
	if err != nil || !res.Selected || !res.Format.Binary() {
		return res, false
	}
	return res, true
}

// queryValue is what the / filter's .PATH and metric: terms and the field
// plots read: the decoded value, else the payload (JSON when it parses),
// as export --where reads it.
func queryValue(ctx context.Context, dec DecodeFunc, m *storage.Message) []byte {
	if dec == nil {
		return m.Payload
	}
	if res, err := dec(ctx, m); err == nil && res.Value != nil {
		return res.Value
	}
	return m.Payload
}

// decodedView renders the decoded value of m for the auto view: ok is
// false when no decoder applies (the payload is shown as recorded). v still
// cycles to the recorded JSON, text and hex.
func (u *UI) decodedView(m *storage.Message) (text, label string, ok bool) {
	if u.view != viewAuto {
		return "", "", false
	}
	ctx, cancel := context.WithTimeout(u.ctx, decodeTimeout)
	defer cancel()
	res, ok := u.binaryDecoded(ctx, m)
	switch {
	case !ok:
		return "", "", false
	case res.Err != nil:
		hex, _ := renderPayload(m.Payload, viewHex)
		return "decode_error: " + res.Err.Error() + "\n\n" + hex, res.Format.String() + " failed, hex (auto)", true
	}
	var buf bytes.Buffer
	if json.Indent(&buf, res.Value, "", "  ") != nil {
		return "", "", false
	}
	return capText(buf.Bytes(), buf.Len()), "decoded " + res.Format.String() + " (auto)", true
}
