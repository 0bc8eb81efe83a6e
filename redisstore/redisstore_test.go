package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/webhookverify/caddy-webhook-verify/internal/storetest"
)

// open provisions a store for addr and closes it when the test ends.
func open(t testing.TB, s *Store) *Store {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Cleanup() })
	return s
}

func TestContract(t *testing.T) {
	addr := storetest.StartRedis(t)
	storetest.Run(t, "redis", func(t *testing.T) storetest.Store {
		return open(t, &Store{Address: addr})
	})
}

func TestKeysUsePrefixAndExpire(t *testing.T) {
	addr := storetest.StartRedis(t)
	s := open(t, &Store{Address: addr, KeyPrefix: "test:"})
	ctx := context.Background()

	if ok, err := s.Reserve(ctx, "k", time.Minute); !ok || err != nil {
		t.Fatalf("Reserve = %v, %v", ok, err)
	}
	ttl, err := s.client.PTTL(ctx, "test:k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL(test:k) = %v, %v; want within (0, 1m]", ttl, err)
	}
	if err := s.Commit(ctx, "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	ttl, _ = s.client.PTTL(ctx, "test:k").Result()
	if ttl <= time.Minute || ttl > time.Hour {
		t.Fatalf("after commit PTTL = %v, want within (1m, 1h]", ttl)
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	s := open(t, &Store{Address: addr, Timeout: caddy.Duration(200 * time.Millisecond)})
	ok, err := s.Reserve(context.Background(), "k", time.Minute)
	if ok || err == nil || !strings.Contains(err.Error(), "redis reserve") {
		t.Fatalf("Reserve on a closed port = %v, %v; want false and a redis error", ok, err)
	}
}

func TestPasswordFromEnv(t *testing.T) {
	addr := storetest.StartRedis(t, "--requirepass", "s3cret")
	t.Setenv("TEST_REDIS_PASSWORD", "s3cret")
	ctx := context.Background()

	s := open(t, &Store{Address: addr, Password: "{env.TEST_REDIS_PASSWORD}"})
	if ok, err := s.Reserve(ctx, "k", time.Minute); !ok || err != nil {
		t.Fatalf("Reserve with the password from the environment = %v, %v", ok, err)
	}

	wrong := open(t, &Store{Address: addr, Password: "not-it"})
	_, err := wrong.Reserve(ctx, "k2", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("Reserve with a wrong password: %v, want WRONGPASS", err)
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`redis 10.0.0.5:6380 {
		username caddy
		password {env.REDIS_PASSWORD}
		db 3
		tls
		tls_server_name redis.internal
		key_prefix hooks:
		timeout 500ms
	}`)
	var s Store
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Store{Address: "10.0.0.5:6380", Username: "caddy",
		Password: "{env.REDIS_PASSWORD}", DB: 3, TLS: true, TLSServerName: "redis.internal",
		KeyPrefix: "hooks:", Timeout: caddy.Duration(500 * time.Millisecond)}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}

	for _, bad := range []string{"redis", "redis a b", "redis a { db -1 }", "redis a { bogus 1 }",
		"redis a { tls yes }", "redis a { timeout soon }"} {
		var s Store
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestValidateNeedsAddress(t *testing.T) {
	err := (&Store{}).Validate()
	if err == nil || !strings.Contains(err.Error(), "address") {
		t.Fatalf("Validate without address: %v", errors.Unwrap(err))
	}
}

// BenchmarkReserveCommit measures one reserve and one commit of a new key
// against a real redis-server on loopback: two round trips.
func BenchmarkReserveCommit(b *testing.B) {
	s := open(b, &Store{Address: storetest.StartRedis(b)})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := "bench:" + strconv.Itoa(i)
		i++
		if ok, err := s.Reserve(ctx, k, time.Minute); !ok || err != nil {
			b.Fatalf("Reserve = %v, %v", ok, err)
		}
		if err := s.Commit(ctx, k, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
