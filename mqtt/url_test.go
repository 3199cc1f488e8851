package mqtt

import (
	"errors"
	"strings"
	"testing"
)

// TestParseBrokerNeverEchoesPassword: whatever is wrong with a URL that
// holds a password, the error quotes the URL without it (and no piece of
// it), and still says what is wrong.
func TestParseBrokerNeverEchoesPassword(t *testing.T) {
	const pw = "S3cr-et9"
	for _, c := range []struct{ url, reason string }{
		{"mqtt://bob:" + pw + "@127.0.0.1:1883", "password in the URL"},
		{"gopher://bob:" + pw + "@127.0.0.1:1883", "unknown scheme"},
		{"mqtt://bob:" + pw + "@:1883", "password in the URL"},
		{"mqtt://bob:" + pw + "@host:99999", "password in the URL"},
		{"mqtt://bob:" + pw + "@host:1883 x", "cannot be parsed"},
		{"mqtt://bob:" + pw + "%zz@host", "cannot be parsed"},
		{"mqtt://bob:S3cr/et9@host:1883", "cannot be parsed"}, // '/' ends the authority for url.Parse
		{"bob:" + pw + "@host:x", "cannot be parsed"},
		{"mqtt://bob:" + pw + "@ho st", "cannot be parsed"},
	} {
		_, err := ParseBroker(c.url)
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParseBroker(%q) = %v, want %q", c.url, err, c.reason)
			continue
		}
		for _, piece := range []string{pw, "S3cr", "et9"} {
			if strings.Contains(err.Error(), piece) {
				t.Errorf("ParseBroker(%q): the error shows %q: %v", c.url, piece, err)
			}
		}
	}
	// Without a password the URL is quoted as given.
	if _, err := ParseBroker("mqtt://bob@host:99999"); err == nil || !strings.Contains(err.Error(), `"mqtt://bob@host:99999"`) {
		t.Errorf("no password: %v", err)
	}
}
