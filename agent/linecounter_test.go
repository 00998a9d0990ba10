package agent

import (
	"context"
	"log/slog"
	"sync"
)

// lineCounter counts error-level log lines.
type lineCounter struct {
	mu sync.Mutex
	n  int
}

func (c *lineCounter) logger() *slog.Logger { return slog.New(c) }

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *lineCounter) WithGroup(string) slog.Handler      { return c }
