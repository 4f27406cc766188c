// Package config loads Vaka's YAML configuration strictly: an unknown key, a
// wrong type or a missing field is an error that names the file, the line
// and the field, because a technician fixing a config at 02:00 on a unit
// should not have to guess.
//
// Config types declare their own rules in a Validate method that returns
// FieldErrors with a dotted path; this package turns the path into a line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Validator is implemented by config types that check themselves after
// decoding. Returned errors should be FieldErrors (or errors.Join of them).
type Validator interface {
	Validate() error
}

// Includer is implemented by config types that read further files named
// in them (a device inventory exported as CSV, say). Decode calls Include
// after decoding and before Validate, with the directory of the config
// file, against which relative paths are resolved. Errors in an included
// file should be *Error values naming that file and its line; errors about
// the naming field itself may be FieldErrors.
type Includer interface {
	Include(dir string) error
}

// FieldError says what is wrong with one field. Field is a dotted path from
// the document root with list indexes as numbers: "sites.0.gateways.1.id".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errorf builds a FieldError.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Field joins path parts: Field("sites", 0, "id") == "sites.0.id".
func Field(parts ...any) string {
	s := make([]string, 0, len(parts))
	for _, p := range parts {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, ".")
}

// Error is a config error located in a file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": field " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and decodes the file at path into out.
func Load(path string, out any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return Decode(path, data, out)
}

// MaxSize bounds a config file; a larger one is a mistake (a log pasted in).
const MaxSize = 4 << 20

// Decode decodes data (named file in errors) into out strictly, then runs
// out's Validate if it has one.
func Decode(file string, data []byte, out any) error {
	if len(data) > MaxSize {
		return Errors{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxSize)}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{syntaxError(file, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return Errors{{File: file, Line: 1, Msg: "file is empty"}}
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return Errors{{File: file, Line: root.Content[0].Line, Msg: "top level must be a mapping of keys"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return decodeErrors(file, &root, err)
	}
	// Validation runs even when an included file has errors, so one run
	// names every problem in both files.
	var errs []error
	if in, ok := out.(Includer); ok {
		errs = append(errs, in.Include(filepath.Dir(file)))
	}
	if v, ok := out.(Validator); ok {
		errs = append(errs, v.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return locate(file, &root, err)
	}
	return nil
}

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownRe = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
var typeRe = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")

func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg}
}

// decodeErrors turns yaml.v3's type errors into located field errors. The
// messages are rewritten so a value (maybe a password) is never echoed.
func decodeErrors(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{syntaxError(file, err)}
	}
	var out Errors
	named := map[string]bool{} // fields already named, so equal values on one line each get their own
	for _, s := range te.Errors {
		m := lineRe.FindStringSubmatch(s)
		if m == nil {
			out = append(out, &Error{File: file, Msg: s})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		e := &Error{File: file, Line: line}
		switch {
		case unknownRe.MatchString(msg):
			key := unknownRe.FindStringSubmatch(msg)[1]
			e.Field = pathAtLine(root, line, key)
			e.Msg = "unknown field (check the spelling; see docs/config.md)"
		case typeRe.MatchString(msg):
			t := typeRe.FindStringSubmatch(msg)
			// Several keys can share a line ({id: d1, exit: maybe}): name
			// the one holding the offending value, not the line's first.
			if e.Field = valuePathAtLine(root, line, t[2], named); e.Field == "" {
				e.Field = pathAtLine(root, line, "")
			}
			named[e.Field] = true
			e.Msg = fmt.Sprintf("wrong type: got %s, want %s", yamlTag(t[1]), goType(t[3]))
		default:
			e.Field = pathAtLine(root, line, "")
			e.Msg = msg
		}
		out = append(out, e)
	}
	return out
}

func yamlTag(t string) string {
	switch t {
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true/false"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return t
}

func goType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true/false"
	case t == "string":
		return "text"
	case t == "time.Duration" || strings.HasSuffix(t, "Duration"):
		return "a duration like 30s or 5m"
	}
	if i := strings.LastIndex(t, "."); i >= 0 {
		t = t[i+1:]
	}
	return "a " + strings.ToLower(t)
}

// pathAtLine finds the dotted path of the key (named key, or any) whose key
// or value sits on line.
func pathAtLine(root *yaml.Node, line int, key string) string {
	var found string
	var walk func(n *yaml.Node, path []string) bool
	walk = func(n *yaml.Node, path []string) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, path) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(append([]string(nil), path...), k.Value)
				if k.Line == line && (key == "" || k.Value == key) {
					found = strings.Join(p, ".")
					return true
				}
				if v.Kind == yaml.ScalarNode && v.Line == line && key == "" {
					found = strings.Join(p, ".")
					return true
				}
				if walk(v, p) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := append(append([]string(nil), path...), strconv.Itoa(i))
				if c.Kind == yaml.ScalarNode && c.Line == line && key == "" {
					found = strings.Join(p, ".")
					return true
				}
				if walk(c, p) {
					return true
				}
			}
		}
		return false
	}
	walk(root, nil)
	if found == "" {
		return key
	}
	return found
}

// valuePathAtLine finds the dotted path of the scalar value on line that
// yaml.v3 quoted in a type error (it shortens values over 10 bytes to their
// first 7 and "..."), skipping paths in skip, or "" if there is none.
func valuePathAtLine(root *yaml.Node, line int, quoted string, skip map[string]bool) string {
	match := func(v string) bool {
		if p, ok := strings.CutSuffix(quoted, "..."); ok && len(v) > 10 {
			return v[:7] == p
		}
		return v == quoted
	}
	var walk func(n *yaml.Node, path []string) string
	walk = func(n *yaml.Node, path []string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := walk(c, path); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(append([]string(nil), path...), k.Value)
				if v.Kind == yaml.ScalarNode && v.Line == line && match(v.Value) && !skip[strings.Join(p, ".")] {
					return strings.Join(p, ".")
				}
				if q := walk(v, p); q != "" {
					return q
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := append(append([]string(nil), path...), strconv.Itoa(i))
				if c.Kind == yaml.ScalarNode && c.Line == line && match(c.Value) && !skip[strings.Join(p, ".")] {
					return strings.Join(p, ".")
				}
				if q := walk(c, p); q != "" {
					return q
				}
			}
		}
		return ""
	}
	return walk(root, nil)
}

// Locate turns FieldErrors found after decoding, by checks against facts
// from outside the file (zigbee2mqtt's device list for `vaka check
// --zigbee-devices`), into Errors naming file, line and field, as Decode
// does for Validate. data is the file as read; nil err gives nil.
func Locate(file string, data []byte, err error) error {
	if err == nil {
		return nil
	}
	var root yaml.Node
	if yerr := yaml.Unmarshal(data, &root); yerr != nil {
		return Errors{syntaxError(file, yerr)}
	}
	return locate(file, &root, err)
}

// locate gives each FieldError the line of its field, or of the nearest
// parent that exists when the field itself is missing.
func locate(file string, root *yaml.Node, err error) error {
	var out Errors
	for _, e := range flatten(err) {
		var fe *FieldError
		var located *Error
		if errors.As(e, &located) {
			out = append(out, located) // already names its own file and line
		} else if errors.As(e, &fe) {
			out = append(out, &Error{File: file, Line: lineOf(root, fe.Field), Field: fe.Field, Msg: fe.Msg})
		} else {
			out = append(out, &Error{File: file, Msg: e.Error()})
		}
	}
	return out
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// lineOf returns the line of the node at the dotted path, or of its nearest
// existing ancestor.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	if path == "" {
		return line
	}
	for _, part := range strings.Split(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
