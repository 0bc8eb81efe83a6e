package webhookverify

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// maxPooledBuffer keeps very large bodies from pinning memory in the pool.
const maxPooledBuffer = 4 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		bufPool.Put(buf)
	}
}

// replayBody hands the verified bytes to the next handler. The buffer goes
// back to the pool only when the body is closed, not when ServeHTTP returns:
// an HTTP transport may go on reading a request body in its own goroutine
// after the round trip has returned, and must never see another request's
// bytes. A body that is never closed leaves its buffer to the collector.
//
// Reading after Close is an error, not the end of the body: a proxy that
// retries with the same request must fail rather than send an empty body
// under the verified signature.
type replayBody struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	r   bytes.Reader
}

func newReplayBody(buf *bytes.Buffer) *replayBody {
	b := &replayBody{buf: buf}
	b.r.Reset(buf.Bytes())
	return b
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return 0, errBodyClosed
	}
	return b.r.Read(p)
}

// WriteTo lets io.Copy move the body without an intermediate buffer.
func (b *replayBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return 0, errBodyClosed
	}
	return b.r.WriteTo(w)
}

var errBodyClosed = errors.New("webhook_verify: read of a verified body after it was closed")

// Close returns the buffer to the pool; reads after it fail.
func (b *replayBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil {
		b.r.Reset(nil)
		putBuffer(b.buf)
		b.buf = nil
	}
	return nil
}
