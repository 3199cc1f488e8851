package export

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// TestBinaryFormatsCarryDecoded: Parquet's decoded column and MCAP's
// message hold the value a binary decoder read; a plain JSON payload, a
// failed decoder and no decoder leave decoded null and MCAP the payload.
func TestBinaryFormatsCarryDecoded(t *testing.T) {
	cbor := decode.Format{Kind: decode.KindCBOR}
	cases := []struct {
		res         decode.Result
		wantDecoded string // "" null
		wantMCAP    string
	}{
		{decode.Result{Selected: true, Format: cbor, Value: []byte(`{"celsius":21.5}`)}, `{"celsius":21.5}`, `{"celsius":21.5}`},
		{decode.Result{Selected: true, Format: cbor, Value: []byte(`[1,2]`)}, `[1,2]`, `{"value":[1,2]}`},
		{decode.Result{Selected: true, Format: decode.Format{Kind: decode.KindJSON}, Value: []byte(`{"a":1}`)}, "", `{"base64":"oWFhAQ=="}`},
		{decode.Result{Selected: true, Format: cbor, Err: errTest}, "", `{"base64":"oWFhAQ=="}`},
		{decode.Result{}, "", `{"base64":"oWFhAQ=="}`},
	}
	payload := []byte{0xa1, 0x61, 0x61, 0x01} // CBOR {"a":1}
	var buf bytes.Buffer
	pw := NewParquetWriter(&buf, "test")
	mw, err := NewMCAPWriter(new(bytes.Buffer), "test")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		m := storage.Message{Seq: int64(i + 1), Session: 1, Topic: "sensors/cbor", Payload: payload}
		if err := pw.Write(&m, c.res); err != nil {
			t.Fatal(err)
		}
		if got := string(mw.message(payload, c.res)); got != c.wantMCAP {
			t.Errorf("case %d: MCAP message %s, want %s", i, got, c.wantMCAP)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[ParquetRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(cases) {
		t.Fatalf("%d rows, want %d", len(rows), len(cases))
	}
	for i, c := range cases {
		got := ""
		if rows[i].Decoded != nil {
			got = *rows[i].Decoded
		}
		if got != c.wantDecoded {
			t.Errorf("case %d: decoded %q, want %q", i, got, c.wantDecoded)
		}
	}
}

var errTest = testError("cbor: unexpected EOF")

type testError string

func (e testError) Error() string { return string(e) }
