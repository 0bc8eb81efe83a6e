package integration

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestPlaceholdersInHeaderUpAndLog checks the handler's placeholders where
// operators use them: in reverse_proxy's header_up, for the application,
// and in the access log through log_append, for accepted and refused
// deliveries alike.
func TestPlaceholdersInHeaderUpAndLog(t *testing.T) {
	github := senderNamed("github")
	up := newUpstream(t)
	access := filepath.Join(t.TempDir(), "access.log")
	site := fmt.Sprintf(`	log_append webhook_verified {http.webhook_verify.verified}
	log_append webhook_reason {http.webhook_verify.reason}
	webhook_verify github {
		secret %q main
	}
	reverse_proxy %s {
		header_up X-Webhook-Id {http.webhook_verify.id}
		header_up X-Webhook-Key {http.webhook_verify.key_id}
		header_up X-Webhook-Scheme {http.webhook_verify.scheme}
	}
	log {
		output file %q
		format json
	}
`, github.secret, up.addr(), access)
	inst := startCaddy(t, site)

	d := github.newDelivery(inst.base, time.Now())
	expectForwarded(t, inst, up, d, http.StatusOK)
	got := up.last(t).header
	for name, want := range map[string]string{
		"X-Webhook-Id":     d.header.Get("X-GitHub-Delivery"),
		"X-Webhook-Key":    "main",
		"X-Webhook-Scheme": "github",
	} {
		if got.Get(name) != want {
			t.Errorf("upstream header %s = %q, want %q", name, got.Get(name), want)
		}
	}

	forged := github.newDelivery(inst.base, time.Now())
	forged.body = append(forged.body, ' ')
	expectRefused(t, inst, up, forged, http.StatusUnauthorized)

	waitForAccessStatus(t, access, http.StatusUnauthorized)
	var fields []string
	for _, e := range readLog(t, access) {
		fields = append(fields, fmt.Sprintf("%v/%v", e["webhook_verified"], e["webhook_reason"]))
	}
	want := []string{"true/", "false/invalid_signature"}
	if !equalStrings(fields, want) {
		t.Errorf("access log fields = %q, want %q", fields, want)
	}
}
