package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
)

// TestImportMosquittoSubInterop records with the real mosquitto_sub -F %j
// (and -v) from the real mosquitto and imports what it printed.
func TestImportMosquittoSubInterop(t *testing.T) {
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto_sub is not installed (apt-get install -y mosquitto-clients)")
		}
		t.Skip("mosquitto_sub not installed")
	}
	m := testbroker.StartMosquitto(t)
	host, port, _ := strings.Cut(m.Addr, ":")
	pub := testbroker.Connect(t, m.URL())
	testbroker.Publish(t, pub, "dev/1/status", 1, true, []byte("online"))
	dir := t.TempDir()
	type run struct {
		cmd *exec.Cmd
		out string
	}
	var runs []run
	for _, format := range [][]string{{"-F", "%j"}, {"-v"}} {
		out := filepath.Join(dir, strings.TrimLeft(strings.Join(format, ""), "-%")+".txt")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		args := append([]string{"-h", host, "-p", port, "-t", "dev/#", "-q", "2", "-C", "4"}, format...)
		cmd := exec.Command(sub, args...)
		cmd.Stdout = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run{cmd, out})
	}
	// The retained message reaches each subscriber when it subscribes;
	// wait for both before publishing live.
	deadline := time.Now().Add(5 * time.Second)
	for _, r := range runs {
		for {
			b, _ := os.ReadFile(r.out)
			if len(b) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	testbroker.Publish(t, pub, "dev/1/temp", 1, false, []byte(`{"t":21.5}`))
	testbroker.Publish(t, pub, "dev/2/raw", 2, false, []byte("a\xffb"))
	testbroker.Publish(t, pub, "dev/1/status", 0, true, []byte("still online"))
	for _, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("mosquitto_sub: %v", err)
		}
	}
	ctx := context.Background()
	for i, r := range runs {
		out := filepath.Join(dir, fmt.Sprintf("out%d.db", i))
		if code, _, stderr := runCLI(t, ctx, "import", "--quiet", "--strict", r.out, "-o", out); code != 0 {
			raw, _ := os.ReadFile(r.out)
			t.Fatalf("import %s: %s\n%s", r.out, stderr, raw)
		}
		msgs, _, _ := capturetest.Read(t, out)
		var got []string
		for _, m := range msgs {
			got = append(got, fmt.Sprintf("%s=%q store=%v", m.Topic, m.Payload, m.FromStore))
		}
		want := []string{`dev/1/status="online" store=true`, `dev/1/temp="{\"t\":21.5}" store=false`, `dev/2/raw="a\xffb" store=false`,
			`dev/1/status="still online" store=false`}
		if i == 1 { // -v has no flags: nothing is known about the store
			want[0] = `dev/1/status="online" store=false`
		}
		// A QoS 0 message may overtake a QoS 2 one on its way to a
		// subscriber: compare in topic order (stable within a topic).
		byTopic := func(l []string) string {
			slices.SortStableFunc(l, func(a, b string) int {
				return strings.Compare(a[:strings.Index(a, "=")], b[:strings.Index(b, "=")])
			})
			return strings.Join(l, "\n")
		}
		if byTopic(got) != byTopic(want) {
			t.Errorf("%s:\n got %s\nwant %s", r.out, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, m := range msgs {
			qos, ok := map[string]byte{"dev/1/temp": 1, "dev/2/raw": 2}[m.Topic]
			if i == 0 && ok && (m.QoS != qos || m.TimeNS < time.Now().Add(-time.Minute).UnixNano()) {
				t.Errorf("QoS or time lost: %+v", m)
			}
		}
	}
}
