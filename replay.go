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

// reserve claims the delivery in the replay store under each of its keys.
// It returns the keys to settle after the next handler, or the reason to
// refuse the delivery; on refusal nothing stays reserved.
func (h *Handler) reserve(r *http.Request, d *delivery) ([]string, reason) {
	if h.store == nil {
		return nil, ""
	}
	keys := h.replayKeys(d)
	for i, key := range keys {
		ok, err := h.store.Reserve(r.Context(), key, min(h.window, maxInFlight))
		storeOps.WithLabelValues(h.storeName, "reserve", storeResult(ok, err)).Inc()
		if err == nil && ok {
			continue
		}

		h.settle(r, keys[:i], true)
		switch {
		case err != nil && h.OnStoreError == "allow":
			storeErrors.WithLabelValues("allowed").Inc()
			h.logger.Warn("replay store failed, delivery forwarded unchecked",
				zap.String("id", d.id), zap.Error(err))
			return nil, ""
		case err != nil:
			storeErrors.WithLabelValues("rejected").Inc()
			h.logger.Error("replay store failed", zap.String("id", d.id), zap.Error(err))
			return nil, reasonReplayStoreError
		default:
			return nil, reasonDuplicate
		}
	}
	return keys, ""
}

// settle commits the reservations after the application took the delivery,
// or releases them after a failure so that the sender's retry is accepted.
func (h *Handler) settle(r *http.Request, keys []string, failed bool) {
	ctx := context.WithoutCancel(r.Context())
	op := "commit"
	if failed {
		op = "release"
	}
	for _, key := range keys {
		var err error
		if failed {
			err = h.store.Release(ctx, key)
		} else {
			err = h.store.Commit(ctx, key, h.window)
		}
		storeOps.WithLabelValues(h.storeName, op, storeResult(true, err)).Inc()
		if err != nil {
			h.logger.Error("replay store update failed", zap.String("op", op), zap.Error(err))
		}
	}
}

// statusClientClosed is the status Caddy's reverse proxy records when the
// client went away before the application answered.
const statusClientClosed = 499

// upstreamFailed reports whether the later handlers failed to take the
// delivery: a 5xx status, an error that is not a 4xx handler error, or a
// sender that gave up before any answer. In each case the sender will retry,
// and the retry must not be refused as a replay.
func upstreamFailed(r *http.Request, status int, err error) bool {
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode > 0 && he.StatusCode < 500 &&
			he.StatusCode != statusClientClosed {
			return false
		}
		return true
	}
	if status == 0 && r.Context().Err() != nil {
		return true
	}
	return status >= 500 || status == statusClientClosed
}
