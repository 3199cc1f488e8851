package decode

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// MaxDecompressed bounds what a content encoding may expand to: a small
// compressed payload must not make mqtape allocate gigabytes.
const MaxDecompressed = 64 << 20

// decompress undoes a content encoding.
func decompress(encoding string, payload []byte) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch encoding {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(payload))
	case "zlib":
		r, err = zlib.NewReader(bytes.NewReader(payload))
	case "deflate":
		r = flate.NewReader(bytes.NewReader(payload))
	default:
		return payload, nil
	}
	if err != nil {
		return nil, encodingError(encoding, err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, encodingError(encoding, err)
	}
	if len(out) > MaxDecompressed {
		return nil, fmt.Errorf("%s: expands to more than %d MiB", encoding, MaxDecompressed>>20)
	}
	return out, nil
}

// encodingError names the encoding once: the compress packages' own
// errors already begin with it ("gzip: invalid header").
func encodingError(encoding string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: cut short: %w", encoding, err)
	}
	if strings.HasPrefix(err.Error(), encoding+": ") || encoding == "deflate" && strings.HasPrefix(err.Error(), "flate: ") {
		return err
	}
	return fmt.Errorf("%s: %w", encoding, err)
}

var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DefaultMapType:   reflect.TypeOf(map[any]any(nil)),
		MaxNestedLevels:  64,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		IntDec:           cbor.IntDecConvertNone,
		DupMapKey:        cbor.DupMapKeyQuiet,
	}.DecMode()
	if err != nil {
		panic(err) // fixed options: a programming error
	}
	return m
}()

func decodeCBOR(b []byte) (any, error) {
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
		return nil, libError("cbor: ", err)
	}
	return jsonSafe(v), nil
}

func decodeMsgpack(b []byte) (any, error) {
	// The decoder sizes maps and arrays by the lengths they declare: walk
	// the value first, so a 5-byte payload declaring a billion entries
	// fails at its end instead of allocating for them.
	r := bytes.NewReader(b)
	if err := msgpack.NewDecoder(r).Skip(); err != nil {
		return nil, libError("msgpack: ", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the first value", r.Len())
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.UseLooseInterfaceDecoding(false)
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, libError("msgpack: ", err)
	}
	return jsonSafe(v), nil
}

// libError is a codec library's error without the library's name before
// it: Decode names the format already ("cbor: unexpected EOF", not
// "cbor: cbor: unexpected EOF").
func libError(prefix string, err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), prefix))
}

// jsonSafe turns what the CBOR and MessagePack decoders return into values
// encoding/json writes faithfully: maps with string keys as objects (other
// keys as their JSON text), byte strings as base64, NaN and infinities as
// the strings "NaN", "Infinity", "-Infinity" (as protojson writes them),
// tags as {"tag": N, "value": V}.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[keyString(k)] = jsonSafe(e)
		}
		return m
	case map[string]any:
		for k, e := range x {
			x[k] = jsonSafe(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonSafe(e)
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case float32:
		return floatSafe(float64(x))
	case float64:
		return floatSafe(x)
	case cbor.Tag:
		return map[string]any{"tag": x.Number, "value": jsonSafe(x.Content)}
	case cbor.RawTag:
		return map[string]any{"tag": x.Number, "value": base64.StdEncoding.EncodeToString(x.Content)}
	case big.Int:
		return json.Number(x.String())
	case *big.Int:
		return json.Number(x.String())
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case cbor.SimpleValue:
		return map[string]any{"simple": uint8(x)}
	}
	return v
}

func floatSafe(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

func keyString(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	b, err := json.Marshal(jsonSafe(k))
	if err != nil {
		return fmt.Sprint(k)
	}
	return string(b)
}
