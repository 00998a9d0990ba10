package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// logRunner is the Runner of --dry-run: instead of running a command that
// would change the system (CARP demotion), it appends the argument list to
// a log file, one command a line, so the lab and an admin can see what a
// real run would have done.
type logRunner struct {
	path string
	mu   sync.Mutex
}

func (r *logRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(r.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dry-run log: %w", err)
	}
	defer f.Close()
	q := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		q = append(q, fmt.Sprintf("%q", a))
	}
	if _, err := fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(q, " ")); err != nil {
		return nil, fmt.Errorf("dry-run log: %w", err)
	}
	return nil, nil
}
