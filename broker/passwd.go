package broker

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"golang.org/x/crypto/bcrypt"
)

// ErrPasswd is wrapped by password file errors.
var ErrPasswd = errors.New("password file")

// Passwords checks client credentials against a password file. Each line is
// "user:hash", where hash is one of:
//
//   - $7$ITER$SALT$HASH — mosquitto_passwd (mosquitto 2.x): PBKDF2-HMAC-SHA512,
//     salt and hash in base64;
//   - $6$SALT$HASH — mosquitto 1.x: SHA-512 of password+salt, base64;
//   - $2a$, $2b$ or $2y$ — bcrypt (e.g. htpasswd -B, or any bcrypt tool).
//
// Blank lines and lines starting with # are ignored. Plain-text passwords
// are refused: a password file must not hold them.
type Passwords struct {
	mochi.HookBase
	users map[string]string
}

// LoadPasswords reads a password file.
func LoadPasswords(path string) (*Passwords, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPasswd, err)
	}
	p := &Passwords{users: make(map[string]string)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%w %s line %d: want user:hash", ErrPasswd, path, n)
		}
		if !strings.HasPrefix(hash, "$7$") && !strings.HasPrefix(hash, "$6$") && !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%w %s line %d: unknown hash for %q (use mosquitto_passwd or bcrypt; plain text is refused)", ErrPasswd, path, n, user)
		}
		p.users[user] = hash
	}
	if len(p.users) == 0 {
		return nil, fmt.Errorf("%w %s: no users", ErrPasswd, path)
	}
	return p, nil
}

// Check reports whether password is right for user.
func (p *Passwords) Check(user, password string) bool {
	hash, ok := p.users[user]
	if !ok {
		return false
	}
	switch {
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	case strings.HasPrefix(hash, "$7$"):
		parts := strings.Split(hash, "$") // "", "7", iter, salt, hash
		if len(parts) != 5 {
			return false
		}
		iter, err1 := strconv.Atoi(parts[2])
		salt, err2 := base64.StdEncoding.DecodeString(parts[3])
		want, err3 := base64.StdEncoding.DecodeString(parts[4])
		if err1 != nil || err2 != nil || err3 != nil || iter < 1 {
			return false
		}
		got, err := pbkdf2.Key(sha512.New, password, salt, iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	case strings.HasPrefix(hash, "$6$"):
		parts := strings.Split(hash, "$") // "", "6", salt, hash
		if len(parts) != 4 {
			return false
		}
		salt, err1 := base64.StdEncoding.DecodeString(parts[2])
		want, err2 := base64.StdEncoding.DecodeString(parts[3])
		if err1 != nil || err2 != nil {
			return false
		}
		sum := sha512.Sum512(append([]byte(password), salt...))
		return subtle.ConstantTimeCompare(sum[:], want) == 1
	}
	return false
}
