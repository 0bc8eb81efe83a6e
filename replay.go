package webhookverify

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// ReplayStore remembers which deliveries have been seen, so that a replayed
// delivery is refused. Keys arrive already namespaced per handler
// configuration. Implementations must be safe for concurrent use, and a store
// shared by several Caddy instances must make Reserve atomic across them.
type ReplayStore interface {
	// Reserve marks key as in flight for ttl and reports true, or reports
	// false without error when key is already reserved or committed and has
	// not expired. Of any number of concurrent calls with one key, exactly one
	// reports true. A reservation that is never committed or released
	// expires after ttl, so a crashed caller cannot block the key for ever.
	Reserve(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// Commit keeps key for ttl from now; it is called once the application
	// accepted the delivery. Committing a key whose reservation has expired
	// stores it again.
	Commit(ctx context.Context, key string, ttl time.Duration) error

	// Release forgets key, so that the sender's retry of a delivery that the
	// application failed to take is accepted. Releasing an unknown key is
	// not an error.
	Release(ctx context.Context, key string) error
}

// now is the clock of the replay and freshness checks; tests replace it.
var now = time.Now

// reserve claims the delivery in the replay store. It returns the key to
// settle after the next handler, or the reason to refuse the delivery.
func (h *Handler) reserve(r *http.Request, d *delivery) (string, reason) {
	if h.store == nil {
		return "", ""
	}
	key := h.replayKey(d)
	ok, err := h.store.Reserve(r.Context(), key, min(h.window, maxInFlight))
	storeOps.WithLabelValues(h.storeName, "reserve", storeResult(ok, err)).Inc()

	switch {
	case err != nil && h.OnStoreError == "allow":
		storeErrors.WithLabelValues("allowed").Inc()
		h.logger.Warn("replay store failed, delivery forwarded unchecked",
			zap.String("id", d.id), zap.Error(err))
		return "", ""
	case err != nil:
		storeErrors.WithLabelValues("rejected").Inc()
		h.logger.Error("replay store failed", zap.String("id", d.id), zap.Error(err))
		return "", reasonReplayStoreError
	case !ok:
		return "", reasonDuplicate
	}
	return key, ""
}

// settle commits the reservation after the application took the delivery,
// or releases it after a failure so that the sender's retry is accepted.
func (h *Handler) settle(r *http.Request, key string, failed bool) {
	ctx := context.WithoutCancel(r.Context())
	var err error
	if failed {
		err = h.store.Release(ctx, key)
	} else {
		err = h.store.Commit(ctx, key, h.window)
	}
	op := "commit"
	if failed {
		op = "release"
	}
	storeOps.WithLabelValues(h.storeName, op, storeResult(true, err)).Inc()
	if err != nil {
		h.logger.Error("replay store update failed", zap.Bool("released", failed),
			zap.Error(err))
	}
}

// upstreamFailed reports whether the later handlers failed to take the
// delivery: a 5xx status, or an error that is not a 4xx handler error.
func upstreamFailed(status int, err error) bool {
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode > 0 && he.StatusCode < 500 {
			return false
		}
		return true
	}
	return status >= 500
}
