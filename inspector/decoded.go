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

// Payload column limits: the decoded text's length, and the largest
// payload a page decodes for it (larger ones show as recorded).
const (
	summaryRunes  = 200
	maxSummarized = 64 << 10
)

// decodeColumn has m's pages decode the payload column (with a decoder).
func (u *UI) decodeColumn(m *model) {
	if u.opts.Decode != nil {
		m.summarize = u.summarizeRows
	}
}

// summarizeRows decodes a page's rows for the payload column: one read of
// their whole messages, then each through the decoder. A row a binary or
// compressed decoder reads gets its value on one line (Sparkplug B as
// Temperature=21.75 Running=true), or ⟨FORMAT failed: …⟩.
func (u *UI) summarizeRows(ctx context.Context, rows []storage.Row) map[int64]string {
	out := map[int64]string{}
	var seqs []int64
	for _, r := range rows {
		if r.Size > 0 && r.Size <= maxSummarized && (u.opts.MayDecode == nil || u.opts.MayDecode(r.Topic)) {
			seqs = append(seqs, r.Seq)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, decodeTimeout)
	defer cancel()
	for m, err := range u.c.MessagesBySeq(ctx, seqs) {
		if err != nil {
			break // the rows show their payloads as recorded
		}
		res, ok := u.binaryDecoded(ctx, &m)
		switch {
		case !ok:
		case res.Err != nil:
			out[m.Seq] = "⟨" + res.Err.Error() + "⟩"
		default:
			out[m.Seq] = decode.Summary(res.Value, summaryRunes)
		}
	}
	return out
}
