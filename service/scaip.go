package service

import (
	"crypto/tls"
	"fmt"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/scaipsip"
)

// startSCAIP starts the SCAIP receiver (scaip: in the hub config) once the
// hub runs; it is stopped first on Close, before the journal's last sync.
func (s *Hub) startSCAIP(cfg *hub.Config) error {
	c := cfg.SCAIP
	if !c.Enabled {
		return nil
	}
	if err := s.Hub.RegisterSCAIPMetrics(s.reg); err != nil {
		return fmt.Errorf("service: scaip metrics: %w", err)
	}
	sc := scaipsip.Config{UDP: c.UDP, TCP: c.TCP, Realm: c.Realm, Accounts: map[string]string{},
		Logger: s.log, Registry: s.reg}
	for _, a := range c.Accounts {
		sc.Accounts[a.Username] = a.HA1
	}
	if t := c.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("service: scaip.tls: %w", err)
		}
		sc.TLSAddr, sc.TLS = t.Address, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := scaipsip.Start(sc, s.Hub)
	if err != nil {
		return err
	}
	s.scaip = srv
	s.closers = append([]func() error{srv.Close}, s.closers...)
	s.log.Info("scaip receiver started", "udp", srv.Addr("udp"), "tcp", srv.Addr("tcp"), "tls", srv.Addr("tls"), "units", len(c.Units))
	return nil
}

// SCAIPAddr is the SCAIP receiver's bound address for "udp", "tcp" or
// "tls"; "" when that transport (or the receiver) is off.
func (s *Hub) SCAIPAddr(transport string) string {
	if s.scaip == nil {
		return ""
	}
	return s.scaip.Addr(transport)
}
