package inspector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// TestSecondExportAndWrite: e and w propose a file that does not exist yet,
// so pressing them twice writes two files instead of failing.
func TestSecondExportAndWrite(t *testing.T) {
	dir := t.TempDir()
	h := start(t, fixture(t), Options{Dir: dir}, 110, 30)
	for _, tt := range []struct {
		key   rune
		names []string
	}{
		{'e', []string{"fixture-export.jsonl", "fixture-export-2.jsonl", "fixture-export-3.jsonl"}},
		{'w', []string{"payload-1.txt", "payload-1-2.txt"}},
	} {
		for _, name := range tt.names {
			h.press(tt.key)
			var proposed string
			h.state(func(u *UI) { proposed = u.prompt.GetText() })
			if want := filepath.Join(dir, name); proposed != want {
				t.Errorf("%c proposes %q, want %q", tt.key, proposed, want)
			}
			h.press(tcell.KeyEnter)
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("%c then Enter: %v\n%s", tt.key, err, h.text())
			}
		}
	}
}

// blockingPub holds the first publish until released.
type blockingPub struct {
	started, release chan struct{}
	once             sync.Once
}

func (b *blockingPub) Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return replay.DoneToken(nil)
}

// TestPlayStatusLine: once play starts, the status line shows the play, not
// the speed question's instructions.
func TestPlayStatusLine(t *testing.T) {
	pub := &blockingPub{started: make(chan struct{}), release: make(chan struct{})}
	connect := func(ctx context.Context, b string, _ int) (replay.Publisher, func(), error) {
		return pub, func() {}, nil
	}
	h := start(t, fixture(t), Options{Connect: connect, Broker: "mqtt://127.0.0.1:1883"}, 110, 30)
	h.press('/', "empty", tcell.KeyEnter, 'p', tcell.KeyEnter)
	if !h.contains("Enter plays 1 message") {
		t.Fatalf("no speed question:\n%s", h.text())
	}
	// Enter starts the play, which stays busy until the publisher returns:
	// deliver it without waiting for background work.
	h.sync(func() { h.dispatch(tcell.NewEventKey(tcell.KeyEnter, 0, tcell.ModNone)) })
	select {
	case <-pub.started:
	case <-time.After(10 * time.Second):
		t.Fatal("play did not publish")
	}
	line := statusLine(h)
	if strings.Contains(line, "Enter plays") || !strings.Contains(line, "127.0.0.1:1883") {
		t.Errorf("status line while playing: %q", line)
	}
	close(pub.release)
	h.settle()
	if line := statusLine(h); !strings.Contains(line, "played 1 message to mqtt://127.0.0.1:1883") {
		t.Errorf("status line after the play: %q", line)
	}
}

// statusLine is the screen's status line (above the key bar).
func statusLine(h *harness) string {
	h.t.Helper()
	lines := strings.Split(strings.TrimRight(h.text(), "\n"), "\n")
	return lines[len(lines)-2]
}

// TestPropertiesDetail: MQTT 5 properties are key: value lines, user
// properties one per line in order, binary correlation data as hex.
func TestPropertiesDetail(t *testing.T) {
	format, expiry := byte(1), uint32(60)
	m := msg(time.Second, "req/dev1", 1, `{"cmd":"reboot"}`)
	m.Props = &mqtt.Properties{ContentType: "application/json", PayloadFormat: &format, MessageExpiry: &expiry,
		ResponseTopic: "reply/dev1/with/a/rather/long/topic/name", CorrelationData: []byte{0, 1, 0xfe},
		UserProperties:  []mqtt.UserProperty{{Key: "region", Value: "eu-west-1"}, {Key: "unit", Value: "°C"}, {Key: "unit", Value: "K"}},
		SubscriptionIDs: []int{3, 7}}
	text := msg(2*time.Second, "req/dev1", 1, "x")
	text.Props = &mqtt.Properties{CorrelationData: []byte("req-42")}
	h := start(t, writeCapture(t, []storage.Message{m, text}), Options{}, 90, 60)
	screen := h.text()
	for _, want := range []string{
		"MQTT 5 properties",
		"  content type: application/json",
		"  payload format: 1 (UTF-8 text)",
		"  message expiry: 60 s",
		"  response topic: reply/dev1/with/a/rather/long/topic/name",
		"  correlation data: 00 01 fe (hex, 3 bytes)",
		"  subscription ids: 3, 7",
		"  user properties:", "│    region: eu-west-1", "│    unit: °C", "│    unit: K",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("detail lacks %q:\n%s", want, screen)
		}
	}
	if a, b, c := strings.Index(screen, "region:"), strings.Index(screen, "unit: °C"), strings.Index(screen, "unit: K"); !(a < b && b < c) {
		t.Errorf("user properties out of order:\n%s", screen)
	}
	if strings.Contains(screen, "content_type") {
		t.Errorf("raw JSON properties:\n%s", screen)
	}
	h.press(tcell.KeyDown)
	if !h.contains("  correlation data: req-42") {
		t.Errorf("text correlation data:\n%s", h.text())
	}
}

// TestWriteOneByte: w on a one-byte payload says "1 byte", in the
// question and in the report.
func TestWriteOneByte(t *testing.T) {
	dir := t.TempDir()
	h := start(t, writeCapture(t, []storage.Message{msg(time.Second, "a/b", 0, "x")}), Options{Dir: dir}, 110, 20)
	h.press('w')
	if !h.contains("write the payload of seq 1 (1 byte);") {
		t.Errorf("question:\n%s", h.text())
	}
	h.press(tcell.KeyEnter)
	if !h.contains("wrote 1 byte to ") {
		t.Errorf("report:\n%s", h.text())
	}
}
