package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// modulePath is mqtape's Go module, for `go run` advice outside its root.
const modulePath = "github.com/mqtape/mqtape"

// processInvocation is how to run this mqtape again, for the commands it
// prints as advice (demo's next steps): see invocation.
func processInvocation() string {
	exe, _ := os.Executable()
	cwd, _ := os.Getwd()
	mod, _ := os.ReadFile(filepath.Join(cwd, "go.mod"))
	root := strings.HasPrefix(string(mod), "module "+modulePath+"\n") ||
		strings.Contains(string(mod), "\nmodule "+modulePath+"\n")
	return invocation(exe, os.Args[0], root)
}

// invocation is how the user runs this mqtape, in shell syntax. Under
// `go run` that is "go run ." in the module's root directory and
// "go run github.com/mqtape/mqtape" elsewhere (see builtByGoRun). Otherwise
// it is the program as typed: a bare name was found on $PATH, a path works
// from the directory it was typed in.
func invocation(exe, arg0 string, inModuleRoot bool) string {
	if builtByGoRun(exe) {
		if inModuleRoot {
			return "go run ."
		}
		return "go run " + modulePath
	}
	if arg0 == "" {
		return "mqtape"
	}
	return shellQuote(arg0)
}

// goRunCached is the directory in the build cache where go run (Go 1.24
// and later) keeps the executables it builds: GOCACHE/xx/HASH-d/.
var goRunCached = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// builtByGoRun reports whether exe is an executable the go command built for
// `go run`: one it cached (GOCACHE/xx/HASH-d/NAME) or a temporary one
// ($WORK/b001/exe/NAME, as with GOFLAGS=-a), not one a user installed.
func builtByGoRun(exe string) bool {
	dir := filepath.Dir(exe)
	if goRunCached.MatchString(filepath.Base(dir)) && len(filepath.Base(filepath.Dir(dir))) == 2 {
		return true
	}
	return filepath.Base(dir) == "exe" && strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "go-build")
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@%+=,-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
