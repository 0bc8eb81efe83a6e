package webhookverify

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestMemoryTable(t *testing.T) {
	at := time.Unix(1_000_000, 0)
	setClock(t, at)
	tab := newMemoryTable(3, zap.NewNop())

	if !tab.reserve("a", time.Minute) {
		t.Fatal("first reservation refused")
	}
	if tab.reserve("a", time.Minute) {
		t.Fatal("reserved key reserved twice")
	}

	tab.release("a")
	if !tab.reserve("a", time.Minute) {
		t.Fatal("released key not reservable")
	}

	tab.commit("a", time.Hour)
	setClock(t, at.Add(30*time.Minute))
	if tab.reserve("a", time.Minute) {
		t.Fatal("committed key reservable within its window")
	}
	setClock(t, at.Add(61*time.Minute))
	if !tab.reserve("a", time.Minute) {
		t.Fatal("committed key not reservable after its window")
	}
}

func TestMemoryTableReservationExpires(t *testing.T) {
	at := time.Unix(1_000_000, 0)
	setClock(t, at)
	tab := newMemoryTable(10, zap.NewNop())

	tab.reserve("a", time.Minute)
	setClock(t, at.Add(time.Minute+time.Nanosecond))
	if !tab.reserve("a", time.Minute) {
		t.Fatal("abandoned reservation did not expire")
	}
	if got := len(tab.entries); got != 1 {
		t.Fatalf("table holds %d entries, want 1", got)
	}
}

func TestMemoryTableBound(t *testing.T) {
	setClock(t, time.Unix(1_000_000, 0))
	tab := newMemoryTable(3, zap.NewNop())
	for i := range 5 {
		tab.reserve(strconv.Itoa(i), time.Hour)
	}
	if len(tab.entries) != 3 || tab.order.Len() != 3 {
		t.Fatalf("table holds %d/%d entries, want 3", len(tab.entries), tab.order.Len())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, got := tab.entries[strconv.Itoa(i)]; got != want {
			t.Errorf("entry %d kept = %v, want %v", i, got, want)
		}
	}
}

func TestMemoryTableConcurrentReserve(t *testing.T) {
	tab := newMemoryTable(100, zap.NewNop())
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tab.reserve("same", time.Minute) {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent reservations won, want 1", wins.Load())
	}
}
