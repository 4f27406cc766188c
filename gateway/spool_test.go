package gateway

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

func msg(i int, alarm bool) Message {
	return Message{ID: fmt.Sprintf("boot-%d", i), Seq: uint64(i), Alarm: alarm, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

func drain(q Queue) []string {
	var ids []string
	for i := 0; i < 10000 && q.Len() > 0; i++ {
		m, _ := q.Front()
		ids = append(ids, m.ID)
		q.Pop()
	}
	return ids
}

func TestSpoolSurvivesRestartInOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := s.Push(msg(i, i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	s.Pop() // boot-1 acknowledged
	// No Close: a crash. Reopen.
	s2, err := OpenSpool(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(drain(s2)); got != "[boot-2 boot-3 boot-4 boot-5]" {
		t.Fatalf("after restart: %s", got)
	}
	s3, _ := OpenSpool(dir, 100)
	if s3.Len() != 0 {
		t.Fatalf("acknowledged messages came back: %d", s3.Len())
	}
	// The sequence survives even an empty spool (and its compaction).
	if s3.MaxSeq() != 5 {
		t.Errorf("max seq after restart %d, want 5", s3.MaxSeq())
	}
	s3.Close()
	s4, _ := OpenSpool(dir, 100)
	if s4.MaxSeq() != 5 {
		t.Errorf("max seq after second restart %d, want 5", s4.MaxSeq())
	}
}

func TestSpoolCutsTornTailAndEvictsTelemetryFirst(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 3)
	s.Push(msg(1, true))
	s.Push(msg(2, false))
	s.Push(msg(3, false))
	ev, err := s.Push(msg(4, true)) // full: an alarm evicts the oldest telemetry behind the front
	if err != nil || len(ev) != 1 || ev[0].ID != "boot-2" {
		t.Fatalf("evicted %+v, %v", ev, err)
	}
	if _, err := s.Push(msg(5, false)); err != ErrQueueFull {
		t.Fatalf("telemetry into a full spool: %v", err)
	}
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, spoolFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`P 1234abcd {"ID":"boot-6","Seq":6,"Al`) // power cut mid-write
	f.Close()
	s2, err := OpenSpool(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Corrupt != 1 {
		t.Errorf("corrupt = %d, want 1 (the torn line)", s2.Corrupt)
	}
	if got := fmt.Sprint(drain(s2)); got != "[boot-1 boot-3 boot-4]" {
		t.Fatalf("after restart: %s", got)
	}
}

func TestSpoolCompactsWhenEmpty(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 100000)
	big := make([]byte, 2048)
	for i := range big {
		big[i] = 'x'
	}
	for i := 0; i < 700; i++ {
		m := msg(i, false)
		m.Payload = big
		s.Push(m)
	}
	drain(s)
	fi, _ := os.Stat(filepath.Join(dir, spoolFile))
	if fi.Size() > compactAt {
		t.Fatalf("empty spool left a %d-byte log", fi.Size())
	}
}

// A long outage with an alarm evicting telemetry again and again keeps the
// log within a small multiple of the byte bound.
func TestSpoolByteBoundAndDiskStayBounded(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	s, err := OpenSpoolLimits(dir, 1<<20, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 200)
	dropped := 0
	for i := 1; i <= 20000; i++ {
		m := msg(i, i%10 == 0)
		m.Payload = payload
		ev, err := s.Push(m)
		dropped += len(ev)
		if err != nil {
			dropped++
		}
	}
	if s.Bytes() > maxBytes {
		t.Fatalf("spool holds %d bytes, bound %d", s.Bytes(), maxBytes)
	}
	fi, _ := os.Stat(filepath.Join(dir, spoolFile))
	if fi.Size() > 4*maxBytes+compactAt+4096 {
		t.Fatalf("log grew to %d bytes", fi.Size())
	}
	if dropped+s.Len() != 20000 {
		t.Fatalf("dropped %d + held %d != pushed 20000: a drop was not counted", dropped, s.Len())
	}
	// Telemetry went first: everything held but the front is an alarm.
	alarms := 0
	for _, id := range s.IDs() {
		var n int
		fmt.Sscanf(id, "boot-%d", &n)
		if n%10 == 0 {
			alarms++
		}
	}
	if alarms < s.Len()-1 {
		t.Fatalf("alarms held %d of %d: telemetry kept while alarms were refused", alarms, s.Len())
	}
	s2, err := OpenSpoolLimits(dir, 1<<20, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s2.IDs()) != fmt.Sprint(s.IDs()) || s2.MaxSeq() != s.MaxSeq() || s.MaxSeq() == 0 {
		t.Fatalf("after reopen: %d held, max seq %d", s2.Len(), s2.MaxSeq())
	}
}

// A record with a broken checksum in the middle of the log is skipped and
// counted; the records around it survive.
func TestSpoolSkipsCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 100)
	s.Push(msg(1, true))
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, spoolFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("P 00000000 {\"ID\":\"boot-9\",\"Seq\":9}\n")
	f.WriteString("garbage\n")
	f.Close()
	s2, _ := OpenSpool(dir, 100)
	s2.Push(msg(2, false))
	if s2.Corrupt != 2 || fmt.Sprint(s2.IDs()) != "[boot-1 boot-2]" {
		t.Fatalf("corrupt %d ids %v", s2.Corrupt, s2.IDs())
	}
}

func BenchmarkSpoolPushPop(b *testing.B) {
	s, _ := OpenSpool(b.TempDir(), 1<<20)
	m := msg(1, true)
	m.Payload = []byte(`{"v":1,"id":"x","device":"knapp-12","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.ID = fmt.Sprint("boot-", i)
		s.Push(m)
		s.Pop()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// FuzzSpoolOpen: whatever a power cut or a bad disk leaves in the log,
// opening it never panics, and what it loads can be sent and popped.
func FuzzSpoolOpen(f *testing.F) {
	f.Add([]byte("S 7\nP 00000000 {}\nD x\n"))
	rec, _ := pushRecord(msg(1, true))
	f.Add(append(rec, []byte("D boot-1\nP 1234")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, spoolFile), data, 0o600)
		s, err := OpenSpool(dir, 10)
		if err != nil {
			return
		}
		defer s.Close()
		drain(s)
		if s.Len() != 0 {
			t.Fatal("not drained")
		}
	})
}

// A data directory written by an older gateway (its own Fprintf of the
// same line format) is read by this one.
func TestSpoolReadsTheOlderFormat(t *testing.T) {
	dir := t.TempDir()
	js := `{"ID":"boot-4","Seq":4,"Alarm":true,"Payload":"eyJuIjo0fQ=="}`
	old := fmt.Sprintf("S 3\nP %08x %s\nD boot-2\n", crc32.Checksum([]byte(js), crc32.MakeTable(crc32.Castagnoli)), js)
	if err := os.WriteFile(filepath.Join(dir, spoolFile), []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSpool(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, ok := s.Front()
	if !ok || m.ID != "boot-4" || string(m.Payload) != `{"n":4}` || s.MaxSeq() != 4 || s.Corrupt != 0 {
		t.Fatalf("front %+v %v, max seq %d, corrupt %d", m, ok, s.MaxSeq(), s.Corrupt)
	}
}
