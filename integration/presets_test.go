package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPresetsAccept sends one correctly signed delivery per preset (and per
// gitea header, and for the generic scheme) and checks that it reaches the
// upstream byte for byte and the sender gets the upstream's answer.
func TestPresetsAccept(t *testing.T) {
	up := newUpstream(t)
	inst := startPatched(t, routes(up, senders), useGenericContent)

	for _, s := range senders {
		t.Run(s.name, func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			expectForwarded(t, inst, up, d, http.StatusOK)
		})
	}

	t.Run("upstream status passes through", func(t *testing.T) {
		up.status.Store(http.StatusAccepted)
		defer up.status.Store(http.StatusOK)
		d := senderNamed("github").newDelivery(inst.base, time.Now())
		expectForwarded(t, inst, up, d, http.StatusAccepted)
	})

	t.Run("chunked body", func(t *testing.T) {
		d := senderNamed("stripe").newDelivery(inst.base, time.Now())
		d.chunked = true
		expectForwarded(t, inst, up, d, http.StatusOK)
		if te := up.last(t).header.Get("Content-Length"); te != "" {
			t.Logf("upstream saw Content-Length %s for a chunked delivery", te)
		}
	})
}

// TestGenericScheme runs the generic scheme with every field set, written in
// the Caddyfile as an operator would write it, and the same scheme given as
// JSON.
func TestGenericScheme(t *testing.T) {
	s := senderNamed("generic")

	t.Run("json config", func(t *testing.T) {
		up := newUpstream(t)
		inst := startPatched(t, routes(up, []sender{s}), useGenericContent)
		expectForwarded(t, inst, up, s.newDelivery(inst.base, time.Now()), http.StatusOK)

		d := s.newDelivery(inst.base, time.Now())
		d.header.Set("X-Req", "changed-after-signing")
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})

	t.Run("caddyfile signed_content with method url and header placeholders", func(t *testing.T) {
		up := newUpstream(t)
		site := routes(up, []sender{s}, "signed_content "+quote(genericSignedContent))
		inst, err := tryStart(t, site, nil)
		if err != nil {
			t.Fatalf("the Caddyfile from the docs does not load: %v", err)
		}
		expectForwarded(t, inst, up, s.newDelivery(inst.base, time.Now()), http.StatusOK)
	})
}

// quote writes s as a double-quoted Caddyfile token.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
