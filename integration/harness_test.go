package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/webhookverify/caddy-webhook-verify"
)

// instance is a Caddy running in this process with one loopback site.
type instance struct {
	// base is the site's address, such as http://127.0.0.1:41234.
	base string
	// logPath is the JSON log file that Caddy writes at debug level.
	logPath string
	// client sends requests to the site; it is shared by all goroutines.
	client *http.Client
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("closing probe listener: %v", err)
	}
	return port
}

// caddyfile returns a complete Caddyfile: global options that keep Caddy's
// state and logs in dir, and one plain HTTP site on loopback whose block
// holds site.
func caddyfile(port int, dir, site string) string {
	return fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	grace_period 1s
	storage file_system %q
	log {
		output file %q
		format json
		level DEBUG
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
%s
}
`, filepath.Join(dir, "storage"), filepath.Join(dir, "caddy.log"), port, site)
}

// adapt turns a Caddyfile into Caddy's JSON config.
func adapt(cfg string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, fmt.Errorf("caddyfile adapter is not registered")
	}
	out, _, err := adapter.Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	return out, err
}

// isolate points Caddy's data and config directories at a temporary
// directory, so that nothing is written outside the test's files.
func isolate(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	return dir
}

// tryStart adapts a Caddyfile whose site block holds site, lets patch edit
// the JSON (when not nil), and loads it. It returns the error of whichever
// step failed; on success Caddy is stopped when the test ends.
func tryStart(t testing.TB, site string, patch func(cfg map[string]any)) (*instance, error) {
	t.Helper()
	dir := isolate(t)
	port := freePort(t)

	cfgJSON, err := adapt(caddyfile(port, dir, site))
	if err != nil {
		return nil, fmt.Errorf("adapting: %w", err)
	}
	if patch != nil {
		var cfg map[string]any
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			t.Fatalf("decoding adapted config: %v", err)
		}
		patch(cfg)
		if cfgJSON, err = json.Marshal(cfg); err != nil {
			t.Fatalf("encoding patched config: %v", err)
		}
	}

	if err := caddy.Load(cfgJSON, true); err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})

	inst := &instance{
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(dir, "caddy.log"),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	t.Cleanup(inst.client.CloseIdleConnections)
	t.Cleanup(func() { inst.dumpLogOnFailure(t) })
	waitForPort(t, port)
	return inst, nil
}

// dumpLogOnFailure prints the handler's last log lines when the test
// failed, to show why deliveries were refused.
func (inst *instance) dumpLogOnFailure(t testing.TB) {
	if !t.Failed() {
		return
	}
	var lines []logEntry
	for _, e := range readLog(t, inst.logPath) {
		if e.str("logger") == "http.handlers.webhook_verify" {
			lines = append(lines, e)
		}
	}
	for _, e := range lines[max(0, len(lines)-10):] {
		t.Logf("handler log: %s %s reason=%s scheme=%s id=%s uri=%s", e.str("level"),
			e.str("msg"), e.str("reason"), e.str("scheme"), e.str("id"), e.str("uri"))
	}
}

// startCaddy runs Caddy with site in its site block, failing the test on
// any error.
func startCaddy(t testing.TB, site string) *instance {
	t.Helper()
	return startPatched(t, site, nil)
}

// startPatched is startCaddy with an edit of the adapted JSON before loading.
func startPatched(t testing.TB, site string, patch func(cfg map[string]any)) *instance {
	t.Helper()
	inst, err := tryStart(t, site, patch)
	if err != nil {
		t.Fatalf("starting caddy: %v\nsite block:\n%s", err, site)
	}
	return inst
}

// waitForPort waits until something accepts connections on the port.
func waitForPort(t testing.TB, port int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy is not answering on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handlers returns every webhook_verify handler object in an adapted config,
// in the order they appear.
func handlers(v any) []map[string]any {
	var found []map[string]any
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == "webhook_verify" {
			return []map[string]any{v}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			found = append(found, handlers(v[k])...)
		}
	case []any:
		for _, e := range v {
			found = append(found, handlers(e)...)
		}
	}
	return found
}

// recorded is one request as the upstream received it.
type recorded struct {
	method string
	uri    string
	header http.Header
	body   []byte
}

// upstream is the application behind Caddy: it records every request and
// answers with the status the test sets, after an optional delay.
type upstream struct {
	srv     *httptest.Server
	status  atomic.Int32
	delay   atomic.Int64
	discard atomic.Bool

	mu   sync.Mutex
	reqs []recorded
}

// newUpstream starts a recording upstream on loopback; it answers 200.
func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	u.status.Store(http.StatusOK)
	t.Cleanup(u.srv.Close)
	return u
}

// newUpstreamAt starts a recording upstream on the given loopback port.
func newUpstreamAt(t testing.TB, port int) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listening on port %d for the upstream: %v", port, err)
	}
	u := &upstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.srv.Listener.Close()
	u.srv.Listener = ln
	u.srv.Start()
	u.status.Store(http.StatusOK)
	t.Cleanup(u.srv.Close)
	return u
}

// serve records the request, waits for the configured delay, and answers
// with the configured status.
func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !u.discard.Load() {
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{r.Method, r.RequestURI, r.Header.Clone(), body})
		u.mu.Unlock()
	}

	if d := u.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	w.WriteHeader(int(u.status.Load()))
	io.WriteString(w, "upstream")
}

// keepNothing stops recording requests, for load tests.
func (u *upstream) keepNothing() { u.discard.Store(true) }

// addr is the host:port that reverse_proxy dials.
func (u *upstream) addr() string {
	return strings.TrimPrefix(u.srv.URL, "http://")
}

// count is how many requests the upstream has received.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// since returns the requests received after the first n.
func (u *upstream) since(n int) []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs[n:])
}

// last returns the most recent request the upstream received.
func (u *upstream) last(t testing.TB) recorded {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	return u.reqs[len(u.reqs)-1]
}

// delivery is one webhook request as a sender builds it.
type delivery struct {
	method string
	// path is the request URI: path and query.
	path   string
	header http.Header
	body   []byte
	// chunked sends the body without a Content-Length.
	chunked bool
}

// send makes one request to the instance and returns its status and body.
func (inst *instance) send(t testing.TB, d *delivery) (int, string) {
	t.Helper()
	status, body, err := inst.trySend(d)
	if err != nil {
		t.Fatalf("sending %s %s: %v", d.method, d.path, err)
	}
	return status, body
}

// trySend is send without failing the test, for use from goroutines.
func (inst *instance) trySend(d *delivery) (int, string, error) {
	var body io.Reader = bytes.NewReader(d.body)
	if d.chunked {
		// a reader of unknown length makes the client send the body chunked
		body = io.MultiReader(bytes.NewReader(d.body))
	}
	req, err := http.NewRequest(d.method, inst.base+d.path, body)
	if err != nil {
		return 0, "", err
	}
	if d.chunked {
		req.ContentLength = -1
	}
	for k, vs := range d.header {
		req.Header[k] = append([]string(nil), vs...)
	}

	resp, err := inst.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got), err
}

// expectForwarded checks that the delivery got the upstream's answer and
// that exactly one new request reached the upstream, carrying the same
// method, URI, body bytes and every header the sender set.
func expectForwarded(t testing.TB, inst *instance, up *upstream, d *delivery, want int) {
	t.Helper()
	before := up.count()
	status, _ := inst.send(t, d)
	if status != want {
		t.Fatalf("status = %d, want %d (forwarded)", status, want)
	}
	if n := up.count() - before; n != 1 {
		t.Fatalf("upstream received %d requests, want 1", n)
	}
	got := up.last(t)
	if got.method != d.method || got.uri != d.path {
		t.Errorf("upstream got %s %s, want %s %s", got.method, got.uri, d.method, d.path)
	}
	if !bytes.Equal(got.body, d.body) {
		t.Errorf("upstream body = %q, want %q", got.body, d.body)
	}
	for k, vs := range d.header {
		if g := got.header.Values(k); !equalStrings(g, vs) {
			t.Errorf("upstream header %s = %q, want %q", k, g, vs)
		}
	}
}

// expectRefused checks that the delivery got status want and that nothing
// reached the upstream.
func expectRefused(t testing.TB, inst *instance, up *upstream, d *delivery, want int) {
	t.Helper()
	before := up.count()
	status, _ := inst.send(t, d)
	if status != want {
		t.Errorf("status = %d, want %d (refused)", status, want)
	}
	if n := up.count() - before; n != 0 {
		t.Errorf("upstream received %d requests, want none", n)
	}
}

// equalStrings reports whether a and b hold the same strings in order.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// logEntry is one line of Caddy's JSON log, decoded.
type logEntry map[string]any

// str returns a string field of the entry, or "" when absent.
func (e logEntry) str(key string) string {
	s, _ := e[key].(string)
	return s
}

// readLog decodes every line of the log file; a line that is not JSON fails
// the test.
func readLog(t testing.TB, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening log: %v", err)
	}
	defer f.Close()

	var entries []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading log: %v", err)
	}
	return entries
}

// rejections returns the handler's "webhook rejected" log lines, polling
// for up to a few seconds until at least want of them are written.
func rejections(t testing.TB, path string, want int) []logEntry {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var found []logEntry
		for _, e := range readLog(t, path) {
			if e.str("logger") == "http.handlers.webhook_verify" &&
				e.str("msg") == "webhook rejected" {
				found = append(found, e)
			}
		}
		if len(found) >= want || time.Now().After(deadline) {
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustJSON encodes v, failing the test on error.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding JSON: %v", err)
	}
	return string(b)
}
