package broker

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswords(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// alice's line was written by `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11).
	file := "# users\n" +
		"alice:$7$101$NT8I35yieJo8FOTs$euCm6w/BoCY0NPRZgVTs50n8aBe/nGo11Rncowlr6DzR70aIxeLkDj5kqxV4chhitNbCqL6pjr5JxCfTHYb3mQ==\n" +
		"\n" +
		"bob:" + string(bc) + "\n"
	path := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(path, []byte(file), 0o600)
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "secret", true},
		{"alice", "Secret", false},
		{"bob", "hunter2", true},
		{"bob", "secret", false},
		{"carol", "secret", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := p.Check(tt.user, tt.pass); got != tt.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.pass, got, tt.ok)
		}
	}
	for name, bad := range map[string]string{"plain": "dave:plaintext\n", "empty": "# nothing\n", "nocolon": "eve\n"} {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := LoadPasswords(p); !errors.Is(err, ErrPasswd) {
			t.Errorf("%s: err = %v, want ErrPasswd", name, err)
		}
	}
}
