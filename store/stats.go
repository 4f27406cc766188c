package store

// Stats are the journal's running counters since Open, read as one value
// so a caller that holds the journal behind an interface (hub.Journal: the
// local file here, a replicated journal in package cluster) reads them the
// same way.
type Stats struct {
	Syncs, SyncFails          int64 // fsyncs and failed fsyncs
	SlowWrites, MaxWriteNanos int64 // appends over SlowWrite, and the longest
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	return Stats{Syncs: j.Syncs.Load(), SyncFails: j.SyncFails.Load(),
		SlowWrites: j.SlowWrites.Load(), MaxWriteNanos: j.MaxWriteNanos.Load()}
}
