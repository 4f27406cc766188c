package gateway

// The spool's on-disk format version, kept in <spool>.format (package
// internal/format): a newer gateway reads an older spool, an older one
// refuses a newer spool rather than drop or misread events in it.
//
//	0  before versioning (same lines as 1)
//	1  CRC-32C record lines: "P <push>" and "S <sent seq>" (spool.go)
const (
	SpoolFormatKind    = "vaka-spool"
	SpoolFormatVersion = 1
)
