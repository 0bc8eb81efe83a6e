package webhookverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(StorageStore{})
}

// storagePrefix is where the storage store keeps its entries.
const storagePrefix = "webhook_verify/replay"

// StorageStore keeps seen delivery IDs in Caddy's configured storage (the
// `storage` global option): the file system by default, or any storage
// module, such as Redis, Consul or a database. Instances that share the
// storage refuse each other's replays, and the entries survive restarts.
//
// A reservation is atomic across instances when the storage offers TryLock
// (the file system storage does). Storage modules that only offer Lock are
// used through Lock, which is just as safe but makes concurrent copies of a
// delivery wait for each other. Each reservation costs a lock, a read and a
// write, so this store suits moderate delivery rates; the redis store is
// faster.
type StorageStore struct {
	// How often expired entries are removed from the storage. One instance
	// of a cluster does it at a time. Default: 10m.
	CleanupInterval caddy.Duration `json:"cleanup_interval,omitempty"`

	storage certmagic.Storage
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (StorageStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_verify.replay.storage",
		New: func() caddy.Module { return new(StorageStore) },
	}
}

// Provision takes the configured storage and starts the cleaner.
func (s *StorageStore) Provision(ctx caddy.Context) error {
	if s.CleanupInterval < 0 {
		return fmt.Errorf("cleanup_interval: must not be negative")
	}
	if s.CleanupInterval == 0 {
		s.CleanupInterval = caddy.Duration(10 * time.Minute)
	}
	s.storage = ctx.Storage()
	s.logger = ctx.Logger()
	go s.cleanLoop(ctx)
	return nil
}

// UnmarshalCaddyfile reads `storage [{ cleanup_interval <duration> }]`.
func (s *StorageStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the store name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() != "cleanup_interval" {
			return d.Errf("unrecognized storage store option %q", d.Val())
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil {
			return d.Errf("cleanup_interval: %v", err)
		}
		s.CleanupInterval = caddy.Duration(dur)
	}
	return nil
}

// Reserve implements ReplayStore.
func (s *StorageStore) Reserve(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	name := storageKey(key)
	locked, err := s.lock(ctx, name)
	if err != nil || !locked {
		return false, err
	}
	defer s.unlock(ctx, name)

	e, err := s.load(ctx, name)
	if err != nil {
		return false, err
	}
	if e.expires > now().UnixNano() {
		return false, nil
	}
	return true, s.store(ctx, name, stateReserved, ttl)
}

// Commit implements ReplayStore.
func (s *StorageStore) Commit(ctx context.Context, key string, ttl time.Duration) error {
	return s.store(ctx, storageKey(key), stateCommitted, ttl)
}

// Release implements ReplayStore. It removes the entry only while it is a
// reservation, under the entry's lock.
func (s *StorageStore) Release(ctx context.Context, key string) error {
	name := storageKey(key)
	if err := s.storage.Lock(ctx, name); err != nil {
		return fmt.Errorf("locking replay entry: %w", err)
	}
	defer s.unlock(ctx, name)

	e, err := s.load(ctx, name)
	if err != nil || e.state != stateReserved {
		return err
	}
	return s.storage.Delete(ctx, name)
}

// lock takes the storage lock for name. A lock held by another instance
// means a copy of the delivery is being reserved there: a duplicate.
func (s *StorageStore) lock(ctx context.Context, name string) (bool, error) {
	if tl, ok := s.storage.(certmagic.TryLocker); ok {
		locked, err := tl.TryLock(ctx, name)
		if err != nil {
			return false, fmt.Errorf("locking replay entry: %w", err)
		}
		return locked, nil
	}
	if err := s.storage.Lock(ctx, name); err != nil {
		return false, fmt.Errorf("locking replay entry: %w", err)
	}
	return true, nil
}

func (s *StorageStore) unlock(ctx context.Context, name string) {
	if err := s.storage.Unlock(context.WithoutCancel(ctx), name); err != nil {
		s.logger.Error("unlocking replay entry", zap.String("key", name), zap.Error(err))
	}
}

// An entry is its state and its expiry in Unix nanoseconds: "r 1700000000000000000".
const (
	stateReserved  = "r"
	stateCommitted = "c"
)

type storageEntry struct {
	state   string
	expires int64
}

// parseEntry reads an entry. One that cannot be read is kept as committed
// for an hour: refusing one delivery is better than accepting a replay, and
// the cleaner removes it once expired.
func parseEntry(b []byte) (storageEntry, bool) {
	state, exp, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	expires, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || (state != stateReserved && state != stateCommitted) {
		return storageEntry{stateCommitted, now().Add(time.Hour).UnixNano()}, false
	}
	return storageEntry{state, expires}, true
}

// load returns the entry at name, or a zero entry when there is none.
func (s *StorageStore) load(ctx context.Context, name string) (storageEntry, error) {
	b, err := s.storage.Load(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return storageEntry{}, nil
	}
	if err != nil {
		return storageEntry{}, fmt.Errorf("reading replay entry: %w", err)
	}
	e, _ := parseEntry(b)
	return e, nil
}

// store writes an entry in the given state at name that expires after ttl.
func (s *StorageStore) store(ctx context.Context, name, state string, ttl time.Duration) error {
	entry := state + " " + strconv.FormatInt(now().Add(ttl).UnixNano(), 10)
	if err := s.storage.Store(ctx, name, []byte(entry)); err != nil {
		return fmt.Errorf("writing replay entry: %w", err)
	}
	return nil
}

// cleanLoop removes expired entries until the configuration is unloaded.
func (s *StorageStore) cleanLoop(ctx caddy.Context) {
	ticker := time.NewTicker(time.Duration(s.CleanupInterval))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			s.clean(ctx)
		}
	}
}

// clean removes the expired entries, if no other instance is doing so.
func (s *StorageStore) clean(ctx context.Context) {
	const lockName = storagePrefix + "_cleanup"
	locked, err := s.lock(ctx, lockName)
	if err != nil || !locked {
		return
	}
	defer s.unlock(ctx, lockName)

	keys, err := s.storage.List(ctx, storagePrefix, true)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.logger.Error("listing replay entries", zap.Error(err))
		}
		return
	}
	removed := 0
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		info, err := s.storage.Stat(ctx, k)
		if err != nil || !info.IsTerminal {
			continue
		}
		if b, err := s.storage.Load(ctx, k); err == nil && expired(b) {
			if s.storage.Delete(ctx, k) == nil {
				removed++
			}
		}
	}
	s.logger.Debug("replay entries cleaned", zap.Int("removed", removed),
		zap.Int("listed", len(keys)))
}

// expired reports whether an entry's expiry has passed, or cannot be read.
func expired(b []byte) bool {
	e, ok := parseEntry(b)
	return !ok || e.expires <= now().UnixNano()
}

// storageKey maps a replay key to a storage key. Keys hold delivery IDs
// chosen by the sender, so they are hashed: no ID can name a path.
func storageKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return path.Join(storagePrefix, h[:2], h)
}

// Interface guards
var (
	_ ReplayStore           = (*StorageStore)(nil)
	_ caddy.Provisioner     = (*StorageStore)(nil)
	_ caddyfile.Unmarshaler = (*StorageStore)(nil)
)
