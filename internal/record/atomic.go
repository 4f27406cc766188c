package record

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data so that after a crash or a
// power cut it holds either the old or the new content, whole: it writes a
// temporary file in the same directory, fsyncs it, renames it over path
// and fsyncs the directory (without that last step the rename itself may
// not survive a power cut). Concurrent calls for one path must be
// serialised by the caller.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp*")
	if err != nil {
		return fmt.Errorf("record: write %s: %w", base, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("record: write %s: %w", base, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record: write %s: %w", base, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record: write %s: %w", base, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making a rename or a new file in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("record: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("record: sync dir: %w", err)
	}
	return nil
}
