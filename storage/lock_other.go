//go:build !unix

package storage

import "os"

// Without flock a spool file cannot tell whether its recorder still runs:
// every spool file is taken as left behind.
func lockFile(*os.File) error { return nil }

func tryLockFile(*os.File) bool { return true }
