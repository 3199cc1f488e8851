package e2e

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/mqtape/mqtape/demo"
	"github.com/mqtape/mqtape/storage"
)

// TestDocumentedFacts: the numbers the README and docs/capture-format.md
// state about the code are the code's.
func TestDocumentedFacts(t *testing.T) {
	devices := (&demo.Fleet{}).Devices()
	checks := []struct {
		file, pattern string
		want          int
	}{
		{"../README.md", "`PRAGMA user_version` is the format version \\(now (\\d+)\\)", storage.FormatVersion},
		{"../README.md", `and (\d+) simulated devices`, devices},
		{"../docs/capture-format.md", `\*\*format version (\d+)\*\*`, storage.FormatVersion},
		{"../docs/capture-format.md", `\(currently \*\*(\d+)\*\*\)`, storage.FormatVersion},
		// The last row of the table of migrations.
		{"../docs/capture-format.md", `(?m)^\| (\d+) \| [^|\n]+\|\n\n`, storage.FormatVersion},
	}
	for _, c := range checks {
		text, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		found := regexp.MustCompile(c.pattern).FindAllSubmatch(text, -1)
		if len(found) == 0 {
			t.Errorf("%s: nothing matches %q (say the number there, or update this test)", c.file, c.pattern)
		}
		for _, m := range found {
			if n, _ := strconv.Atoi(string(m[1])); n != c.want {
				t.Errorf("%s: %q says %d, the code has %d", c.file, m[0], n, c.want)
			}
		}
	}
}
