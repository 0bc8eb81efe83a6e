package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// stores are the replay stores that need no outside service: the default
// memory store, and the storage store on the file system storage that the
// harness configures in the test's temporary directory.
var stores = []string{"memory", "storage"}

// TestReplay checks, with each store, that a delivery is forwarded once,
// that duplicates are recognised by what the signature covers, and that a
// delivery the application failed to take can be retried.
func TestReplay(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) { testReplay(t, store) })
	}
}

// testReplay is TestReplay with one store.
func testReplay(t *testing.T, store string) {
	github, standard := senderNamed("github"), senderNamed("standard_webhooks")
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{github, standard}, "replay "+store))

	t.Run("standard_webhooks same delivery twice", func(t *testing.T) {
		d := standard.newDelivery(inst.base, time.Now())
		expectForwarded(t, inst, up, d, http.StatusOK)
		expectRefused(t, inst, up, d, http.StatusConflict)
	})

	t.Run("standard_webhooks same webhook-id signed again later", func(t *testing.T) {
		at := time.Now()
		d := standard.newDelivery(inst.base, at.Add(-time.Minute))
		expectForwarded(t, inst, up, d, http.StatusOK)

		again := &delivery{method: d.method, path: d.path, header: d.header.Clone(), body: d.body}
		signStandardID(again, standard.secret, at, d.header.Get("Webhook-Id"))
		expectRefused(t, inst, up, again, http.StatusConflict)
	})

	t.Run("github same signature with another X-GitHub-Delivery", func(t *testing.T) {
		d := github.newDelivery(inst.base, time.Now())
		expectForwarded(t, inst, up, d, http.StatusOK)

		d.header.Set("X-GitHub-Delivery", nextID("gh-forged"))
		expectRefused(t, inst, up, d, http.StatusConflict)
	})

	t.Run("github same X-GitHub-Delivery with another body", func(t *testing.T) {
		d := github.newDelivery(inst.base, time.Now())
		expectForwarded(t, inst, up, d, http.StatusOK)

		other := github.newDelivery(inst.base, time.Now())
		other.header.Set("X-GitHub-Delivery", d.header.Get("X-GitHub-Delivery"))
		expectForwarded(t, inst, up, other, http.StatusOK)
	})

	t.Run("retry after the upstream answered 500", func(t *testing.T) {
		d := standard.newDelivery(inst.base, time.Now())
		up.status.Store(http.StatusInternalServerError)
		expectForwarded(t, inst, up, d, http.StatusInternalServerError)

		up.status.Store(http.StatusOK)
		expectForwarded(t, inst, up, d, http.StatusOK)
		expectRefused(t, inst, up, d, http.StatusConflict)
	})

	t.Run("retry after the upstream answered 503 for github", func(t *testing.T) {
		d := github.newDelivery(inst.base, time.Now())
		up.status.Store(http.StatusServiceUnavailable)
		expectForwarded(t, inst, up, d, http.StatusServiceUnavailable)

		up.status.Store(http.StatusOK)
		expectForwarded(t, inst, up, d, http.StatusOK)
		expectRefused(t, inst, up, d, http.StatusConflict)
	})

	// Senders retry whatever was not a 2xx, with the same ID (Standard
	// Webhooks) or the same bytes (GitHub, Shopify redeliveries); a 4xx such
	// as 429 must not cost them the delivery.
	for _, code := range []int{http.StatusTooManyRequests, http.StatusRequestTimeout,
		http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprintf("retry after the upstream answered %d", code), func(t *testing.T) {
			d := standard.newDelivery(inst.base, time.Now())
			up.status.Store(int32(code))
			expectForwarded(t, inst, up, d, code)

			up.status.Store(http.StatusOK)
			expectForwarded(t, inst, up, d, http.StatusOK)
			expectRefused(t, inst, up, d, http.StatusConflict)
		})
	}
}

// TestReplayUpstreamDown checks that a delivery that could not reach the
// upstream at all (502) is accepted when retried after the upstream is up.
func TestReplayUpstreamDown(t *testing.T) {
	port := freePort(t)
	standard := senderNamed("standard_webhooks")
	site := fmt.Sprintf("\twebhook_verify standard_webhooks {\n\t\tsecret %s\n\t}\n"+
		"\treverse_proxy 127.0.0.1:%d\n", standard.secret, port)
	inst := startCaddy(t, site)

	d := standard.newDelivery(inst.base, time.Now())
	d.path = "/standard_webhooks"
	if status, _ := inst.send(t, d); status != http.StatusBadGateway {
		t.Fatalf("with the upstream down: status = %d, want 502", status)
	}

	up := newUpstreamAt(t, port)
	expectForwarded(t, inst, up, d, http.StatusOK)
	expectRefused(t, inst, up, d, http.StatusConflict)
}

// TestReplayOff checks that with replay off a valid delivery is forwarded
// however often it arrives.
func TestReplayOff(t *testing.T) {
	github := senderNamed("github")
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{github}, "replay off"))

	d := github.newDelivery(inst.base, time.Now())
	for i := range 3 {
		t.Run(fmt.Sprintf("copy %d", i+1), func(t *testing.T) {
			expectForwarded(t, inst, up, d, http.StatusOK)
		})
	}
}

