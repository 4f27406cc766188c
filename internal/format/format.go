// Package format versions Vaka's on-disk formats (the alarm journal, the
// gateway spool) so that an upgrade cannot lose an alarm: a newer Vaka reads
// an older directory (and marks it with its own version once it has), and
// an older Vaka refuses a directory a newer one wrote, with a message that
// says what to do, instead of misreading records it does not know.
//
// The version lives in a small file beside the log (<log>.format), one
// line "<kind> <version>", replaced atomically. A log without one predates
// versioning and is version 0, which every Vaka reads.
package format

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vaka-care/vaka/internal/record"
)

// ErrNewer is wrapped by Check's error when the directory was written by a
// newer Vaka.
var ErrNewer = errors.New("written by a newer vaka")

// Check reads the version of the log at logPath (from logPath+".format"),
// refuses a version above current or of another kind, and records current
// when the file is missing or older. It returns the version found (0 for a
// log from before versioning).
func Check(logPath, kind string, current int) (int, error) {
	path := logPath + ".format"
	b, err := os.ReadFile(path)
	found := 0
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("format: %w", err)
	default:
		k, v, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
		n, perr := strconv.Atoi(v)
		if !ok || perr != nil || n < 0 {
			return 0, fmt.Errorf("format: %s: unreadable %q: expected \"%s <version>\"", path, clip(b), kind)
		}
		if k != kind {
			return 0, fmt.Errorf("format: %s: this is a %q, not a %s: wrong directory?", path, clip([]byte(k)), kind)
		}
		if n > current {
			return n, fmt.Errorf("format: %s is format %d, %w (this vaka reads up to %d): install that vaka or a newer one, or restore a backup taken with this one; nothing was changed",
				logPath, n, ErrNewer, current)
		}
		found = n
	}
	if found < current {
		if err := record.WriteFile(path, []byte(kind+" "+strconv.Itoa(current)+"\n"), 0o640); err != nil {
			return found, fmt.Errorf("format: record version: %w", err)
		}
	}
	return found, nil
}

// clip bounds what an error quotes of a damaged version file.
func clip(b []byte) []byte {
	const n = 64
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}
