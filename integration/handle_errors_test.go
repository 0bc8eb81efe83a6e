package integration

import (
	"net/http"
	"testing"
	"time"
)

// TestHandleErrors checks that refusals are handler errors that
// handle_errors can shape, with the reason in a placeholder.
func TestHandleErrors(t *testing.T) {
	github, slack := senderNamed("github"), senderNamed("slack")
	up := newUpstream(t)
	site := routes(up, []sender{github, slack}, "max_body 1KB") + `
	handle_errors {
		respond "refused: {http.webhook_verify.reason}" {http.error.status_code}
	}
`
	inst := startCaddy(t, site)

	forged := func() *delivery {
		d := github.newDelivery(inst.base, time.Now())
		d.header.Set(github.sigHeader, tamper(d.header.Get(github.sigHeader)))
		return d
	}
	malformed := func() *delivery {
		d := github.newDelivery(inst.base, time.Now())
		d.header.Set(github.sigHeader, "sha256=xyz")
		return d
	}
	large := func() *delivery {
		d := github.newDelivery(inst.base, time.Now())
		d.body = sizedBody(1500)
		github.sign(d, github.secret, time.Now(), inst.base)
		return d
	}
	stale := func() *delivery {
		return slack.newDelivery(inst.base, time.Now().Add(-time.Hour))
	}
	dup := github.newDelivery(inst.base, time.Now())
	expectForwarded(t, inst, up, dup, http.StatusOK)

	cases := []struct {
		name   string
		d      *delivery
		status int
		body   string
	}{
		{"forged", forged(), 401, "refused: invalid_signature"},
		{"malformed", malformed(), 400, "refused: malformed_signature"},
		{"too large", large(), 413, "refused: body_too_large"},
		{"stale", stale(), 401, "refused: stale_timestamp"},
		{"duplicate", dup, 409, "refused: duplicate_delivery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			status, body := inst.send(t, tc.d)
			if status != tc.status || body != tc.body {
				t.Errorf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			if up.count() != before {
				t.Errorf("upstream received the refused delivery")
			}
		})
	}
}

// TestErrorMessage checks that {http.error.message} of a refusal carries the
// reason and nothing of the request.
func TestErrorMessage(t *testing.T) {
	github := senderNamed("github")
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{github})+`
	handle_errors {
		respond "{http.error.message}" {http.error.status_code}
	}
`)
	d := github.newDelivery(inst.base, time.Now())
	d.header.Set(github.sigHeader, tamper(d.header.Get(github.sigHeader)))
	expectRefused(t, inst, up, d, http.StatusUnauthorized)

	status, body := inst.send(t, d)
	if want := "webhook_verify: invalid_signature"; status != 401 || body != want {
		t.Errorf("got %d %q, want 401 %q", status, body, want)
	}
}
