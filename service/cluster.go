package service

import (
	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/hub"
)

// WithJournal makes the hub use the journal open returns instead of the
// local file in data_dir: the replicated journal of a redundant group
// (package cluster, docs/scale-out.md). open must hand every transition
// the journal holds to each, in order, before it returns, as
// store.OpenEach does; the hub's state is rebuilt from them.
func WithJournal(open func(each func(alarm.Transition)) (hub.Journal, error)) Option {
	return func(op *options) { op.openJournal = open }
}

// WithRebuilder makes the hub start from rb, which may already hold what a
// standby read while following the replicated journal; the journal's open
// (WithJournal) then hands rb only the rest.
func WithRebuilder(rb *hub.Rebuilder) Option {
	return func(op *options) { op.rebuilder = rb }
}
