package broker

import (
	"log/slog"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/freeport"
)

// The WebSocket listener runs through the same gate: a paho client over
// ws:// logs in and publishes, its connection holds a slot while open,
// and its slot is released when it leaves.
func TestIntegrationWebSocketThroughGate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeport.Addr() // mochi's WebSocket listener does not report a port-0 address
	if err != nil {
		t.Fatal(err)
	}
	h := &countingHandler{}
	b, err := New(Options{WebSocket: addr, Handler: h, Logger: slog.New(slog.DiscardHandler),
		Credentials: []Credential{{Site: "s", Gateway: "g", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// mochi's WebSocket listener binds in its own goroutine after Start
	// returns: wait (bounded) until it accepts, or the dial races it.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("WebSocket listener not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := paho.NewClientOptions().AddBroker("ws://" + b.Addr("ws")).SetClientID("gw-ws").
		SetUsername("s/g").SetPassword("pw").SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect over WebSocket: %v", tk.Error())
	}
	if n := b.gate.open(); n != 1 {
		t.Fatalf("%d slots held, want 1", n)
	}
	tk := c.Publish(event.EventTopic("s", "g"), 1, false,
		`{"v":1,"id":"ws1","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	if h.events.Load() != 1 {
		t.Fatal("event not handled")
	}
	c.Disconnect(100)
	eventually(t, 5*time.Second, "slot released", func() bool { return b.gate.open() == 0 })
}
