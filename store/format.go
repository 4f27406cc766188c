package store

// The journal's on-disk format version, kept in alarms.journal.format
// (package internal/format). Raise FormatVersion with any change an older
// hub would misread, and keep reading every older version: a newer hub
// reads an older data directory, an older hub refuses a newer one.
//
//	0  before versioning (same records as 1)
//	1  CRC-32C record lines of JSON transitions (internal/record)
const (
	FormatKind    = "vaka-journal"
	FormatVersion = 1
)
