//go:build !unix

package main

import "errors"

func execSelf(string, []string, []string) error { return errors.New("not on this OS") }
