package service

import "runtime"

// startupGC collects the garbage of start-up (the config parsed, the
// journal replayed) once, before the hub takes its first event.
//
// Why: a config with 10,000 alarm units parses into about 60 MB that is
// garbage once the hub is built, and the GC sets its next goal from the
// heap it last saw (GOGC 200: about 180 MB). Left alone, the first
// collection then comes seconds into serving, over that whole heap: in
// `vaka-load scaip` at 1,000 messages/s it came 2–3 s in and took about
// 100 ms of wall clock on the hub's one core, and the ~50 alarms behind it
// waited 25–40 ms each: a p99 over 5 ms from one start-up. Collected here
// it costs the same tens of milliseconds once, before anything waits.
func startupGC() { runtime.GC() }
