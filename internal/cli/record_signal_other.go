//go:build !unix

package cli

// manualTrigger: no SIGUSR1 here; snapshots come from --trigger only.
func manualTrigger() (<-chan struct{}, func()) { return nil, func() {} }
