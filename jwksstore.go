package webhookverify

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"
)

// storedJWKS is the last good key set of a URL as kept in Caddy's storage.
type storedJWKS struct {
	URL       string          `json:"url"`
	FetchedAt time.Time       `json:"fetched_at"`
	Interval  time.Duration   `json:"interval"`
	ETag      string          `json:"etag,omitempty"`
	JWKS      json.RawMessage `json:"jwks"`
}

// storageTimeout bounds one storage read or write.
const storageTimeout = 5 * time.Second

// loadStored installs the persisted set, if there is one for this URL that
// still parses. Its age counts: a set older than refresh plus stale_for is
// loaded but not used.
func (c *jwksCache) loadStored() {
	if c.storage == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, storageTimeout)
	defer cancel()

	raw, err := c.storage.Load(ctx, c.storageKey)
	if err != nil {
		return // nothing stored yet is the common case
	}
	var st storedJWKS
	if err := json.Unmarshal(raw, &st); err != nil || st.URL != c.cfg.URL {
		c.logger.Warn("stored jwks ignored", zap.String("storage_key", c.storageKey))
		return
	}
	keys, _, err := parseJWKSet(st.JWKS, c.roots, now())
	if err != nil || len(keys) == 0 {
		c.logger.Warn("stored jwks ignored", zap.String("storage_key", c.storageKey))
		return
	}

	cs := &cachedSet{keys: newKeySet(keys), goodAt: st.FetchedAt,
		interval: min(max(st.Interval, c.minRefresh), c.refresh), raw: st.JWKS, etag: st.ETag}
	c.set.Store(cs)
	c.install(cs)
	c.logger.Info("jwks loaded from storage", zap.Int("keys", len(keys)),
		zap.Time("fetched_at", st.FetchedAt), zap.Time("stale_until", cs.usableUntil(c.staleFor)))
}

// persist writes a newly installed set to storage, so that a start while the
// endpoint is down can still verify. A failure is logged, not fatal.
func (c *jwksCache) persist(cs *cachedSet) {
	c.logger.Debug("jwks fetched", zap.Int("keys", len(cs.keys.keys)),
		zap.Duration("next_refresh", cs.interval))
	if c.storage == nil {
		return
	}
	raw, err := json.Marshal(storedJWKS{URL: c.cfg.URL, FetchedAt: cs.goodAt,
		Interval: cs.interval, ETag: cs.etag, JWKS: cs.raw})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, storageTimeout)
	defer cancel()
	if err := c.storage.Store(ctx, c.storageKey, raw); err != nil {
		c.logger.Warn("persisting jwks failed", zap.Error(err))
	}
}
