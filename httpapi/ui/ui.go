// Package ui holds the staff web app's static files, embedded in the binary.
package ui

import "embed"

//go:embed static
var Static embed.FS
