package testenv

import (
	"net"
	"os/exec"
	"testing"
)

// MosquittoPub returns a publisher that sends one QoS 1 message to the
// MQTT broker at addr (host:port) with mosquitto_pub, a third-party
// client, retained if asked; a failed publish fails the test. The tests
// that play zigbee2mqtt use it, so a payload reaches the gateway as
// zigbee2mqtt's own broker would hand it over, not as our client writes it.
func MosquittoPub(t testing.TB, addr string) func(topic, payload string, retain bool) {
	t.Helper()
	pub := LookPath(t, "mosquitto_pub")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("testenv: broker address %q: %v", addr, err)
	}
	return func(topic, payload string, retain bool) {
		t.Helper()
		args := []string{"-h", host, "-p", port, "-q", "1", "-t", topic, "-m", payload}
		if retain {
			args = append(args, "-r")
		}
		if out, err := exec.Command(pub, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}
}
