// Package cluster makes a hub one of a redundant group on NATS JetStream
// (docs/scale-out.md, "A redundant group"), opt-in through the hub
// config's cluster section; without it nothing here runs.
//
//   - The alarm journal is a JetStream stream with 3 (or 5) replicas
//     (Journal, satisfying hub.Journal). Append returns only once the
//     stream's leader has the record from a quorum of replicas: the same
//     rule as the local file (nothing acknowledged to a gateway before
//     its alarm is kept), with "kept" meaning on a majority of machines.
//   - One hub is active: it holds a lease in a JetStream key-value bucket,
//     renewed by revision compare-and-set (Lease). A standby takes it over
//     when its revision has not changed for the lease TTL.
//   - Fencing does not rest on the lease: every append names the stream
//     sequence it expects to follow (expected-last-sequence), and a new
//     active hub first appends a term record after everything it replayed.
//     A hub that lost the group's lead therefore cannot append anything
//     after the new hub's term record: its append is refused, and it stops
//     (Journal.Deposed) without acknowledging the event. Two hubs never
//     both raise or escalate the same event into the journal.
//
// Why JetStream and not a protocol of our own: Raft-replicated streams,
// expected-sequence checks and a key-value store with revisions are what
// a redundant group needs, tested by others, and the server embeds in Go
// (Embedded) for small sites and for tests.
package cluster
