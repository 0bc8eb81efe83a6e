package webhookverify

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The collectors are made once per process and registered again on every
// provision, so that a config reload keeps their values. Label values come
// from configuration (scheme, store) or closed sets (outcome, reason, op,
// result), never from the request, so their number stays small.
var (
	verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "verifications_total",
		Help: "Deliveries checked, by scheme, outcome (accepted, rejected or challenge) " +
			"and reason.",
	}, []string{"scheme", "outcome", "reason"})

	verifyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "verification_duration_seconds",
		Help:      "Time to read, verify and reserve a delivery, before the next handler runs.",
		Buckets: []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
			0.1, 0.5, 1},
	}, []string{"scheme"})

	storeOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "replay_store_operations_total",
		Help: "Replay store calls, by store, operation (reserve, commit, release) and " +
			"result (ok, duplicate, error).",
	}, []string{"store", "op", "result"})

	jwksFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "jwks_fetches_total",
		Help:      "Requests to JWKS endpoints, by URL and result (ok or error).",
	}, []string{"url", "result"})

	jwksKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "jwks_keys",
		Help:      "Usable keys in the key set last installed from each JWKS URL.",
	}, []string{"url"})

	keyExpiry = &expiryCollector{desc: prometheus.NewDesc(
		"caddy_webhook_verify_key_expiry_seconds",
		"Seconds until the nearest certificate expiry among the keys of each source "+
			"(a JWKS URL, or a configured public key); negative once expired.",
		[]string{"source"}, nil)}

	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhook_verify",
		Name:      "replay_store_errors_total",
		Help:      "Replay store failures, by what was done with the delivery (rejected or allowed).",
	}, []string{"action"})
)

// registerMetrics adds the collectors to Caddy's registry.
func registerMetrics(reg prometheus.Registerer, logger *zap.Logger) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{verifications, verifyDuration, storeOps,
		storeErrors, jwksFetches, jwksKeys, keyExpiry} {
		err := reg.Register(c)
		var already prometheus.AlreadyRegisteredError
		if err != nil && !errors.As(err, &already) {
			logger.Error("registering metrics", zap.Error(err))
		}
	}
}

// storeResult names the result of a store call for the operations metric.
func storeResult(ok bool, err error) string {
	switch {
	case err != nil:
		return "error"
	case !ok:
		return "duplicate"
	}
	return "ok"
}

// expiryCollector reports, for each key source, the seconds left until the
// nearest certificate expiry, computed when scraped so that it counts down.
type expiryCollector struct {
	desc    *prometheus.Desc
	nearest sync.Map // source -> time.Time
}

// set records the nearest expiry among keys of source; a zero time, for a
// source whose keys carry no certificate, removes it.
func (c *expiryCollector) set(source string, at time.Time) {
	if at.IsZero() {
		c.nearest.Delete(source)
		return
	}
	c.nearest.Store(source, at)
}

// Describe implements prometheus.Collector.
func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.nearest.Range(func(k, v any) bool {
		left := v.(time.Time).Sub(now()).Seconds()
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, left, k.(string))
		return true
	})
}

// nearestExpiry is the earliest certificate expiry among keys, or zero.
func nearestExpiry(keys []*pubKey) time.Time {
	var at time.Time
	for _, k := range keys {
		if !k.notAfter.IsZero() && (at.IsZero() || k.notAfter.Before(at)) {
			at = k.notAfter
		}
	}
	return at
}
