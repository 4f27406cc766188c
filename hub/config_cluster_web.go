package hub

import (
	"net/url"
	"strings"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// ClusterWebURL is one hub's public address for the staff app
// (cluster.web_urls). The staff app is told every hub's address: when its
// stream breaks it tries its own origin first and then these, in order,
// and a standby names the active hub's address in its 503 answer.
// Recommended is one address in front of all hubs (a load balancer or a
// floating IP, docs/scale-out.md): then the list is for display and a
// failover needs no new login, since cookies stay with one origin.
type ClusterWebURL struct {
	// Node is the hub's cluster.node.
	Node string `yaml:"node"`
	// URL is the staff app's address on that hub, e.g.
	// https://hub-a.vaka.example.se (scheme, host, optional port; no path).
	URL string `yaml:"url"`
}

func (c *Config) validateClusterWeb() []error {
	cl := c.Cluster
	if cl == nil || len(cl.WebURLs) == 0 {
		return nil
	}
	var errs []error
	nodes := map[string]bool{}
	urls := map[string]bool{}
	self := false
	for i := range cl.WebURLs {
		w := &cl.WebURLs[i]
		f := func(k string) string { return config.Field("cluster.web_urls", i, k) }
		if w.Node == "" {
			errs = append(errs, config.Errorf(f("node"), "missing: the hub's cluster.node, e.g. hub-b"))
		} else if err := event.ValidName(w.Node); err != nil {
			errs = append(errs, config.Errorf(f("node"), "%v", err))
		} else if nodes[w.Node] {
			errs = append(errs, config.Errorf(f("node"), "%s is listed twice", w.Node))
		}
		nodes[w.Node] = true
		self = self || w.Node == cl.Node
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			errs = append(errs, config.Errorf(f("url"), "missing, e.g. https://hub-b.vaka.example.se"))
		case err != nil:
			errs = append(errs, config.Errorf(f("url"), "not a URL"))
		case u.Scheme != "https" && u.Scheme != "http":
			errs = append(errs, config.Errorf(f("url"), "scheme must be https (or http), e.g. https://hub-b.vaka.example.se"))
		case u.Host == "":
			errs = append(errs, config.Errorf(f("url"), "needs a host, e.g. https://hub-b.vaka.example.se"))
		case u.User != nil:
			errs = append(errs, config.Errorf(f("url"), "must not carry credentials"))
		case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, config.Errorf(f("url"), "only scheme, host and port: the staff app is served from /"))
		default:
			w.URL = u.Scheme + "://" + u.Host
			if urls[w.URL] {
				errs = append(errs, config.Errorf(f("url"), "%s is listed twice", w.URL))
			}
			urls[w.URL] = true
		}
	}
	if !self && cl.Node != "" {
		errs = append(errs, config.Errorf("cluster.web_urls", "lists no address for this hub (%s): list every hub of the group, this one too", cl.Node))
	}
	return errs
}
