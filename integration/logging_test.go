package integration

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRejectionLogging checks that every refusal writes exactly one warn
// line from the handler's logger with the reason, scheme and delivery ID,
// and that no secret or signature ends up in the log.
func TestRejectionLogging(t *testing.T) {
	github, slack := senderNamed("github"), senderNamed("slack")
	standard := senderNamed("standard_webhooks")
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{github, slack, standard}, "max_body 1KB"))

	type refusal struct {
		name   string
		d      *delivery
		status int
		reason string
		scheme string
		// id is the delivery ID the line must carry, "" for a scheme without one.
		id string
	}
	var (
		refusals   []refusal
		signatures []string
	)
	refuse := func(name string, d *delivery, status int, reason, scheme, id string) {
		refusals = append(refusals, refusal{name, d, status, reason, scheme, id})
		for _, h := range []string{github.sigHeader, slack.sigHeader, standard.sigHeader} {
			if v := d.header.Get(h); len(sigCore(v)) > 8 {
				signatures = append(signatures, sigCore(v))
			}
		}
	}

	forged := github.newDelivery(inst.base, time.Now())
	forged.header.Set(github.sigHeader, tamper(forged.header.Get(github.sigHeader)))
	refuse("invalid signature", forged, 401, "invalid_signature", "github",
		forged.header.Get("X-GitHub-Delivery"))

	stale := slack.newDelivery(inst.base, time.Now().Add(-10*time.Minute))
	refuse("stale timestamp", stale, 401, "stale_timestamp", "slack", "")

	future := standard.newDelivery(inst.base, time.Now().Add(10*time.Minute))
	refuse("future timestamp", future, 401, "future_timestamp", "standard_webhooks",
		future.header.Get("Webhook-Id"))

	dup := github.newDelivery(inst.base, time.Now())
	expectForwarded(t, inst, up, dup, http.StatusOK)
	refuse("duplicate delivery", dup, 409, "duplicate_delivery", "github",
		dup.header.Get("X-GitHub-Delivery"))

	dupStd := standard.newDelivery(inst.base, time.Now())
	expectForwarded(t, inst, up, dupStd, http.StatusOK)
	refuse("duplicate standard delivery", dupStd, 409, "duplicate_delivery",
		"standard_webhooks", dupStd.header.Get("Webhook-Id"))

	large := github.newDelivery(inst.base, time.Now())
	large.body = sizedBody(2000)
	github.sign(large, github.secret, time.Now(), inst.base)
	refuse("body too large", large, 413, "body_too_large", "github",
		large.header.Get("X-GitHub-Delivery"))

	malformed := github.newDelivery(inst.base, time.Now())
	malformed.header.Set(github.sigHeader,
		strings.TrimPrefix(malformed.header.Get(github.sigHeader), "sha256="))
	refuse("malformed signature", malformed, 400, "malformed_signature", "github",
		malformed.header.Get("X-GitHub-Delivery"))

	missing := slack.newDelivery(inst.base, time.Now())
	missing.header.Del(slack.sigHeader)
	refuse("missing signature", missing, 401, "missing_signature", "slack", "")

	badTime := slack.newDelivery(inst.base, time.Now())
	badTime.header.Set("X-Slack-Request-Timestamp", "yesterday")
	refuse("malformed timestamp", badTime, 400, "malformed_timestamp", "slack", "")

	for _, r := range refusals {
		expectRefused(t, inst, up, r.d, r.status)
	}

	lines := rejections(t, inst.logPath, len(refusals))
	if len(lines) != len(refusals) {
		t.Fatalf("got %d rejection lines, want %d", len(lines), len(refusals))
	}
	for i, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			e := lines[i]
			if e.str("level") != "warn" {
				t.Errorf("level = %q, want warn", e.str("level"))
			}
			if e.str("reason") != r.reason || e.str("scheme") != r.scheme {
				t.Errorf("reason, scheme = %q, %q; want %q, %q",
					e.str("reason"), e.str("scheme"), r.reason, r.scheme)
			}
			if id, ok := e["id"].(string); !ok || id != r.id {
				t.Errorf("id = %v, want %q", e["id"], r.id)
			}
			if _, ok := e["remote_ip"].(string); !ok {
				t.Errorf("no remote_ip field in %v", e)
			}
		})
	}

	t.Run("no secret in the log file", func(t *testing.T) {
		raw := readFile(t, inst.logPath)
		for _, s := range []string{github.secret, slack.secret, standard.secret,
			strings.TrimPrefix(standard.secret, "whsec_")} {
			if strings.Contains(raw, s) {
				t.Errorf("log file contains the secret %q", s)
			}
		}
	})

	t.Run("no signature in the handler's lines", func(t *testing.T) {
		for _, e := range readLog(t, inst.logPath) {
			if e.str("logger") != "http.handlers.webhook_verify" {
				continue
			}
			line := mustJSON(t, e)
			for _, sig := range signatures {
				if strings.Contains(line, sig) {
					t.Errorf("handler log line contains the signature %q: %s", sig, line)
				}
			}
		}
	})

	t.Run("no signature in any line but caddy's own request dumps", func(t *testing.T) {
		for _, e := range readLog(t, inst.logPath) {
			if caddyRequestDumps[e.str("logger")] {
				continue
			}
			line := mustJSON(t, e)
			for _, sig := range signatures {
				if strings.Contains(line, sig) {
					t.Errorf("log line contains the signature %q: %s", sig, line)
				}
			}
		}
	})
}

// caddyRequestDumps are the loggers of Caddy itself that, at debug level,
// write every request header of a request they handle, the signature
// included: the error log of a refused request and reverse_proxy's record of
// each round trip. The handler cannot keep its headers out of them; an
// operator who logs at debug level must filter those headers in the log
// configuration.
var caddyRequestDumps = map[string]bool{
	"http.log.error":              true,
	"http.handlers.reverse_proxy": true,
}

// readFile returns the file's content as text.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b)
}
