package cli

import (
	"slices"
	"testing"
)

func TestParseKeys(t *testing.T) {
	got := parseKeys([]byte(" \x1b[C+=-_\x1bOCq\x03\x1b[Dx"))
	want := []keyAction{keyTogglePause, keyStep, keyFaster, keyFaster, keySlower, keySlower, keyStep, keyInterrupt, keyInterrupt}
	if !slices.Equal(got, want) {
		t.Errorf("parseKeys = %v, want %v", got, want)
	}
}
