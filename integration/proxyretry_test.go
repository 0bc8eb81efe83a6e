package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// proxyRetrySite routes github deliveries to a failing and a healthy
// upstream, with reverse_proxy retrying a 5xx on the next one.
func proxyRetrySite(secret string, failing, healthy *upstream, extra string) string {
	return fmt.Sprintf(`	webhook_verify github {
		secret %q
	}
	reverse_proxy %s %s {
		lb_policy first
		lb_retries 1
		fail_duration 30s
		unhealthy_status 503
		lb_retry_match {
			expression `+"`{rp.status_code} >= 500`"+`
		}
		%s
	}
`, secret, failing.addr(), healthy.addr(), extra)
}

// TestProxyRetryNeverSendsEmptyBody checks that a proxy retry after the
// verified body was consumed fails, rather than reaching the next upstream
// with an empty body under the delivery's signature; the sender gets a 5xx
// and its own retry is not refused as a replay.
func TestProxyRetryNeverSendsEmptyBody(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			github := senderNamed("github")
			failing, healthy := newUpstream(t), newUpstream(t)
			failing.status.Store(http.StatusServiceUnavailable)
			inst := startCaddy(t, proxyRetrySite(github.secret, failing, healthy, ""))

			d := github.newDelivery(inst.base, time.Now())
			d.chunked = chunked
			status, _ := inst.send(t, d)
			if status < 500 {
				t.Fatalf("status = %d, want a 5xx when the retry cannot resend the body",
					status)
			}
			if n := healthy.count(); n != 0 {
				t.Fatalf("second upstream got %d requests (last body %q), want none",
					n, healthy.last(t).body)
			}
			if status, _ = inst.send(t, d); status == http.StatusConflict {
				t.Fatal("the sender's retry was refused as a replay")
			}
		})
	}
}

// TestProxyRetryWithRequestBuffers checks the supported set-up for proxy
// retries: request_buffers lets reverse_proxy resend the verified body.
func TestProxyRetryWithRequestBuffers(t *testing.T) {
	github := senderNamed("github")
	failing, healthy := newUpstream(t), newUpstream(t)
	failing.status.Store(http.StatusServiceUnavailable)
	inst := startCaddy(t, proxyRetrySite(github.secret, failing, healthy,
		"request_buffers 1MB"))

	d := github.newDelivery(inst.base, time.Now())
	status, _ := inst.send(t, d)
	got := healthy.last(t)
	if status != http.StatusOK || !bytes.Equal(got.body, d.body) {
		t.Fatalf("status %d, second upstream got %q; want 200 and %q", status, got.body, d.body)
	}
}
