package recorder

import (
	"strings"
	"testing"

	"github.com/mqtape/mqtape/storage"
)

// TestDropEventSingular: the first message dropped for a full queue is
// recorded as "1 message dropped", not "1 messages".
func TestDropEventSingular(t *testing.T) {
	p := newPipeline(Config{QueueLen: 1})
	p.drop(item{m: storage.Message{Topic: "a/b"}}, "writer behind for 1s (queue full)")
	if len(p.events) != 1 || !strings.Contains(p.events[0].Detail, ": 1 message dropped so far (last topic \"a/b\")") {
		t.Errorf("events = %+v", p.events)
	}
}
