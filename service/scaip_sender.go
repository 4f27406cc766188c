package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/notify"
)

// registerSCAIPSenderMetrics exports the hand-overs to alarm receiving
// centres (notify/scaip.go): what was sent, what went unanswered or was
// refused, and how many hand-overs were given up with RE.
func registerSCAIPSenderMetrics(reg prometheus.Registerer, d *notify.Dispatcher) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_scaip_centre_sent_total", Help: "SCAIP requests (ME, IN, RE, PI) sent to alarm receiving centres."},
			func() float64 { return float64(d.SCAIPSent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_scaip_centre_failed_total", Help: "SCAIP requests to centres without an <mrs> snu 0 (no answer, hold, busy or refusal)."},
			func() float64 { return float64(d.SCAIPFailed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_scaip_centre_aborted_total", Help: "Hand-overs to a centre given up with RE (deadline passed, snu 5 or a refusal): the next tier took over."},
			func() float64 { return float64(d.SCAIPAborted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_scaip_centre_tls_refused_total", Help: "Hand-overs to a centre given up because its TLS certificate did not verify (ca_file or system roots): the next tier took over."},
			func() float64 { return float64(d.SCAIPTLSRefused.Load()) }),
	)
}
