package webhookverify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestRejectLogSuppressesFlood(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	l := newRejectLog(zap.New(core), 0, 3)

	for range 10 {
		l.write([]zap.Field{zap.String("reason", "invalid_signature")})
	}
	if n := logs.Len(); n != 3 {
		t.Fatalf("%d lines logged during the flood, want the burst of 3", n)
	}

	l.flush()
	all := logs.All()
	if len(all) != 4 {
		t.Fatalf("%d lines after flush, want 4", len(all))
	}
	last := all[3]
	if last.Message != "webhook rejections not logged" ||
		last.ContextMap()["suppressed"] != int64(7) {
		t.Fatalf("flush line = %q %v, want suppressed=7", last.Message, last.ContextMap())
	}

	l.flush()
	if logs.Len() != 4 {
		t.Fatal("an empty flush logged a line")
	}
}

// TestRejectionObserved checks the event, the metric and the log line that
// one forged delivery produces.
func TestRejectionObserved(t *testing.T) {
	h := provisioned(t, &Handler{Preset: "github", Secrets: []Secret{{Value: "s"}}})
	core, logs := observer.New(zapcore.WarnLevel)
	h.rejects = newRejectLog(zap.New(core), rejectRate, rejectBurst)

	var got map[string]any
	h.events.On("webhook_rejected", caddyevents.Handler(eventFunc(func(e caddy.Event) {
		got = e.Data
	})))

	counter := verifications.WithLabelValues("github", "rejected", "invalid_signature")
	before := testutil.ToFloat64(counter)

	_, err := serve(h, &recorder{}, map[string]string{
		"X-Hub-Signature-256": "sha256=" + zeros(64), "X-GitHub-Delivery": "d-1",
	}, "{}")
	if code, _ := statusOf(t, err); code != 401 {
		t.Fatalf("status %d, want 401", code)
	}

	if d := testutil.ToFloat64(counter) - before; d != 1 {
		t.Errorf("rejection counter rose by %v, want 1", d)
	}
	if got["reason"] != "invalid_signature" || got["id"] != "d-1" || got["status"] != 401 ||
		got["scheme"] != "github" {
		t.Errorf("event data = %v", got)
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].ContextMap()["reason"] != "invalid_signature" ||
		entries[0].ContextMap()["id"] != "d-1" {
		t.Errorf("log = %v", entries)
	}
}

type eventFunc func(caddy.Event)

func (f eventFunc) Handle(_ context.Context, e caddy.Event) error { f(e); return nil }

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

// TestKeyExpiryCountsDown checks that the expiry gauge is computed when
// scraped, from the nearest certificate expiry of a source.
func TestKeyExpiryCountsDown(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	setClock(t, at)
	keys := []*pubKey{{notAfter: at.Add(3 * time.Hour)}, {notAfter: at.Add(time.Hour)}, {}}
	c := &expiryCollector{desc: keyExpiry.desc}
	c.set("test-source", nearestExpiry(keys))

	help := "# HELP caddy_webhook_verify_key_expiry_seconds Seconds until the nearest " +
		"certificate expiry among the keys of each source (a JWKS URL, or a configured " +
		"public key); negative once expired.\n"
	want := help + `# TYPE caddy_webhook_verify_key_expiry_seconds gauge
caddy_webhook_verify_key_expiry_seconds{source="test-source"} 3600
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	setClock(t, at.Add(2*time.Hour))
	want = strings.Replace(want, "} 3600", "} -3600", 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
