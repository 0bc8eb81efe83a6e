// Package cluster runs several Caddy processes built from cmd/caddy that
// share a replay store, and checks that a delivery reaches the application
// once, whichever instance receives it, across reloads and restarts.
package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webhookverify/caddy-webhook-verify/internal/storetest"
)

// caddyBin is the Caddy binary built once for the package.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "webhook-verify-cluster")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building Caddy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// secret is the Standard Webhooks secret every instance is configured with.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// upstream is the application behind the instances: it counts deliveries by
// ID and answers with the status set in fail (200 when zero).
type upstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	seen  map[string]int
	fail  atomic.Int32
	delay time.Duration
}

func newUpstream(t *testing.T, delay time.Duration) *upstream {
	u := &upstream{seen: map[string]int{}, delay: delay}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(u.delay)
		u.mu.Lock()
		u.seen[r.Header.Get("webhook-id")]++
		u.mu.Unlock()
		if code := u.fail.Load(); code != 0 {
			w.WriteHeader(int(code))
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) count(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// instance is one running Caddy process.
type instance struct {
	t      *testing.T
	config string
	port   string
	admin  string
	cmd    *exec.Cmd
	logs   bytes.Buffer
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// newInstance writes a Caddyfile with the given global options and
// webhook_verify body, in front of up, and starts Caddy on it.
func newInstance(t *testing.T, globals, verify string, up *upstream) *instance {
	in := &instance{t: t, port: freePort(t), admin: freePort(t)}
	in.config = filepath.Join(t.TempDir(), "Caddyfile")
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%s
	auto_https off
	%s
}
http://127.0.0.1:%s {
	webhook_verify standard_webhooks {
		secret %s
		%s
	}
	reverse_proxy %s
}
`, in.admin, globals, in.port, secret, verify, up.srv.Listener.Addr())
	if err := os.WriteFile(in.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	t.Cleanup(in.stop)
	return in
}

func (in *instance) start() {
	in.cmd = exec.Command(caddyBin, "run", "--config", in.config, "--adapter", "caddyfile")
	in.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+in.t.TempDir(),
		"XDG_CONFIG_HOME="+in.t.TempDir())
	in.cmd.Stdout, in.cmd.Stderr = &in.logs, &in.logs
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	addr := "127.0.0.1:" + in.port
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("Caddy did not listen on %s:\n%s", addr, in.logs.String())
}

func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	defer client.CloseIdleConnections()
	in.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { in.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		in.cmd.Process.Kill()
		<-done
	}
	in.cmd = nil
}

// reload posts the instance's Caddyfile to its admin API, forcing a reload
// even though the configuration did not change.
func (in *instance) reload() {
	cfg, err := os.ReadFile(in.config)
	if err != nil {
		in.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+in.admin+"/load",
		bytes.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		in.t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	// The reload closes the old server's idle connections; a POST sent on
	// one of them would fail rather than be retried.
	client.CloseIdleConnections()
}

// delivery is one signed Standard Webhooks request.
type delivery struct {
	id, ts, sig string
	body        []byte
}

func newDelivery(id string) delivery {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := []byte(`{"type":"invoice.paid","id":"` + id + `"}`)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	return delivery{id: id, ts: ts, body: body,
		sig: "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}

var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 100},
}

// send posts d to the instance and returns the status.
func (in *instance) send(d delivery) int {
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+in.port+"/hook",
		bytes.NewReader(d.body))
	req.Header.Set("webhook-id", d.id)
	req.Header.Set("webhook-timestamp", d.ts)
	req.Header.Set("webhook-signature", d.sig)
	resp, err := client.Do(req)
	if err != nil {
		in.t.Errorf("sending %s: %v", d.id, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// storeCase is one shared store under test.
type storeCase struct {
	name    string
	globals func(t *testing.T) string
	verify  func(t *testing.T) string
}

func sharedStores() []storeCase {
	return []storeCase{
		{
			name: "storage",
			globals: func(t *testing.T) string {
				return "storage file_system " + t.TempDir()
			},
			verify: func(*testing.T) string { return "replay storage" },
		},
		{
			name:    "redis",
			globals: func(*testing.T) string { return "" },
			verify: func(t *testing.T) string {
				return "replay redis " + storetest.StartRedis(t)
			},
		},
	}
}

// TestConcurrentAcrossInstances sends 200 identical deliveries, alternating
// between two instances that share the store, while the application is slow
// enough for them all to overlap: exactly one reaches it.
func TestConcurrentAcrossInstances(t *testing.T) {
	for _, sc := range sharedStores() {
		t.Run(sc.name, func(t *testing.T) {
			up := newUpstream(t, 300*time.Millisecond)
			globals, verify := sc.globals(t), sc.verify(t)
			a := newInstance(t, globals, verify, up)
			b := newInstance(t, globals, verify, up)

			d := newDelivery("msg_concurrent_" + sc.name)
			codes := sendConcurrently([]*instance{a, b}, d, 200)

			if got := up.count(d.id); got != 1 {
				t.Fatalf("application received the delivery %d times, want 1", got)
			}
			if codes[http.StatusOK] != 1 || codes[http.StatusConflict] != 199 {
				t.Fatalf("statuses %v, want one 200 and 199 409", codes)
			}
		})
	}
}

// TestMemoryConcurrentOneInstance is the same guarantee for the memory
// store, which only one instance can hold.
func TestMemoryConcurrentOneInstance(t *testing.T) {
	up := newUpstream(t, 300*time.Millisecond)
	a := newInstance(t, "", "replay memory", up)

	d := newDelivery("msg_concurrent_memory")
	codes := sendConcurrently([]*instance{a}, d, 200)
	if got := up.count(d.id); got != 1 {
		t.Fatalf("application received the delivery %d times, want 1", got)
	}
	if codes[http.StatusOK] != 1 || codes[http.StatusConflict] != 199 {
		t.Fatalf("statuses %v, want one 200 and 199 409", codes)
	}
}

func sendConcurrently(instances []*instance, d delivery, n int) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code := instances[i%len(instances)].send(d)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return codes
}

// TestRetryAfterFailureOnOtherInstance checks that a delivery whose
// application answer was a 500 is accepted again, on the other instance.
func TestRetryAfterFailureOnOtherInstance(t *testing.T) {
	for _, sc := range sharedStores() {
		t.Run(sc.name, func(t *testing.T) {
			up := newUpstream(t, 0)
			globals, verify := sc.globals(t), sc.verify(t)
			a := newInstance(t, globals, verify, up)
			b := newInstance(t, globals, verify, up)

			d := newDelivery("msg_retry_" + sc.name)
			up.fail.Store(500)
			if code := a.send(d); code != 500 {
				t.Fatalf("first attempt: %d, want the application's 500", code)
			}
			up.fail.Store(0)
			if code := b.send(d); code != 200 {
				t.Fatalf("retry on the other instance: %d, want 200", code)
			}
			if code := a.send(d); code != 409 {
				t.Fatalf("third copy: %d, want 409", code)
			}
			if got := up.count(d.id); got != 2 {
				t.Fatalf("application saw %d attempts, want 2", got)
			}
		})
	}
}

// TestRememberedAcrossReloadAndRestart checks that a delivery seen before a
// config reload is refused after it, for every store, and after a restart
// for the shared stores; the memory store starts empty after a restart.
func TestRememberedAcrossReloadAndRestart(t *testing.T) {
	cases := append(sharedStores(), storeCase{
		name:    "memory",
		globals: func(*testing.T) string { return "" },
		verify:  func(*testing.T) string { return "replay memory" },
	})
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			up := newUpstream(t, 0)
			a := newInstance(t, sc.globals(t), sc.verify(t), up)

			d := newDelivery("msg_lifecycle_" + sc.name)
			if code := a.send(d); code != 200 {
				t.Fatalf("first delivery: %d", code)
			}
			a.reload()
			if code := a.send(d); code != 409 {
				t.Fatalf("after reload: %d, want 409", code)
			}

			a.stop()
			a.start()
			want := 409
			if sc.name == "memory" {
				want = 200
			}
			if code := a.send(d); code != want {
				t.Fatalf("after restart: %d, want %d", code, want)
			}
		})
	}
}

// TestRedisDown checks that an unreachable Redis fails closed with 503, and
// that on_store_error allow forwards the delivery instead.
func TestRedisDown(t *testing.T) {
	closed := "127.0.0.1:" + freePort(t)
	up := newUpstream(t, 0)

	strict := newInstance(t, "", "replay redis "+closed+" {\n timeout 200ms\n}", up)
	d := newDelivery("msg_redis_down")
	if code := strict.send(d); code != 503 {
		t.Fatalf("with Redis down: %d, want 503", code)
	}
	if up.count(d.id) != 0 {
		t.Fatal("delivery forwarded although the replay check failed")
	}

	lenient := newInstance(t, "",
		"replay redis "+closed+" {\n timeout 200ms\n}\n on_store_error allow", up)
	if code := lenient.send(d); code != 200 {
		t.Fatalf("with on_store_error allow: %d, want 200", code)
	}
	if up.count(d.id) != 1 {
		t.Fatal("delivery not forwarded with on_store_error allow")
	}
}
