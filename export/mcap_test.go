package export

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// TestMCAPChannelLimit: MCAP channel ids are 16-bit; the 65,537th channel
// is a clear error, not a wrapped id that mislabels messages.
func TestMCAPChannelLimit(t *testing.T) {
	w, err := NewMCAPWriter(io.Discard, "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1 << 16 {
		if err := w.Write(&storage.Message{Seq: int64(i + 1), Topic: fmt.Sprintf("t/%d", i), Payload: []byte("1")}, decode.Result{}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	err = w.Write(&storage.Message{Seq: 1 << 16, Topic: "one/more", Payload: []byte("1")}, decode.Result{})
	if err == nil || !strings.Contains(err.Error(), "MCAP channel ids are 16-bit") {
		t.Errorf("channel 65,537: %v", err)
	}
}
