package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// DecodeFunc decodes a message's payload for the detail pane (mqtape's
// decoder registry behind it). format names the binary or compressed
// decoder that applies ("sparkplug", "gzip+cbor"), "" when none does.
type DecodeFunc func(ctx context.Context, m *storage.Message) (value []byte, format string, err error)

// decodedView renders the decoded value of m for the auto view: ok is
// false when no decoder applies (the payload is shown as recorded). v still
// cycles to the recorded JSON, text and hex.
func (u *UI) decodedView(m *storage.Message) (text, label string, ok bool) {
	if u.opts.Decode == nil || u.view != viewAuto {
		return "", "", false
	}
	ctx, cancel := context.WithTimeout(u.ctx, 2*time.Second)
	defer cancel()
	value, format, err := u.opts.Decode(ctx, m)
	switch {
	case format == "":
		return "", "", false
	case err != nil:
		hex, _ := renderPayload(m.Payload, viewHex)
		return "decode_error: " + err.Error() + "\n\n" + hex, format + " failed, hex (auto)", true
	}
	var buf bytes.Buffer
	if json.Indent(&buf, value, "", "  ") != nil {
		return "", "", false
	}
	return capText(buf.Bytes(), buf.Len()), "decoded " + format + " (auto)", true
}