// TestReplayNamespaces checks that two routes with the same preset but
// different secrets, that is two different senders, do not refuse each
// other's deliveries because they happen to share a delivery ID.
func TestReplayNamespaces(t *testing.T) {
	a, b := senderNamed("standard_webhooks"), senderNamed("standard_webhooks")
	a.name = "tenant_a"
	b.name = "tenant_b"
	b.secret = "whsec_" + "dGVuYW50LWItc3RhbmRhcmQtd2ViaG9va3Mta2V5"
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{a, b}))

	id := nextID("msg_shared")
	at := time.Now()
	da := a.newDelivery(inst.base, at)
	signStandardID(da, a.secret, at, id)
	db := b.newDelivery(inst.base, at)
	signStandardID(db, b.secret, at, id)

	expectForwarded(t, inst, up, da, http.StatusOK)
	expectForwarded(t, inst, up, db, http.StatusOK)
}

// TestConcurrentDuplicates sends, with each store, fifty copies of one
// delivery at once while the upstream is slow, and checks that exactly one
// reaches it and every other copy gets 409.
func TestConcurrentDuplicates(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) { testConcurrentDuplicates(t, store) })
	}
}

// testConcurrentDuplicates is TestConcurrentDuplicates with one store.
func testConcurrentDuplicates(t *testing.T, store string) {
	github, standard := senderNamed("github"), senderNamed("standard_webhooks")
	up := newUpstream(t)
	up.delay.Store(int64(200 * time.Millisecond))
	inst := startCaddy(t, routes(up, []sender{github, standard}, "replay "+store))

	for _, s := range []sender{github, standard} {
		t.Run(s.name+" identical copies", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			before := up.count()
			statuses := sendConcurrently(t, inst, repeat(d, 50))

			if statuses[http.StatusOK] != 1 || statuses[http.StatusConflict] != 49 {
				t.Errorf("statuses = %v, want one 200 and 49 409", statuses)
			}
			if n := up.count() - before; n != 1 {
				t.Errorf("upstream received %d copies, want 1", n)
			}
			if got := up.last(t); !bytes.Equal(got.body, d.body) {
				t.Errorf("upstream body = %q, want %q", got.body, d.body)
			}
		})
	}

	t.Run("distinct deliveries all pass intact", func(t *testing.T) {
		ds := make([]*delivery, 50)
		sent := map[string]bool{}
		for i := range ds {
			ds[i] = github.newDelivery(inst.base, time.Now())
			ds[i].body = sizedBody(32<<10 + i)
			github.sign(ds[i], github.secret, time.Now(), inst.base)
			sent[string(ds[i].body)] = true
		}
		before := up.count()
		statuses := sendConcurrently(t, inst, ds)
		if statuses[http.StatusOK] != 50 {
			t.Errorf("statuses = %v, want fifty 200", statuses)
		}

		got := up.since(before)
		if len(got) != 50 {
			t.Errorf("upstream received %d deliveries, want 50", len(got))
		}
		for _, r := range got {
			sig := "sha256=" + hexMAC256(github.secret, r.body)
			if !sent[string(r.body)] || r.header.Get(github.sigHeader) != sig {
				t.Errorf("upstream got a body that was not sent with its signature: "+
					"%d bytes, %q", len(r.body), r.body[:min(len(r.body), 60)])
			}
			delete(sent, string(r.body))
		}
	})
}

// repeat returns a slice holding d n times.
func repeat(d *delivery, n int) []*delivery {
	ds := make([]*delivery, n)
	for i := range ds {
		ds[i] = d
	}
	return ds
}

// sendConcurrently sends every delivery from its own goroutine, all at once
// over the instance's shared client, and counts the statuses.
func sendConcurrently(t *testing.T, inst *instance, ds []*delivery) map[int]int {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		start    = make(chan struct{})
		statuses = map[int]int{}
		errs     []error
	)
	for _, d := range ds {
		wg.Go(func() {
			<-start
			status, _, err := inst.trySend(d)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			statuses[status]++
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("sending: %v", err)
	}
	return statuses
}

// TestReplayClientGaveUp checks the case of a sender that gives up while the
// application is still working: reverse_proxy cancels the round trip and
// records 499, the application never answered, and the sender's retry must
// be accepted, not refused as a duplicate.
func TestReplayClientGaveUp(t *testing.T) {
	standard := senderNamed("standard_webhooks")
	up := newUpstream(t)
	access := filepath.Join(t.TempDir(), "access.log")
	site := routes(up, []sender{standard}) +
		fmt.Sprintf("\tlog {\n\t\toutput file %q\n\t\tformat json\n\t}\n", access)
	inst := startCaddy(t, site)

	up.delay.Store(int64(500 * time.Millisecond))
	d := standard.newDelivery(inst.base, time.Now())
	impatient := *inst
	impatient.client = &http.Client{Timeout: 100 * time.Millisecond}
	if _, _, err := impatient.trySend(d); err == nil {
		t.Fatal("the impatient sender got an answer; want a timeout")
	}
	waitForAccessStatus(t, access, 499)

	up.delay.Store(0)
	expectForwarded(t, inst, up, d, http.StatusOK)
}

// waitForAccessStatus polls the access log, for a few seconds at most,
// until a request with the given status has been logged, which Caddy does
// once every handler of the request has returned.
func waitForAccessStatus(t *testing.T, path string, status int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			for _, e := range readLog(t, path) {
				if s, ok := e["status"].(float64); ok && int(s) == status {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request with status %d in the access log", status)
}
