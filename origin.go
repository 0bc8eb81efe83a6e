package webhookverify

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// parseOrigin checks an external_origin value: an http or https URL with a
// host, an optional port and nothing else.
func parseOrigin(s string) (scheme, host string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("external_origin: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", "", fmt.Errorf("external_origin: scheme must be http or https, got %q", s)
	case u.Host == "" || u.User != nil:
		return "", "", fmt.Errorf("external_origin: want scheme://host[:port], got %q", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", "", fmt.Errorf("external_origin: must not have a path, query or "+
			"fragment, got %q", s)
	}
	return u.Scheme, u.Host, nil
}

// origin is the scheme and authority the sender addressed: external_origin
// when configured; else, for a request that came through one of Caddy's
// trusted_proxies, the X-Forwarded-Proto and X-Forwarded-Host it set; else
// this connection's scheme and the Host header.
func (h *Handler) origin(r *http.Request) (scheme, host string) {
	if h.originScheme != "" {
		return h.originScheme, h.originHost
	}
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := firstForwarded(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if fh := firstForwarded(r.Header.Get("X-Forwarded-Host")); validHost(fh) {
			host = fh
		}
	}
	return scheme, host
}

// firstForwarded is the first entry of a comma-separated forwarding header,
// the one the proxy nearest the sender wrote.
func firstForwarded(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.ToLower(strings.TrimSpace(first))
}

// validHost accepts a host[:port] without any character that could carry
// a path, credentials or a second value.
func validHost(h string) bool {
	return h != "" && len(h) <= 255 && !strings.ContainsAny(h, "/\\@?# \t,;")
}

// originalURI is the request target before any rewrite by an earlier
// handler.
func originalURI(r *http.Request) string {
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok &&
		o.RequestURI != "" {
		return o.RequestURI
	}
	return r.RequestURI
}

// externalURL is the URL as the sender requested it: origin and the
// original request target. URL-signing schemes sign it as it is written.
func (h *Handler) externalURL(r *http.Request) string {
	scheme, host := h.origin(r)
	uri := originalURI(r)
	if strings.Contains(uri, "://") {
		// an absolute-form target already names scheme and host
		if u, err := url.Parse(uri); err == nil {
			uri = u.RequestURI()
		}
	}
	return scheme + "://" + host + uri
}

// requestMessage describes r for RFC 9421 components, with the external
// origin and the original request target.
func (h *Handler) requestMessage(r *http.Request) *sigMessage {
	scheme, host := h.origin(r)
	m := &sigMessage{
		method:    r.Method,
		scheme:    scheme,
		authority: normalizeAuthority(scheme, host),
		target:    originalURI(r),
		header:    r.Header,
	}
	pathQuery := m.target
	if strings.Contains(pathQuery, "://") {
		if u, err := url.Parse(pathQuery); err == nil {
			pathQuery = u.RequestURI()
		}
	}
	m.path, m.query, m.hasQuery = strings.Cut(pathQuery, "?")
	return m
}

// normalizeAuthority lowercases the host and drops the scheme's default
// port, as RFC 9110 Section 4.2.3 normalizes an authority.
func normalizeAuthority(scheme, hostport string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return hostport
}

// provisionOrigin reads external_origin.
func (h *Handler) provisionOrigin() error {
	if h.ExternalOrigin == "" {
		return nil
	}
	scheme, host, err := parseOrigin(h.ExternalOrigin)
	if err != nil {
		return err
	}
	h.originScheme, h.originHost = scheme, host
	return nil
}
