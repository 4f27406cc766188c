package gateway

import (
	"fmt"
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
	if s2.MaxSeq() != 0 {
		t.Errorf("drained spool max seq %d", s2.MaxSeq())
	}
	s3, _ := OpenSpool(dir, 100)
	if s3.Len() != 0 {
		t.Fatalf("acknowledged messages came back: %d", s3.Len())
	}
}

func TestSpoolCutsTornTailAndEvictsTelemetryFirst(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 3)
	s.Push(msg(1, true))
	s.Push(msg(2, false))
	s.Push(msg(3, false))
	ev, err := s.Push(msg(4, true)) // full: an alarm evicts the oldest telemetry behind the front
	if err != nil || ev == nil || ev.ID != "boot-2" {
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
