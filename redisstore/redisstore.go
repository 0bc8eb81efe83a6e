// Package redisstore provides a replay store for the webhook_verify handler
// that keeps seen deliveries in Redis. It lives in its own package so that
// Caddy builds that do not use it do not link a Redis client; build it in
// with `xcaddy build --with github.com/webhookverify/caddy-webhook-verify/redisstore`.
package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	webhookverify "github.com/webhookverify/caddy-webhook-verify"
)

func init() {
	caddy.RegisterModule(Store{})
}

// Store keeps seen delivery IDs in Redis, shared by every Caddy instance
// that uses the same server. A reservation is one round trip (SET with NX
// and an expiry), so it suits high delivery rates. When Redis cannot be
// reached the handler refuses deliveries with 503 unless its
// on_store_error is "allow".
type Store struct {
	// The Redis server as host:port. Placeholders such as {env.REDIS_ADDR}
	// are resolved when the configuration loads. Required.
	Address string `json:"address,omitempty"`

	// The user name for Redis ACL authentication. Placeholders work.
	Username string `json:"username,omitempty"`

	// The password. Write it as a placeholder, such as {env.REDIS_PASSWORD}
	// or {file./run/secrets/redis}, to keep it out of the configuration.
	Password string `json:"password,omitempty"`

	// The database number. Default: 0.
	DB int `json:"db,omitempty"`

	// Connect with TLS.
	TLS bool `json:"tls,omitempty"`

	// A PEM file with the CA certificates that sign the server's certificate,
	// for TLS. Default: the system's roots.
	TLSCA string `json:"tls_ca,omitempty"`

	// The server name to verify the server's certificate against, for TLS.
	// Default: the host of address.
	TLSServerName string `json:"tls_server_name,omitempty"`

	// The prefix of every key this store writes. Default:
	// "caddy:webhook_verify:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// How long to wait for a connection, a read or a write. A delivery waits
	// at most about twice this for the store. Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	client *redis.Client
}

// CaddyModule returns the Caddy module information.
func (Store) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_verify.replay.redis",
		New: func() caddy.Module { return new(Store) },
	}
}

// Provision makes the client. It does not connect: the first delivery does.
func (s *Store) Provision(_ caddy.Context) error {
	repl := caddy.NewReplacer()
	addr, err := repl.ReplaceOrErr(s.Address, true, true)
	if err != nil {
		return fmt.Errorf("address: %w", err)
	}
	user := repl.ReplaceKnown(s.Username, "")
	pass, err := repl.ReplaceOrErr(s.Password, false, true)
	if err != nil {
		return fmt.Errorf("password: resolving placeholder: %w", err)
	}
	if s.DB < 0 {
		return fmt.Errorf("db: must not be negative, got %d", s.DB)
	}
	if s.Timeout < 0 {
		return fmt.Errorf("timeout: must not be negative")
	}
	if s.Timeout == 0 {
		s.Timeout = caddy.Duration(2 * time.Second)
	}
	if s.KeyPrefix == "" {
		s.KeyPrefix = "caddy:webhook_verify:"
	}

	opts := &redis.Options{
		Addr:         addr,
		Username:     user,
		Password:     pass,
		DB:           s.DB,
		DialTimeout:  time.Duration(s.Timeout),
		ReadTimeout:  time.Duration(s.Timeout),
		WriteTimeout: time.Duration(s.Timeout),
		// One retry: a delivery should fail over to a 503 quickly, and the
		// sender retries anyway.
		MaxRetries: 1,
	}
	if s.TLS {
		if opts.TLSConfig, err = s.tlsConfig(); err != nil {
			return err
		}
	}
	s.client = redis.NewClient(opts)
	return nil
}

func (s *Store) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
	if s.TLSCA == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(s.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("tls_ca: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_ca: no PEM certificate in %s", s.TLSCA)
	}
	return cfg, nil
}

// Validate checks the configuration.
func (s *Store) Validate() error {
	if s.Address == "" {
		return errors.New("address: required")
	}
	return nil
}

// Cleanup closes the client's connections.
func (s *Store) Cleanup() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}

// Reserve implements webhookverify.ReplayStore with SET NX and an expiry.
func (s *Store) Reserve(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.KeyPrefix+key, "reserved", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis reserve: %w", err)
	}
	return ok, nil
}

// Commit implements webhookverify.ReplayStore.
func (s *Store) Commit(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.KeyPrefix+key, "committed", ttl).Err(); err != nil {
		return fmt.Errorf("redis commit: %w", err)
	}
	return nil
}

// releaseScript deletes a key only while it holds a reservation, in one
// round trip: a committed key may be another copy's, accepted after this
// one's reservation expired.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == "reserved" then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Release implements webhookverify.ReplayStore.
func (s *Store) Release(ctx context.Context, key string) error {
	err := releaseScript.Run(ctx, s.client, []string{s.KeyPrefix + key}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis release: %w", err)
	}
	return nil
}

// UnmarshalCaddyfile reads:
//
//	redis <address> {
//		username <name>
//		password <password>
//		db <number>
//		tls
//		tls_ca <pem-file>
//		tls_server_name <name>
//		key_prefix <text>
//		timeout <duration>
//	}
func (s *Store) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the store name
	if !d.NextArg() {
		return d.ArgErr()
	}
	s.Address = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}

	for d.NextBlock(0) {
		option := d.Val()
		if option == "tls" {
			if d.NextArg() {
				return d.ArgErr()
			}
			s.TLS = true
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		if err := s.setOption(d, option, d.Val()); err != nil {
			return err
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

func (s *Store) setOption(d *caddyfile.Dispenser, option, value string) error {
	switch option {
	case "username":
		s.Username = value
	case "password":
		s.Password = value
	case "tls_ca":
		s.TLSCA = value
	case "tls_server_name":
		s.TLSServerName = value
	case "key_prefix":
		s.KeyPrefix = value
	case "db":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return d.Errf("db: must be a non-negative integer, got %q", value)
		}
		s.DB = n
	case "timeout":
		dur, err := caddy.ParseDuration(value)
		if err != nil {
			return d.Errf("timeout: %v", err)
		}
		s.Timeout = caddy.Duration(dur)
	default:
		return d.Errf("unrecognized redis store option %q", option)
	}
	return nil
}

// Interface guards
var (
	_ webhookverify.ReplayStore = (*Store)(nil)
	_ caddy.Provisioner         = (*Store)(nil)
	_ caddy.Validator           = (*Store)(nil)
	_ caddy.CleanerUpper        = (*Store)(nil)
	_ caddyfile.Unmarshaler     = (*Store)(nil)
)
