package webhookverify

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Rejection logging is rate limited per handler, so that a flood of forged
// deliveries cannot flood the log: a burst of rejectBurst lines, then
// rejectRate per second. Lines held back are counted, and the count is
// written with the next line that passes, or by the flush loop once the
// flood is over.
const (
	rejectRate  = 20
	rejectBurst = 200
	flushEvery  = 10 * time.Second
)

// rejectLog writes rejection lines under a rate limit.
type rejectLog struct {
	logger     *zap.Logger
	limiter    *rate.Limiter
	mu         sync.Mutex
	suppressed int
}

func newRejectLog(logger *zap.Logger, perSecond rate.Limit, burst int) *rejectLog {
	return &rejectLog{logger: logger, limiter: rate.NewLimiter(perSecond, burst)}
}

// write logs one rejection, or counts it when over the limit.
func (l *rejectLog) write(fields []zap.Field) {
	if !l.limiter.Allow() {
		l.mu.Lock()
		l.suppressed++
		l.mu.Unlock()
		return
	}
	if n := l.takeSuppressed(); n > 0 {
		fields = append(fields, zap.Int("suppressed", n))
	}
	l.logger.Warn("webhook rejected", fields...)
}

func (l *rejectLog) takeSuppressed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}

// flushLoop reports rejections held back when no later line carried them.
func (l *rejectLog) flushLoop(done <-chan struct{}) {
	ticker := time.NewTicker(flushEvery)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			l.flush()
			return
		case <-ticker.C:
			l.flush()
		}
	}
}

func (l *rejectLog) flush() {
	if n := l.takeSuppressed(); n > 0 {
		l.logger.Warn("webhook rejections not logged", zap.Int("suppressed", n))
	}
}
