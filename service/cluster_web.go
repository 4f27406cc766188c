package service

import (
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/webpush"
)

// WithClusterWeb makes the staff app's side of a redundant group: info
// is served as GET /api/v1/hub (which hub the app is on, and every hub's
// address), and attach is called with the hub's Auth after its sessions
// file is read and before the web listener opens, to take the group's
// replicated sessions over and replicate later changes (cluster.Sessions).
// An attach error is logged, not fatal: the hub must serve alarms, and
// staff can log in again.
func WithClusterWeb(info *httpapi.ClusterInfo, attach func(*httpapi.Auth) error) Option {
	return func(op *options) {
		op.clusterWeb = info
		op.attachAuth = attach
	}
}

// WithClusterPush calls attach with the hub's Web Push subscription store
// before the hub starts, to take the group's replicated subscriptions
// over and replicate later changes (cluster.PushSubs). An error is logged,
// not fatal.
func WithClusterPush(attach func(*webpush.Store) error) Option {
	return func(op *options) { op.attachPush = attach }
}
