package web

// SetScanWindow sets scanWindow for a test and returns the undo.
func SetScanWindow(n int64) (undo func()) {
	old := scanWindow
	scanWindow = n
	return func() { scanWindow = old }
}
