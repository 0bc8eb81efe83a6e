package webhookverify

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The collectors are made once per process and registered again on every
// provision, so that a config reload keeps their values.
var storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "webhook_verify",
	Name:      "replay_store_errors_total",
	Help:      "Replay store failures, by what was done with the delivery (rejected or allowed).",
}, []string{"action"})

// registerMetrics adds the collectors to Caddy's registry.
func registerMetrics(reg prometheus.Registerer, logger *zap.Logger) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{storeErrors} {
		err := reg.Register(c)
		var already prometheus.AlreadyRegisteredError
		if err != nil && !errors.As(err, &already) {
			logger.Error("registering metrics", zap.Error(err))
		}
	}
}
