package webhookverify

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// benchKey is shaped like a real key: namespace, kind and a 64-digit hex hash.
func benchKey(i int) string {
	return "webhook_verify:0123456789abcdef:sig:" + strconv.FormatInt(int64(i), 16) +
		"0000000000000000000000000000000000000000000000000000000000"
}

// benchmarkStore measures one reserve and one commit of a new key.
func benchmarkStore(b *testing.B, s ReplayStore) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := benchKey(i)
		i++
		if ok, err := s.Reserve(ctx, k, time.Minute); !ok || err != nil {
			b.Fatalf("Reserve = %v, %v", ok, err)
		}
		if err := s.Commit(ctx, k, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserveCommitMemory(b *testing.B) {
	benchmarkStore(b, &MemoryStore{table: newMemoryTable(1_000_000, zap.NewNop())})
}

func BenchmarkReserveCommitStorage(b *testing.B) {
	benchmarkStore(b, &StorageStore{
		storage: &certmagic.FileStorage{Path: b.TempDir()},
		logger:  zap.NewNop(),
	})
}

// BenchmarkMemoryTable1M fills a table with a million keys of the real shape
// and reports the heap it holds per key, the key's own bytes included.
func BenchmarkMemoryTable1M(b *testing.B) {
	const n = 1_000_000
	var tab *memoryTable

	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		tab = newMemoryTable(n, zap.NewNop())
		for i := range n {
			tab.commit(benchKey(i), time.Hour)
		}

		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/key")
	}
	runtime.KeepAlive(tab)
}
