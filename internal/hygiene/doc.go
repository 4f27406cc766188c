// Package hygiene holds tests about the code base itself rather than about
// Vaka's behaviour: that `go test -short ./...` stays a fast loop because
// every integration test skips under -short, and that the Grafana
// provisioning files point at files that exist.
package hygiene
