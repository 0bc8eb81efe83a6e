package webhookverify

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// defaultMaxEntries bounds the memory store when max_entries is not set.
const defaultMaxEntries = 100_000

// memoryTables holds one table per size across config reloads, so that a
// reload does not forget the deliveries already seen.
var memoryTables = caddy.NewUsagePool()

// MemoryStore keeps seen delivery IDs in this process's memory. It is the
// default store: fast, bounded, and kept across config reloads, but private
// to one Caddy instance and lost on restart. Behind a load balancer, use a
// store that the instances share. Each handler has a table of its own, kept
// across reloads while the handler's scheme and keys stay the same; a change
// of its secrets or keys starts it afresh, as a restart does.
type MemoryStore struct {
	// The most delivery IDs to remember. When full, the oldest are forgotten
	// first, which re-opens the door to replaying them; this is logged once.
	// Each entry takes a few hundred bytes. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	table   *memoryTable
	poolKey string
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_verify.replay.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision sets the defaults and attaches the store to a table of its own.
// A handler then narrows it with scope.
func (m *MemoryStore) Provision(ctx caddy.Context) error {
	if m.MaxEntries < 0 {
		return fmt.Errorf("max_entries: must not be negative, got %d", m.MaxEntries)
	}
	if m.MaxEntries == 0 {
		m.MaxEntries = defaultMaxEntries
	}
	m.logger = ctx.Logger()
	return m.scope("")
}

// scope attaches the store to the table of one handler configuration,
// named by scope. Handlers never share a table: a sender that floods its
// own route would otherwise evict the deliveries of another. The table is
// kept across reloads for as long as some configuration uses the scope.
func (m *MemoryStore) scope(scope string) error {
	key := "memory/" + strconv.Itoa(m.MaxEntries) + "/" + scope
	val, _, err := memoryTables.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newMemoryTable(m.MaxEntries, m.logger), nil
	})
	if err != nil {
		return err
	}
	if err := m.Cleanup(); err != nil {
		return err
	}
	m.poolKey, m.table = key, val.(*memoryTable)
	return nil
}

// Cleanup drops this configuration's hold on its table.
func (m *MemoryStore) Cleanup() error {
	if m.poolKey == "" {
		return nil
	}
	_, err := memoryTables.Delete(m.poolKey)
	m.poolKey = ""
	return err
}

// UnmarshalCaddyfile reads `memory [<max_entries>]`.
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the store name
	if d.NextArg() {
		n, err := strconv.Atoi(d.Val())
		if err != nil || n <= 0 {
			return d.Errf("max_entries: must be a positive integer, got %q", d.Val())
		}
		m.MaxEntries = n
	}
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	return nil
}

// Reserve implements ReplayStore.
func (m *MemoryStore) Reserve(_ context.Context, key string, ttl time.Duration) (bool, error) {
	return m.table.reserve(key, ttl), nil
}

// Commit implements ReplayStore.
func (m *MemoryStore) Commit(_ context.Context, key string, ttl time.Duration) error {
	m.table.commit(key, ttl)
	return nil
}

// Release implements ReplayStore.
func (m *MemoryStore) Release(_ context.Context, key string) error {
	m.table.release(key)
	return nil
}

// memoryTable is an expiring set with a size bound. Entries are kept in the
// order they were last written, so the front is both the oldest entry and,
// since every TTL of one handler is the same, the first to expire; expired
// entries are dropped from the front as new ones arrive, in O(1) amortised.
type memoryTable struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	order   *list.List // of *memoryEntry, oldest first
	logger  *zap.Logger
	full    bool // whether eviction has been logged
}

type memoryEntry struct {
	key     string
	expires int64 // Unix nanoseconds
	// committed marks an accepted delivery, which a release leaves alone.
	committed bool
}

func newMemoryTable(max int, logger *zap.Logger) *memoryTable {
	return &memoryTable{
		max:     max,
		entries: make(map[string]*list.Element),
		order:   list.New(),
		logger:  logger,
	}
}

// Destruct implements caddy.Destructor; the table needs no teardown.
func (t *memoryTable) Destruct() error { return nil }

func (t *memoryTable) reserve(key string, ttl time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()

	at := now().UnixNano()
	t.dropExpired(at)

	if el, ok := t.entries[key]; ok {
		if el.Value.(*memoryEntry).expires > at {
			return false
		}
		t.remove(el)
	}
	if len(t.entries) >= t.max {
		t.evictOldest()
	}
	t.entries[key] = t.order.PushBack(&memoryEntry{key: key, expires: at + int64(ttl)})
	return true
}

func (t *memoryTable) commit(key string, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()

	expires := now().UnixNano() + int64(ttl)
	if el, ok := t.entries[key]; ok {
		e := el.Value.(*memoryEntry)
		e.expires, e.committed = expires, true
		t.order.MoveToBack(el)
		return
	}
	if len(t.entries) >= t.max {
		t.evictOldest()
	}
	e := &memoryEntry{key: key, expires: expires, committed: true}
	t.entries[key] = t.order.PushBack(e)
}

func (t *memoryTable) release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()

	if el, ok := t.entries[key]; ok && !el.Value.(*memoryEntry).committed {
		t.remove(el)
	}
}

func (t *memoryTable) dropExpired(at int64) {
	for el := t.order.Front(); el != nil; el = t.order.Front() {
		if el.Value.(*memoryEntry).expires > at {
			return
		}
		t.remove(el)
	}
}

func (t *memoryTable) evictOldest() {
	if !t.full {
		t.full = true
		t.logger.Warn("replay store full; forgetting the oldest deliveries, which can "+
			"then be replayed until they fall outside the tolerance",
			zap.Int("max_entries", t.max))
	}
	t.remove(t.order.Front())
}

func (t *memoryTable) remove(el *list.Element) {
	delete(t.entries, el.Value.(*memoryEntry).key)
	t.order.Remove(el)
}

// Interface guards
var (
	_ ReplayStore           = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)
