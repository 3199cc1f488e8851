package inspector

import "github.com/mqtape/mqtape/filter"

// Filter is a parsed query of the / line (package filter).
type Filter = filter.Filter

// filterEnv is what parsing a / line needs to know about the capture.
type filterEnv = filter.Env

// parseFilter reads a / line (filter.Parse).
func parseFilter(text string, env filterEnv) (Filter, error) { return filter.Parse(text, env) }
