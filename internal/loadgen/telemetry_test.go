package loadgen

import "testing"

// TestTelemetryParses: Telemetry payloads are about 120 bytes, differ from
// message to message and carry their device and sequence number.
func TestTelemetryParses(t *testing.T) {
	seen := map[string]bool{}
	for i := range 200 {
		p := Telemetry(7, i)
		if len(p) < 100 || len(p) > 140 {
			t.Errorf("message %d is %d bytes: %s", i, len(p), p)
		}
		if d, n, ok := ParsePayload(p); !ok || d != 7 || n != i {
			t.Errorf("ParsePayload(%s) = %d, %d, %v", p, d, n, ok)
		}
		seen[string(p[len(`{"device":"dev-007","seq":`)+4:])] = true
	}
	if len(seen) < 190 {
		t.Errorf("only %d different readings in 200 messages", len(seen))
	}
	t.Log(string(Telemetry(7, 1234)))
}
