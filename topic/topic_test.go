package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, name string
		want         bool
	}{
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"#", "$SYS/broker/load", false},
		{"+/broker/load", "$SYS/broker/load", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"$SYS/+/load", "$SYS/broker/load", true},
		{"a/#", "a", true},
		{"a/#", "a/b", true},
		{"a/#", "ab", false},
		{"a/+", "a", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a//c", true},
		{"+", "", true},
		{"+/+", "/", true},
		{"/+", "/a", true},
		{"+", "/a", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		{"plant/+/temp", "plant/1/temp", true},
		{"plant/+/temp", "plant/1/hum", false},
		{"wohnzimmer/temperatür", "wohnzimmer/temperatür", true},
		{"with space/+", "with space/x", true},
		{"$share/g/a/+", "a/b", true},
		{"a/b/c/d", "a/b/c", false},
		{"a/b/#", "a/b", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"~"+tt.name, func(t *testing.T) {
			if got := Match(tt.filter, tt.name); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.name, got, tt.want)
			}
		})
	}
}

func TestValidateFilter(t *testing.T) {
	valid := []string{"#", "+", "a/b", "a/+/c", "a/#", "/", "//", "+/+", "$SYS/#", "$share/grp/a/#", "ünï/cödé", "a b/c"}
	invalid := []string{"", "a#", "a/#/b", "a+", "a/b+/c", "#/a", "\x00", "a/\xff", "$share/", "$share//a", "$share/g", strings.Repeat("a", 65536)}
	for _, f := range valid {
		if err := ValidateFilter(f); err != nil {
			t.Errorf("ValidateFilter(%q) = %v, want nil", f, err)
		}
	}
	for _, f := range invalid {
		err := ValidateFilter(f)
		if !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("ValidateFilter(%.20q) = %v, want ErrInvalidFilter", f, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	if err := ValidateName("a/b c/ü"); err != nil {
		t.Errorf("valid name refused: %v", err)
	}
	for _, n := range []string{"", "a/+", "a/#", "a\x00"} {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestSet(t *testing.T) {
	var all Set
	if !all.Match("$SYS/x") {
		t.Error("empty set must match everything")
	}
	s := Set{"a/#", "b/+"}
	if !s.Match("b/x") || s.Match("c") {
		t.Error("set union wrong")
	}
}

// matchRef is an independent, slow reference implementation of matching used
// by the fuzz target.
func matchRef(f, n string) bool {
	if strings.HasPrefix(f, "$share/") {
		parts := strings.SplitN(f, "/", 3)
		if len(parts) == 3 {
			f = parts[2]
		}
	}
	fl, nl := strings.Split(f, "/"), strings.Split(n, "/")
	if len(n) > 0 && n[0] == '$' && (fl[0] == "#" || fl[0] == "+") {
		return false
	}
	for i, l := range fl {
		if l == "#" {
			return true
		}
		if i >= len(nl) {
			return false
		}
		if l != "+" && l != nl[i] {
			return false
		}
	}
	if len(nl) == len(fl) {
		return true
	}
	return len(nl) == len(fl)-1 && fl[len(fl)-1] == "#"
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"#", "a"}, {"a/+/c", "a//c"}, {"$SYS/#", "$SYS/x"}, {"a/#", "a"}, {"+/+", "/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if ValidateFilter(filter) != nil || ValidateName(name) != nil {
			return
		}
		if got, want := Match(filter, name), matchRef(filter, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", filter, name, got, want)
		}
		// A topic name used as a filter matches itself.
		if !Match(name, name) {
			t.Fatalf("name %q does not match itself", name)
		}
	})
}

func FuzzValidateFilter(f *testing.F) {
	for _, s := range []string{"#", "a/+/#", "$share/g/#", "a#", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		err := ValidateFilter(filter)
		if err != nil && !errors.Is(err, ErrInvalidFilter) {
			t.Fatalf("error does not wrap ErrInvalidFilter: %v", err)
		}
		_ = Match(filter, "a/b")
	})
}
