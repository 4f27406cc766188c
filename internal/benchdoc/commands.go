package benchdoc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// CommandsSection returns the lines of a report's "## Commands" code block.
func CommandsSection(md []byte) ([]string, error) {
	i := bytes.Index(md, []byte("## Commands"))
	if i < 0 {
		return nil, fmt.Errorf("no Commands section")
	}
	rest := md[i:]
	open := bytes.Index(rest, []byte("```sh\n"))
	if open < 0 {
		return nil, fmt.Errorf("the Commands section has no ```sh block")
	}
	rest = rest[open+len("```sh\n"):]
	end := bytes.Index(rest, []byte("```"))
	if end < 0 {
		return nil, fmt.Errorf("the Commands block is not closed")
	}
	return strings.Split(strings.TrimRight(string(rest[:end]), "\n"), "\n"), nil
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// CheckCommands checks that lines, pasted into bash in the repository at
// root in this order, would run as written: each line parses (`bash -n`),
// and each program it runs is on PATH, an executable file in the
// repository, or a binary an earlier line built (`go build -o PATH`) – never
// a built binary by a bare name, which bash would look up on PATH. The
// same holds for the `-hub-bin` binary vaka-load starts. A line of
// assignments only (OUT=…) defines a variable for the lines after it;
// lines starting with # are comments. It returns every problem found.
// A line must be one simple command: no ;, &&, |, redirections or
// substitutions outside quotes (each line is checked alone, and so that
// checking runs nothing). It needs bash, and runs nothing but bash -n and
// printf.
func CheckCommands(lines []string, root string) []error {
	var errs []error
	var prelude strings.Builder
	built := map[string]string{} // path → the line that built it
	for n, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		where := fmt.Sprintf("line %d %q", n+1, l)
		if out, err := exec.Command("bash", "-n", "-c", l).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s does not parse: %v %s", where, err, out))
			continue
		}
		if op := operator(l); op != "" {
			errs = append(errs, fmt.Errorf("%s is not one simple command (%q outside quotes): write one command a line", where, op))
			continue
		}
		// The words as bash would pass them, with the variables the
		// lines before defined (printf prints them; a simple command
		// without substitutions runs nothing else).
		cmd := exec.Command("bash", "-c", prelude.String()+"printf '%s\\0' "+l)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: its words: %v", where, err))
			continue
		}
		words := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		j := 0
		for j < len(words) && assignment.MatchString(words[j]) {
			j++
		}
		if j == len(words) {
			prelude.WriteString(l + "\n")
			continue
		}
		abs := func(p string) string {
			if filepath.IsAbs(p) {
				return filepath.Clean(p)
			}
			return filepath.Join(root, p)
		}
		program := func(p string) error {
			if !strings.Contains(p, "/") {
				for b := range built {
					if filepath.Base(b) == p {
						return fmt.Errorf("runs %s by its bare name (bash looks on PATH), not the one built at %s", p, b)
					}
				}
				if _, err := exec.LookPath(p); err != nil {
					return fmt.Errorf("runs %s, which is not on PATH", p)
				}
				return nil
			}
			if _, ok := built[abs(p)]; ok {
				return nil
			}
			if st, err := os.Stat(abs(p)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 &&
				strings.HasPrefix(abs(p), root+string(filepath.Separator)) {
				return nil // an executable in the repository, e.g. ./scripts/bench-deps.sh
			}
			return fmt.Errorf("runs %s, which no earlier line builds", p)
		}
		if err := program(words[j]); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", where, err))
		}
		for k := j + 1; k+1 < len(words); k++ {
			if words[k] == "-hub-bin" {
				if err := program(words[k+1]); err != nil {
					errs = append(errs, fmt.Errorf("%s: -hub-bin %w", where, err))
				}
			}
		}
		if words[j] == "go" && j+1 < len(words) && words[j+1] == "build" {
			for k := j + 2; k+1 < len(words); k++ {
				if words[k] == "-o" {
					built[abs(words[k+1])] = l
				}
			}
		}
	}
	return errs
}

// operator returns the first shell control or redirection operator, or
// command substitution, outside quotes in l ("" if none).
func operator(l string) string {
	var q byte // the quote we are in
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case q == '\'':
			if c == '\'' {
				q = 0
			}
		case c == '\\':
			i++ // the next character is literal (outside single quotes)
		case q == '"':
			if c == '"' {
				q = 0
			} else if c == '`' || (c == '$' && i+1 < len(l) && l[i+1] == '(') {
				return l[i:min(i+2, len(l))]
			}
		case c == '\'' || c == '"':
			q = c
		case strings.IndexByte(";&|<>`", c) >= 0:
			return string(c)
		case c == '$' && i+1 < len(l) && l[i+1] == '(':
			return "$("
		}
	}
	return ""
}
