package service

import (
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// diskCollector exports the free and total bytes of the file system that
// holds the data directory, so monitoring warns before the journal meets a
// full disk (which holds transitions in memory and answers events busy).
// A statfs that fails exports nothing, and the "not scraped" or absent
// series alerts see that.
type diskCollector struct {
	dir         string
	free, total *prometheus.Desc
}

func newDiskCollector(dir string) *diskCollector {
	return &diskCollector{dir: dir,
		free: prometheus.NewDesc("vaka_data_dir_free_bytes",
			"Bytes available to the hub on the file system of data_dir.", nil, nil),
		total: prometheus.NewDesc("vaka_data_dir_size_bytes",
			"Size in bytes of the file system of data_dir.", nil, nil),
	}
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.free; ch <- c.total }

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir, &st); err != nil {
		return
	}
	bs := float64(st.Bsize)
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(st.Bavail)*bs)
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(st.Blocks)*bs)
}
