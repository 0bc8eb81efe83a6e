// Package storetest checks that a replay store keeps the contract of the
// webhook_verify ReplayStore interface. Every store's tests run it.
package storetest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Store is the replay store interface, repeated here so that this package
// does not import the handler package it is used to test.
type Store interface {
	Reserve(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Commit(ctx context.Context, key string, ttl time.Duration) error
	Release(ctx context.Context, key string) error
}

// Run checks the contract on stores made by open. Stores opened twice must
// share their state, as two Caddy instances sharing one backend do. Keys
// are made unique per run with prefix, so a shared backend may be reused.
func Run(t *testing.T, prefix string, open func(t *testing.T) Store) {
	ctx := context.Background()
	key := func(t *testing.T, name string) string { return prefix + ":" + t.Name() + ":" + name }

	t.Run("reserve is exclusive", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), time.Minute, true)
		mustReserve(t, s, key(t, "a"), time.Minute, false)
		mustReserve(t, s, key(t, "b"), time.Minute, true)
	})

	t.Run("release frees the key", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), time.Minute, true)
		if err := s.Release(ctx, key(t, "a")); err != nil {
			t.Fatal(err)
		}
		mustReserve(t, s, key(t, "a"), time.Minute, true)
		if err := s.Release(ctx, key(t, "never-seen")); err != nil {
			t.Fatalf("releasing an unknown key: %v", err)
		}
	})

	t.Run("commit keeps the key", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), time.Minute, true)
		if err := s.Commit(ctx, key(t, "a"), time.Hour); err != nil {
			t.Fatal(err)
		}
		mustReserve(t, open(t), key(t, "a"), time.Minute, false)
	})

	t.Run("release leaves a commit", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), time.Minute, true)
		if err := s.Commit(ctx, key(t, "a"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, key(t, "a")); err != nil {
			t.Fatal(err)
		}
		mustReserve(t, s, key(t, "a"), time.Minute, false)
	})

	t.Run("reservation expires", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), 200*time.Millisecond, true)
		time.Sleep(400 * time.Millisecond)
		mustReserve(t, s, key(t, "a"), time.Minute, true)
	})

	t.Run("commit after expiry stores again", func(t *testing.T) {
		s := open(t)
		mustReserve(t, s, key(t, "a"), 100*time.Millisecond, true)
		time.Sleep(250 * time.Millisecond)
		if err := s.Commit(ctx, key(t, "a"), time.Hour); err != nil {
			t.Fatal(err)
		}
		mustReserve(t, s, key(t, "a"), time.Minute, false)
	})

	t.Run("one winner across instances", func(t *testing.T) {
		stores := []Store{open(t), open(t)}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := stores[i%2].Reserve(ctx, key(t, "same"), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d of 40 concurrent reservations won, want 1", wins.Load())
		}
	})

	t.Run("distinct keys", func(t *testing.T) {
		s := open(t)
		for i := range 20 {
			mustReserve(t, s, key(t, strconv.Itoa(i)), time.Minute, true)
		}
	})
}

func mustReserve(t *testing.T, s Store, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Reserve(context.Background(), key, ttl)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("Reserve(%q) = %v, want %v", key, got, want)
	}
}
