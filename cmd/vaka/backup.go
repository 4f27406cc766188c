package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vaka-care/vaka/backup"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
)

// dataDirFlags reads --data DIR, or data_dir from --config FILE.
func dataDirFlags(fs *flag.FlagSet) func() (string, error) {
	data := fs.String("data", "", "the hub's data directory")
	cfgPath := fs.String("config", "", "hub config (YAML): its data_dir")
	return func() (string, error) {
		switch {
		case *data != "" && *cfgPath != "":
			return "", errors.New("give --data or --config, not both")
		case *data != "":
			return *data, nil
		case *cfgPath != "":
			var cfg hub.Config
			if err := config.Load(*cfgPath, &cfg); err != nil {
				return "", err
			}
			if cfg.DataDir == "" {
				return "", fmt.Errorf("%s has no data_dir", *cfgPath)
			}
			return cfg.DataDir, nil
		}
		return "", errors.New("--data DIR or --config FILE is required")
	}
}

// runBackup writes a consistent backup of a (running) hub's data
// directory: package backup says why no pause is needed.
func runBackup(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	dir := dataDirFlags(fs)
	out := fs.String("out", "", "the archive to write (.tar.gz); - for stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := dir()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if *out == "" {
		return errors.New("backup: --out FILE is required")
	}
	w, report := io.Writer(stdout), stdout
	var tmp *os.File
	if *out != "-" {
		// Write beside the target and rename: a cut-short archive never
		// sits where a good one is expected.
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".part-")
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer os.Remove(tmp.Name())
		w = tmp
	} else {
		report = os.Stderr
	}
	m, err := backup.Create(data, w)
	if err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	summarize(report, "backup of "+data, m)
	return nil
}

// runRestore unpacks a backup into an empty or new data directory.
func runRestore(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	dir := dataDirFlags(fs)
	from := fs.String("from", "", "the archive (.tar.gz); - for stdin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := dir()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if *from == "" {
		return errors.New("restore: --from FILE is required")
	}
	r := stdin
	if *from != "-" {
		f, err := os.Open(*from)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		r = f
	}
	m, err := backup.Restore(r, data)
	if err != nil {
		return err
	}
	summarize(stdout, "restored into "+data, m)
	return nil
}

func summarize(w io.Writer, what string, m *backup.Manifest) {
	var bytes int64
	for _, f := range m.Files {
		bytes += f.Size
	}
	fmt.Fprintf(w, "%s: %d files, %d bytes, taken %s\n", what, len(m.Files), bytes, m.Created.Format("2006-01-02T15:04:05Z"))
	for _, f := range m.Files {
		if f.Cut == backup.CutRecords {
			fmt.Fprintf(w, "  %s: %d records\n", f.Name, f.Records)
		}
	}
}
