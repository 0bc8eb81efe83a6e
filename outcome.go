package webhookverify

// The outcome of a delivery as others see it: the refusal, its log line and
// event, the placeholders, and the status the next handlers answered with.

import (
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// reject logs the refusal, counts it, emits an event for it and returns it
// as a handler error.
func (h *Handler) reject(r *http.Request, repl *caddy.Replacer, d *delivery, rsn reason) error {
	status := reasonStatus[rsn]
	h.setPlaceholders(repl, d, rsn)
	verifications.WithLabelValues(h.scheme.name, "rejected", string(rsn)).Inc()

	fields := append(h.deliveryFields(r, d), zap.String("reason", string(rsn)))
	h.rejects.write(fields)

	if h.events != nil {
		h.events.Emit(h.ctx, "webhook_rejected", map[string]any{
			"scheme":    h.scheme.name,
			"reason":    string(rsn),
			"status":    status,
			"key_id":    d.keyID,
			"id":        d.id,
			"remote_ip": remoteIP(r),
			"uri":       r.RequestURI,
		})
	}
	return caddyhttp.Error(status, rejection{reason: rsn})
}

// deliveryFields are the log fields that describe a delivery. They hold no
// secret, signature or body.
func (h *Handler) deliveryFields(r *http.Request, d *delivery) []zap.Field {
	return []zap.Field{
		zap.String("scheme", h.scheme.name),
		zap.String("key_id", d.keyID),
		zap.String("id", d.id),
		zap.String("remote_ip", remoteIP(r)),
		zap.String("uri", r.RequestURI),
	}
}

// setPlaceholders answers the {http.webhook_verify.*} placeholders from d.
// One lookup function costs less per request than six static values.
func (h *Handler) setPlaceholders(repl *caddy.Replacer, d *delivery, rsn reason) {
	repl.Map(func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, "http.webhook_verify.")
		if !ok {
			return nil, false
		}
		switch name {
		case "verified":
			return rsn == "", true
		case "scheme":
			return h.scheme.name, true
		case "reason":
			return string(rsn), true
		case "key_id":
			return d.keyID, true
		case "id":
			return d.id, true
		case "timestamp":
			return d.timestamp, true
		}
		return nil, false
	})
}

// remoteIP is the address of the connection's peer, without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusRecorder notes the status that later handlers send, to tell whether
// the application took the delivery.
type statusRecorder struct {
	caddyhttp.ResponseWriterWrapper
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriterWrapper.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriterWrapper.Write(b)
}
