package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// keyIDRoute is a github-preset route at /<name> with the given secret
// lines, which passes the {http.webhook_verify.key_id} placeholder to the
// upstream in the X-Key-Id header.
func keyIDRoute(up *upstream, name string, secrets ...string) string {
	return fmt.Sprintf(`	handle /%s {
		webhook_verify github {
			%s
		}
		request_header X-Key-Id {http.webhook_verify.key_id}
		reverse_proxy %s
	}
`, name, strings.Join(secrets, "\n\t\t\t"), up.addr())
}

// TestSecretRotation checks that with two secrets configured a delivery
// signed with either passes, and that {http.webhook_verify.key_id} names the
// secret that verified it.
func TestSecretRotation(t *testing.T) {
	up := newUpstream(t)
	site := keyIDRoute(up, "named", "secret old-secret old", "secret new-secret new") +
		keyIDRoute(up, "unnamed", "secret first-secret", "secret second-secret")

	t.Run("request_header runs after webhook_verify", func(t *testing.T) {
		cfg, err := adapt(caddyfile(1, t.TempDir(), site))
		if err != nil {
			t.Fatalf("adapting: %v", err)
		}
		verify := strings.Index(string(cfg), `"handler":"webhook_verify"`)
		headers := strings.Index(string(cfg), `"handler":"headers"`)
		if verify < 0 || headers < 0 || headers < verify {
			t.Fatalf("webhook_verify at %d, headers at %d in %s", verify, headers, cfg)
		}
	})

	inst := startCaddy(t, site)
	cases := []struct {
		route, secret, keyID string
	}{
		{"named", "old-secret", "old"},
		{"named", "new-secret", "new"},
		{"unnamed", "first-secret", "1"},
		{"unnamed", "second-secret", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.route+" signed with "+tc.secret, func(t *testing.T) {
			s := senderNamed("github")
			s.name, s.secret = tc.route, tc.secret
			d := s.newDelivery(inst.base, time.Now())
			expectForwarded(t, inst, up, d, http.StatusOK)
			if got := up.last(t).header.Values("X-Key-Id"); !equalStrings(got, []string{tc.keyID}) {
				t.Errorf("upstream X-Key-Id = %q, want %q", got, tc.keyID)
			}
		})
	}

	t.Run("a key id sent by the client is replaced", func(t *testing.T) {
		s := senderNamed("github")
		s.name, s.secret = "named", "new-secret"
		d := s.newDelivery(inst.base, time.Now())
		d.header.Set("X-Key-Id", "old")
		if status, _ := inst.send(t, d); status != http.StatusOK {
			t.Fatalf("status = %d, want 200", status)
		}
		if got := up.last(t).header.Values("X-Key-Id"); !equalStrings(got, []string{"new"}) {
			t.Errorf("upstream X-Key-Id = %q, want [new]", got)
		}
	})

	t.Run("a retired secret is refused", func(t *testing.T) {
		s := senderNamed("github")
		s.name, s.secret = "named", "first-secret"
		expectRefused(t, inst, up, s.newDelivery(inst.base, time.Now()), http.StatusUnauthorized)
	})
}

// TestSignatureListRotation checks the presets whose header can carry
// several signatures while a sender rotates: one matching entry is enough.
func TestSignatureListRotation(t *testing.T) {
	up := newUpstream(t)
	stripe, standard := senderNamed("stripe"), senderNamed("standard_webhooks")
	inst := startCaddy(t, routes(up, []sender{stripe, standard}))

	t.Run("stripe with a stale v1 first", func(t *testing.T) {
		d := stripe.newDelivery(inst.base, time.Now())
		v := d.header.Get("Stripe-Signature")
		i := strings.Index(v, ",")
		d.header.Set("Stripe-Signature", v[:i]+",v1="+strings.Repeat("ab", 32)+v[i:])
		expectForwarded(t, inst, up, d, http.StatusOK)
	})

	t.Run("standard_webhooks with an unknown version and a stale v1 first", func(t *testing.T) {
		d := standard.newDelivery(inst.base, time.Now())
		stale := "v1," + strings.Repeat("A", 43) + "="
		d.header.Set("Webhook-Signature",
			"v1a,c2lnbmF0dXJl "+stale+" "+d.header.Get("Webhook-Signature"))
		expectForwarded(t, inst, up, d, http.StatusOK)
	})

	t.Run("standard_webhooks with only unknown versions", func(t *testing.T) {
		d := standard.newDelivery(inst.base, time.Now())
		d.header.Set("Webhook-Signature", "v1a,c2lnbmF0dXJl v2,c2lnbmF0dXJl")
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})
}
