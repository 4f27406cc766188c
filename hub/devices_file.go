package hub

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vaka-care/vaka/config"
)

// MaxDevicesFileSize bounds a devices_file: 250,000 rows are about 12 MB.
const MaxDevicesFileSize = 64 << 20

// maxFileErrors stops reporting a broken inventory after this many rows:
// a wrong delimiter breaks every line, and one screen says enough.
const maxFileErrors = 50

// devicesColumns are the CSV columns a devices_file may have; the first
// three are required.
var devicesColumns = []string{"gateway", "id", "type", "resident", "unit", "room", "exit", "radio"}

// Include implements config.Includer: it reads each site's devices_file
// and adds its rows to the site's gateways, remembering each row's file and
// line so Validate names them in its errors.
func (c *Config) Include(dir string) error {
	var errs []error
	c.included = nil
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.DevicesFile == "" {
			continue
		}
		path := s.DevicesFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		c.included = append(c.included, path)
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, config.Errorf(config.Field("sites", i, "devices_file"), "%v", err))
			continue
		}
		err = s.ReadDevices(path, f)
		f.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.includeRoster(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// IncludedFiles are the files the last Include read, so a config watcher
// reloads when the inventory changes, not only the YAML.
func (c *Config) IncludedFiles() []string { return c.included }

// ReadDevices reads a CSV device inventory (named name in errors) into the
// site's gateways. The first record is the header; columns may come in any
// order; lines starting with # are comments. Every error is a *config.Error
// with the file, the line and the column.
func (s *Site) ReadDevices(name string, r io.Reader) error {
	lr := &io.LimitedReader{R: r, N: MaxDevicesFileSize + 1}
	cr := csv.NewReader(lr)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var errs []error
	fail := func(line int, field, format string, a ...any) bool {
		errs = append(errs, &config.Error{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
		if len(errs) == maxFileErrors {
			errs = append(errs, &config.Error{File: name, Msg: fmt.Sprintf("stopped after %d errors", maxFileErrors)})
			return true
		}
		return false
	}
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return &config.Error{File: name, Line: 1, Msg: "empty: the first line must name the columns, e.g. gateway,id,type,resident,unit,room"}
		}
		return csvError(name, err)
	}
	col := map[string]int{}
	for k, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) // a spreadsheet's byte-order mark
		switch {
		case !slices.Contains(devicesColumns, h):
			fail(1, h, "unknown column (want %s)", strings.Join(devicesColumns, ", "))
		case col[h] != 0:
			fail(1, h, "column named twice")
		default:
			col[h] = k + 1 // 0 means absent
		}
	}
	for _, h := range devicesColumns[:3] {
		if col[h] == 0 {
			fail(1, h, "required column missing")
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	gws := make(map[string]*Gateway, len(s.Gateways))
	for j := range s.Gateways {
		gws[s.Gateways[j].ID] = &s.Gateways[j]
	}
	get := func(rec []string, h string) string {
		if k := col[h]; k > 0 && k <= len(rec) {
			return strings.TrimSpace(rec[k-1])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, csvError(name, err))
			if len(errs) >= maxFileErrors {
				break
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the record is still returned whole; skip it
			}
			break
		}
		line, _ := cr.FieldPos(0)
		gwID := get(rec, "gateway")
		gw := gws[gwID]
		if gw == nil {
			if fail(line, "gateway", "no gateway %q in this site's gateways", gwID) {
				break
			}
			continue
		}
		d := Device{ID: get(rec, "id"), Type: get(rec, "type"), Resident: get(rec, "resident"),
			Unit: get(rec, "unit"), Room: get(rec, "room"), Radio: get(rec, "radio"), from: name, line: line}
		if v := get(rec, "exit"); v != "" {
			b, err := parseYesNo(v)
			if err != nil {
				if fail(line, "exit", "%v", err) {
					break
				}
				continue
			}
			d.Exit = b
		}
		gw.Devices = append(gw.Devices, d)
	}
	if lr.N <= 0 {
		errs = append(errs, &config.Error{File: name, Msg: fmt.Sprintf("larger than %d bytes", MaxDevicesFileSize)})
	}
	return errors.Join(errs...)
}

// csvError locates an encoding/csv error without echoing the record.
func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &config.Error{File: name, Line: pe.Line, Msg: pe.Err.Error()}
	}
	return &config.Error{File: name, Msg: err.Error()}
}

// parseYesNo accepts what a spreadsheet export says for a yes/no column.
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "ja", "yes", "j", "y", "x":
		return true, nil
	case "nej", "no", "n", "-":
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("want true/false or ja/nej, not %q", v)
	}
	return b, nil
}

// errorf reports a problem with one of the device's fields: at its line in
// the devices_file when it came from one, else at its YAML path.
func (d *Device) errorf(path func(string) string, field, format string, a ...any) error {
	if d.from == "" {
		return config.Errorf(path(field), format, a...)
	}
	return &config.Error{File: d.from, Line: d.line, Field: field, Msg: fmt.Sprintf(format, a...)}
}
