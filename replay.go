package webhookverify

import (
	"context"
	"net/http"
	"time"

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

	// Release forgets a reservation of key, so that the sender's retry of a
	// delivery that the application failed to take is accepted. A committed
	// key is kept: it may be another copy's, accepted after this one's
	// reservation expired. Releasing an unknown key is not an error.
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

// upstreamFailed reports whether the later handlers did not take the
// delivery. Only a 2xx answer takes it: that is what senders count as
// delivered. Any other status, an error, or a sender that went away before
// any answer means the sender will try again, and its retry must not be
// refused as a replay. A delivery refused by the application (a 4xx) can
// therefore be sent again and reach it again; it is refused there again.
func upstreamFailed(r *http.Request, status int, err error) bool {
	if err != nil {
		return true
	}
	if status == 0 {
		// Nothing written: Go answers 200, unless the sender already left.
		return r.Context().Err() != nil
	}
	return status < 200 || status > 299
}
