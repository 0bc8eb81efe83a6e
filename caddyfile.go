package webhookverify

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("webhook_verify", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("webhook_verify", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_verify [<preset>] {
//		secret <value> [<key_id>]
//		secret_encoding raw|hex|base64
//		max_body <size>
//		tolerance <duration>
//		replay off|memory [<max_entries>]|storage|redis <address> [{ ... }]
//		replay_window <duration>
//		on_store_error reject|allow
//		challenge
//
//		public_key <file-or-value> [<key_id>]
//		jwks <url> {
//			refresh <duration>
//			min_refresh <duration>
//			stale_for <duration>
//			timeout <duration>
//			trust_roots <pem-file>
//		}
//		key_id_header <name>
//		signature_format raw|der|jws_detached|jws_compact
//		body_hash_claim <name>
//
//		label <name>
//		covered <component...>
//		require_tag <value>
//		external_origin <scheme://host[:port]>
//
//		algorithm <name...>
//		signature_header <name>
//		signature_prefix <text>
//		signature_encoding hex|base64|base64url
//		signed_content <template>
//		timestamp_header <name>
//		timestamp_format unix|unix_ms|rfc3339
//		id_header <name>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name

	if d.NextArg() {
		h.Preset = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}

	for d.NextBlock(0) {
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// shorthands undoes the adapter's expansion of Caddy's placeholder shorthands
// in signed_content, so that the JSON shows the template as it was written.
var shorthands = strings.NewReplacer(
	"{http.request.method}", "{method}",
	"{http.request.header.", "{header.",
)

// stringOptions are the subdirectives that take exactly one text argument.
var stringOptions = map[string]func(h *Handler) *string{
	"secret_encoding":    func(h *Handler) *string { return &h.SecretEncoding },
	"signature_header":   func(h *Handler) *string { return &h.SignatureHeader },
	"signature_prefix":   func(h *Handler) *string { return &h.SignaturePrefix },
	"signature_encoding": func(h *Handler) *string { return &h.SignatureEncoding },
	"signed_content":     func(h *Handler) *string { return &h.SignedContent },
	"timestamp_header":   func(h *Handler) *string { return &h.TimestampHeader },
	"timestamp_format":   func(h *Handler) *string { return &h.TimestampFormat },
	"id_header":          func(h *Handler) *string { return &h.IDHeader },
	"on_store_error":     func(h *Handler) *string { return &h.OnStoreError },
	"key_id_header":      func(h *Handler) *string { return &h.KeyIDHeader },
	"signature_format":   func(h *Handler) *string { return &h.SignatureFormat },
	"body_hash_claim":    func(h *Handler) *string { return &h.BodyHashClaim },
	"label":              func(h *Handler) *string { return &h.Label },
	"require_tag":        func(h *Handler) *string { return &h.RequireTag },
	"external_origin":    func(h *Handler) *string { return &h.ExternalOrigin },
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	option := d.Val()
	if option == "replay" {
		return h.unmarshalReplay(d)
	}
	args := d.RemainingArgs()

	if field, ok := stringOptions[option]; ok {
		if len(args) != 1 {
			return d.ArgErr()
		}
		*field(h) = args[0]
		if option == "signed_content" {
			h.SignedContent = shorthands.Replace(args[0])
		}
		return nil
	}

	switch option {
	case "covered":
		if len(args) == 0 {
			return d.ArgErr()
		}
		h.Covered = append(h.Covered, args...)

	case "challenge":
		if len(args) != 0 {
			return d.ArgErr()
		}
		h.Challenge = true

	case "algorithm":
		// several names are the allowlist of the JWS formats
		if len(args) == 0 {
			return d.ArgErr()
		}
		h.Algorithm = strings.Join(args, " ")

	case "public_key":
		if len(args) < 1 || len(args) > 2 {
			return d.ArgErr()
		}
		pk := PublicKey{Value: args[0]}
		if len(args) == 2 {
			pk.KeyID = args[1]
		}
		h.PublicKeys = append(h.PublicKeys, pk)

	case "jwks":
		return h.unmarshalJWKS(d, args)

	case "secret":
		if len(args) < 1 || len(args) > 2 {
			return d.ArgErr()
		}
		s := Secret{Value: args[0]}
		if len(args) == 2 {
			s.KeyID = args[1]
		}
		h.Secrets = append(h.Secrets, s)

	case "max_body":
		if len(args) != 1 {
			return d.ArgErr()
		}
		size, err := humanize.ParseBytes(args[0])
		if err != nil || size > 1<<62 {
			return d.Errf("max_body: invalid size %q", args[0])
		}
		h.MaxBody = int64(size)

	case "tolerance", "replay_window":
		if len(args) != 1 {
			return d.ArgErr()
		}
		dur, err := caddy.ParseDuration(args[0])
		if err != nil {
			return d.Errf("%s: invalid duration %q: %v", option, args[0], err)
		}
		if option == "tolerance" {
			h.Tolerance = caddy.Duration(dur)
		} else {
			h.ReplayWindow = caddy.Duration(dur)
		}

	default:
		return d.Errf("unrecognized webhook_verify option %q", option)
	}
	return nil
}

// unmarshalReplay reads "replay off" or "replay <store> [<args...>] [{ ... }]",
// handing the store's own tokens to the store module.
func (h *Handler) unmarshalReplay(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	if d.Val() == "off" {
		if d.NextArg() {
			return d.ArgErr()
		}
		h.DisableReplay = true
		return nil
	}

	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.webhook_verify.replay."+name)
	if err != nil {
		return d.Errf("replay: %v", err)
	}
	h.ReplayRaw = caddyconfig.JSONModuleObject(unm, "store", name, nil)
	return nil
}

// unmarshalJWKS reads "jwks <url> { ... }".
func (h *Handler) unmarshalJWKS(d *caddyfile.Dispenser, args []string) error {
	if len(args) != 1 {
		return d.ArgErr()
	}
	src := &JWKSSource{URL: args[0]}

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		if option == "trust_roots" {
			if !d.NextArg() {
				return d.ArgErr()
			}
			src.TrustRoots = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			continue
		}
		field, ok := jwksDurations[option]
		if !ok {
			return d.Errf("jwks: unrecognized option %q", option)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil {
			return d.Errf("jwks %s: invalid duration %q: %v", option, d.Val(), err)
		}
		*field(src) = caddy.Duration(dur)
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	h.JWKS = append(h.JWKS, src)
	return nil
}

// jwksDurations are the duration options of a jwks block.
var jwksDurations = map[string]func(s *JWKSSource) *caddy.Duration{
	"refresh":     func(s *JWKSSource) *caddy.Duration { return &s.Refresh },
	"min_refresh": func(s *JWKSSource) *caddy.Duration { return &s.MinRefresh },
	"stale_for":   func(s *JWKSSource) *caddy.Duration { return &s.StaleFor },
	"timeout":     func(s *JWKSSource) *caddy.Duration { return &s.Timeout },
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
