package cli

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection enforces the layering in STYLE.md: arrows point
// down (main → recorder|replay|inspector → storage), storage is a leaf, only
// storage imports the SQLite driver and only inspector imports tview/tcell.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json", "github.com/mqtape/mqtape/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/mqtape/mqtape"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	type pkg struct {
		ImportPath string
		Imports    []string
		Deps       []string
	}
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		for _, imp := range p.Imports {
			if imp == "modernc.org/sqlite" && name != "storage" {
				t.Errorf("%s imports the SQLite driver; only storage may", p.ImportPath)
			}
			if (strings.HasPrefix(imp, "github.com/rivo/tview") || strings.HasPrefix(imp, "github.com/gdamore/tcell")) && name != "inspector" {
				t.Errorf("%s imports %s; only inspector may", p.ImportPath, imp)
			}
		}
		forbidden := map[string][]string{
			"mqtt":       {mod + "/", "github.com/", "golang.org/", "modernc.org/"},
			"storage":    {mod + "/r", mod + "/i", mod + "/b", mod + "/mqttclient", mod + "/d", mod + "/e", "github.com/eclipse/", "github.com/rivo/", "github.com/mochi-mqtt/"},
			"recorder":   {mod + "/replay", mod + "/inspector"},
			"replay":     {mod + "/recorder", mod + "/inspector"},
			"inspector":  {mod + "/recorder"},
			"topic":      {mod + "/"},
			"timespec":   {mod + "/"},
			"mqttclient": {mod + "/storage", mod + "/recorder", mod + "/replay", mod + "/inspector"},
		}[name]
		for _, d := range p.Deps {
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s (forbidden by the layering)", p.ImportPath, d)
				}
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list saw only %d packages", seen)
	}
}
