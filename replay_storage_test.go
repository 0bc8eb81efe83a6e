package webhookverify

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/webhookverify/caddy-webhook-verify/internal/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	table := newMemoryTable(1000, zap.NewNop())
	storetest.Run(t, "memory", func(t *testing.T) storetest.Store {
		return &MemoryStore{table: table}
	})
}

func TestStorageStoreContract(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, "storage", func(t *testing.T) storetest.Store {
		return &StorageStore{storage: &certmagic.FileStorage{Path: dir}, logger: zap.NewNop()}
	})
}

func TestStorageStoreCleansExpired(t *testing.T) {
	ctx := context.Background()
	s := &StorageStore{storage: &certmagic.FileStorage{Path: t.TempDir()}, logger: zap.NewNop()}
	at := time.Unix(1_000_000, 0)
	setClock(t, at)

	s.Commit(ctx, "old", time.Minute)
	s.Commit(ctx, "new", time.Hour)
	setClock(t, at.Add(2*time.Minute))
	s.clean(ctx)

	keys, err := s.storage.List(ctx, storagePrefix, true)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, k := range keys {
		if info, err := s.storage.Stat(ctx, k); err == nil && info.IsTerminal {
			files = append(files, k)
		}
	}
	if len(files) != 1 || files[0] != storageKey("new") {
		t.Fatalf("after cleaning: %q, want only %q", files, storageKey("new"))
	}
}

func TestStorageKeyHidesID(t *testing.T) {
	k := storageKey("webhook_verify:ns:id:../../etc/passwd")
	if len(k) != len(storagePrefix)+1+2+1+64 {
		t.Fatalf("storage key %q is not a fixed-length hash path", k)
	}
}
