package webhookverify

import (
	"encoding/json"
	"net/http"
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

// TestMemoryTablesPerHandler checks that a sender flooding its own route
// cannot evict the deliveries another handler remembers, and that a handler
// loaded again with the same configuration keeps its table.
func TestMemoryTablesPerHandler(t *testing.T) {
	store := json.RawMessage(`{"store":"memory","max_entries":5}`)
	victim := provisioned(t, &Handler{Preset: "github", ReplayRaw: store,
		Secrets: []Secret{{Value: "victim-secret"}}})
	flooder := provisioned(t, &Handler{Preset: "github", ReplayRaw: store,
		Secrets: []Secret{{Value: "flooder-secret"}}})

	sign := func(secret, body string) map[string]string {
		s, err := newSigner(&Handler{Preset: "github", Secrets: []Secret{{Value: secret}}})
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.sign(h, &delivery{body: []byte(body)}, now())
		return map[string]string{"X-Hub-Signature-256": h.Get("X-Hub-Signature-256")}
	}

	kept := sign("victim-secret", `{"n":"victim"}`)
	if _, err := serve(victim, &recorder{}, kept, `{"n":"victim"}`); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		body := `{"n":` + strconv.Itoa(i) + `}`
		if _, err := serve(flooder, &recorder{}, sign("flooder-secret", body), body); err != nil {
			t.Fatal(err)
		}
	}
	_, err := serve(victim, &recorder{}, kept, `{"n":"victim"}`)
	if code, _ := statusOf(t, err); code != 409 {
		t.Fatalf("victim's replay after the flood: %d, want 409", code)
	}

	again := provisioned(t, &Handler{Preset: "github", ReplayRaw: store,
		Secrets: []Secret{{Value: "victim-secret"}}})
	_, err = serve(again, &recorder{}, kept, `{"n":"victim"}`)
	if code, _ := statusOf(t, err); code != 409 {
		t.Fatalf("replay after loading the same configuration again: %d, want 409", code)
	}
}
