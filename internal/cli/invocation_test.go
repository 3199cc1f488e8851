package cli

import "testing"

func TestInvocation(t *testing.T) {
	tests := []struct {
		name, exe, arg0 string
		root            bool
		want            string
	}{
		{"go run, cached", "/root/.cache/go-build/00/009333929cb274fb31d6fc08d397f26e466cd773a7792ef5c0c08b97fc0d12c2-d/mqtape",
			"/root/.cache/go-build/00/009333929cb274fb31d6fc08d397f26e466cd773a7792ef5c0c08b97fc0d12c2-d/mqtape", true, "go run ."},
		{"go run in the module root", "/tmp/go-build2384/b001/exe/mqtape", "/tmp/go-build2384/b001/exe/mqtape", true, "go run ."},
		{"go run elsewhere", "/tmp/go-build2384/b001/exe/mqtape", "/tmp/go-build2384/b001/exe/mqtape", false, "go run github.com/mqtape/mqtape"},
		{"go run with GOTMPDIR", "/home/me/tmp/go-build9/b001/exe/mqtape", "mqtape", true, "go run ."},
		{"go test binary", "/tmp/go-build2384/b001/cli.test", "/tmp/go-build2384/b001/cli.test", true, "/tmp/go-build2384/b001/cli.test"},
		{"on PATH", "/usr/local/bin/mqtape", "mqtape", true, "mqtape"},
		{"relative path", "/home/me/src/mqtape/mqtape", "./mqtape", true, "./mqtape"},
		{"renamed binary", "/opt/bin/mqtape-0.1", "/opt/bin/mqtape-0.1", false, "/opt/bin/mqtape-0.1"},
		{"path with a space", "/home/me/my tools/mqtape", "/home/me/my tools/mqtape", false, "'/home/me/my tools/mqtape'"},
		{"a directory named exe", "/opt/exe/mqtape", "/opt/exe/mqtape", false, "/opt/exe/mqtape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := invocation(tt.exe, tt.arg0, tt.root); got != tt.want {
				t.Errorf("invocation(%q, %q, %v) = %q, want %q", tt.exe, tt.arg0, tt.root, got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"demo.db":           "demo.db",
		"/tmp/x/demo-1.db":  "/tmp/x/demo-1.db",
		"my demo.db":        "'my demo.db'",
		"it's.db":           `'it'\''s.db'`,
		"":                  "''",
		"home/+/thermostat": "home/+/thermostat",
		"a/#":               "'a/#'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
