package integration

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
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

	t.Run("json config without url", func(t *testing.T) {
		const content = "{method}|{header.X-Req}|{timestamp}|{body}"
		up := newUpstream(t)
		inst := startPatched(t, routes(up, []sender{s}), func(cfg map[string]any) {
			handlers(cfg)[0]["signed_content"] = content
		})

		d := s.newDelivery(inst.base, time.Now())
		ts := d.header.Get("X-Time")
		sig := mac(sha512.New, []byte(s.secret),
			[]byte(d.method+"|"+d.header.Get("X-Req")+"|"+ts+"|"), d.body)
		d.header.Set("X-Sig", "sha512="+base64.RawURLEncoding.EncodeToString(sig))
		expectForwarded(t, inst, up, d, http.StatusOK)
	})

	t.Run("url is the original before a rewrite", func(t *testing.T) {
		up := newUpstream(t)
		site := fmt.Sprintf("\thandle /hooks/* {\n\t\turi strip_prefix /hooks\n\t%s\n"+
			"\t\treverse_proxy %s\n\t}\n", s.directive(), up.addr())
		inst := startPatched(t, site, useGenericContent)

		hooks := s
		hooks.name = "hooks/generic"
		d := hooks.newDelivery(inst.base, time.Now())
		if status, _ := inst.send(t, d); status != http.StatusOK {
			t.Fatalf("status = %d, want 200", status)
		}
		got := up.last(t)
		if got.uri != "/generic?source=test" || !bytes.Equal(got.body, d.body) ||
			got.header.Get("X-Sig") != d.header.Get("X-Sig") {
			t.Errorf("upstream got %s %q X-Sig %q", got.uri, got.body, got.header.Get("X-Sig"))
		}
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
