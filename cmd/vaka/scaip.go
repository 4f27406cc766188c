package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/scaipsip"
)

const scaipUsage = `Usage:
  vaka scaip send --to HOST:PORT --user U --password P [--transport udp|tcp|tls] [--insecure]
                  (--file FILE | --cid N --dty CODE [--ref R] [--mty ME|RE|IN|PI] [--did D] [--stc CODE]
                   [--pri 0-9] [--cha 1] [--crd gsm:+46…] [--lco CODE] [--geo LAT,LON] [--hbo 1])
      send one SCAIP request as an alarm unit would; prints the <mrs> (exit 1 unless snu 0)
  vaka scaip ha1 --user U [--realm vaka]
      read a password on stdin, print the Digest HA1 for scaip.accounts[].ha1
`

func runSCAIP(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		//lint:ignore ST1005 the message ends with the usage text, printed to the user as is
		return errors.New("scaip: say send or ha1\n" + scaipUsage)
	}
	switch args[0] {
	case "send":
		return runSCAIPSend(ctx, args[1:], stdout)
	case "ha1":
		fs := flag.NewFlagSet("scaip ha1", flag.ContinueOnError)
		user := fs.String("user", "", "Digest username")
		realm := fs.String("realm", hub.DefaultSCAIPRealm, "realm (scaip.realm)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *user == "" {
			return errors.New("scaip ha1: --user is required")
		}
		pw, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			return err
		}
		p := strings.TrimRight(string(pw), "\r\n")
		if p == "" {
			return errors.New("scaip ha1: empty password on stdin")
		}
		fmt.Fprintln(stdout, hub.HA1(*user, *realm, p))
		return nil
	}
	return fmt.Errorf("scaip: unknown command %q\n%s", args[0], scaipUsage)
}

// errNotOK makes the exit status say whether the receiver took the event.
var errNotOK = errors.New("scaip send: the receiver did not answer snu 0")

func runSCAIPSend(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("scaip send", flag.ContinueOnError)
	to := fs.String("to", "", "receiver host:port")
	transport := fs.String("transport", "udp", "udp, tcp or tls")
	user := fs.String("user", "", "Digest account")
	password := fs.String("password", "", "Digest password (or VAKA_SCAIP_PASSWORD)")
	insecure := fs.Bool("insecure", false, "TLS: do not verify the receiver's certificate (tests and demos only)")
	file := fs.String("file", "", "send this file's <mrq> as it is")
	timeout := fs.Duration("timeout", 10*time.Second, "wait this long for the <mrs>")
	r := scaip.Request{}
	fs.StringVar(&r.Ref, "ref", "", "reference (default: a new one)")
	mty := fs.String("mty", "", "message type ME, RE, IN or PI")
	fs.StringVar(&r.Cid, "cid", "", "controller id (account number)")
	fs.StringVar(&r.Dty, "dty", "", "device type code, e.g. 0003")
	fs.StringVar(&r.Did, "did", "", "device id")
	fs.StringVar(&r.Stc, "stc", "", "status code, e.g. 0088")
	pri := fs.Int("pri", 0, "priority 0–9")
	fs.StringVar(&r.Cha, "cha", "", "1: callback requested")
	fs.StringVar(&r.Crd, "crd", "", "caller id, e.g. gsm:+46701234567")
	fs.StringVar(&r.Lco, "lco", "", "location code")
	fs.StringVar(&r.Hbo, "hbo", "", "1: accept a heartbeat interval")
	geo := fs.String("geo", "", "position lat,lon")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		//lint:ignore ST1005 the message ends with the usage text, printed to the user as is
		return errors.New("scaip send: --to is required\n" + scaipUsage)
	}
	if *password == "" {
		*password = os.Getenv("VAKA_SCAIP_PASSWORD")
	}
	var body []byte
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("scaip send: %w", err)
		}
		body = b
	} else {
		if r.Ref == "" {
			r.Ref = strconv.FormatInt(time.Now().UnixMilli()%1e12, 36)
		}
		r.Mty, r.Pri = scaip.MessageType(*mty), *pri
		if *geo != "" {
			r.Lge = &scaip.Position{Geo: *geo}
		}
		body = r.Marshal()
		// Check what we send as strictly as a receiver would.
		if _, err := scaip.Parse(body); err != nil {
			return fmt.Errorf("scaip send: the request would be refused: %w", err)
		}
	}
	var tlsConf *tls.Config
	if *transport == "tls" {
		tlsConf = &tls.Config{InsecureSkipVerify: *insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in flag for tests
	}
	res, err := scaipsip.Send(ctx, scaipsip.SendOptions{Transport: *transport, Addr: *to, Username: *user,
		Password: *password, Body: body, Timeout: *timeout, TLS: tlsConf})
	if err != nil {
		return err
	}
	if res.Mrs == nil {
		fmt.Fprintf(stdout, "SIP %d, no <mrs>\n", res.SIPStatus)
		return errNotOK
	}
	fmt.Fprintln(stdout, string(res.MrsBody))
	if res.Mrs.SNU != scaip.OK {
		return errNotOK
	}
	return nil
}
