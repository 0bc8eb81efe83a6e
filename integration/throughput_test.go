package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkThroughput measures requests per second through a real Caddy on
// loopback, to one upstream, along two routes that differ only in
// webhook_verify: /plain forwards as it is, /standard_webhooks verifies a
// Standard Webhooks signature and records each delivery in the memory
// replay store first. Every request is a new signed delivery of 1 KiB, and
// the client signs every one, for both routes alike. Compare the two with
// the req/s metric; run it with
//
//	go test -run '^$' -bench Throughput -benchtime 10s ./integration/
func BenchmarkThroughput(b *testing.B) {
	up := newUpstream(b)
	standard := senderNamed("standard_webhooks")
	site := fmt.Sprintf(`	handle /plain {
		reverse_proxy %s
	}
	handle /standard_webhooks {
		webhook_verify standard_webhooks {
			secret %s
			replay memory 1000000
		}
		reverse_proxy %s
	}
`, up.addr(), standard.secret, up.addr())
	inst := startCaddy(b, site)
	up.keepNothing()
	body := bytes.Repeat([]byte("x"), 1<<10)

	for _, path := range []string{"/standard_webhooks", "/plain"} {
		b.Run(path[1:], func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			start := time.Now()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := &delivery{method: http.MethodPost, path: path,
						header: http.Header{}, body: body}
					signStandard(d, standard.secret, time.Now(), "")
					req, _ := http.NewRequest(d.method, inst.base+d.path,
						bytes.NewReader(d.body))
					req.Header = d.header
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			client.CloseIdleConnections()
		})
	}
}
