package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"gwstated/config"
)

// ErrEtcdUnreachable is returned when no etcd endpoint answers within the
// dial timeout. Callers test for it with errors.Is.
var ErrEtcdUnreachable = errors.New("etcd unreachable")

// NewClient connects to etcd as cluster.etcd says: the endpoints (or, when
// an embedded member is configured and no endpoints are given, the embedded
// member's client URL), the dial timeout, TLS from the ca/cert/key files and
// username + password (read from password_file, trailing newline trimmed).
//
// It checks that at least one endpoint answers within the dial timeout and
// returns an error wrapping ErrEtcdUnreachable naming the endpoints and the
// timeout otherwise. This is the constructor for gwctl and other one-shot
// readers; the agent's Node dials without the check because it must start
// (and hold or decide on gossip) while etcd is down.
func NewClient(ctx context.Context, cfg config.Etcd, log *slog.Logger) (*clientv3.Client, error) {
	cli, err := dial(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := checkReachable(ctx, cli, cfg); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

// Endpoints returns the etcd endpoints a client of cfg dials.
func Endpoints(cfg config.Etcd) []string {
	if len(cfg.Endpoints) > 0 {
		return cfg.Endpoints
	}
	if cfg.Embed != nil && cfg.Embed.ClientURL != "" {
		return []string{cfg.Embed.ClientURL}
	}
	return nil
}

// dialTimeout is cluster.etcd.dial_timeout (config.Default: 2s; gwctl:
// --timeout).
func dialTimeout(cfg config.Etcd) time.Duration { return cfg.DialTimeout }

// dial builds a client without waiting for a connection (gRPC connects in
// the background). With a username set, clientv3 authenticates here, which
// needs a reachable endpoint.
func dial(ctx context.Context, cfg config.Etcd, log *slog.Logger) (*clientv3.Client, error) {
	eps := Endpoints(cfg)
	if len(eps) == 0 {
		return nil, errors.New("cluster.etcd.endpoints: no endpoint configured (and no cluster.etcd.embed client_url)")
	}
	c := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          dialTimeout(cfg),
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Context:              context.WithoutCancel(ctx),
		Logger:               zap.NewNop(),
	}
	if cfg.TLS.CA != "" || cfg.TLS.Cert != "" || cfg.TLS.Key != "" {
		t, err := clientTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		c.TLS = t
	}
	if cfg.Username != "" {
		if cfg.PasswordFile == "" {
			return nil, errors.New("cluster.etcd.password_file: required when cluster.etcd.username is set")
		}
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.password_file: %w", err)
		}
		c.Username = cfg.Username
		c.Password = strings.TrimRight(string(b), "\r\n")
		if c.Password == "" {
			// clientv3 would skip authentication and run unauthenticated.
			return nil, fmt.Errorf("cluster.etcd.password_file: %s is empty", cfg.PasswordFile)
		}
	} else if cfg.PasswordFile != "" {
		return nil, errors.New("cluster.etcd.username: required when cluster.etcd.password_file is set")
	}
	cli, err := clientv3.New(c)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %s did not answer within %s (cluster.etcd.dial_timeout): %v%s",
				ErrEtcdUnreachable, strings.Join(eps, ", "), c.DialTimeout, err, tlsDiagnosis(ctx, eps, c.TLS, c.DialTimeout))
		}
		if errors.Is(err, rpctypes.ErrAuthFailed) {
			return nil, fmt.Errorf("etcd client for %s: user %q with the password in %s (cluster.etcd.username, cluster.etcd.password_file): %w",
				strings.Join(eps, ", "), cfg.Username, cfg.PasswordFile, err)
		}
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(eps, ", "), err)
	}
	if log != nil {
		log.Debug("etcd client created", "endpoints", eps, "tls", c.TLS != nil, "auth", c.Username != "")
	}
	return cli, nil
}

// checkReachable asks every endpoint for its status, in turn, each within
// the dial timeout; one answer is enough.
func checkReachable(ctx context.Context, cli *clientv3.Client, cfg config.Etcd) error {
	timeout := dialTimeout(cfg)
	var tc *tls.Config // for the diagnosis only; dial checked the files
	if cfg.TLS != (config.TLS{}) {
		tc, _ = clientTLS(cfg.TLS)
	}
	var errs []error
	for _, ep := range cli.Endpoints() {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := cli.Status(sctx, ep)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d := tlsDiagnosis(ctx, []string{ep}, tc, timeout); d != "" {
			err = fmt.Errorf("%w%s", err, d)
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return fmt.Errorf("%w: no endpoint answered within %s (cluster.etcd.dial_timeout): %w",
		ErrEtcdUnreachable, timeout, errors.Join(errs...))
}

// clientTLS builds the client TLS configuration from PEM files.
func clientTLS(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.etcd.tls.ca: %s holds no PEM certificate", t.CA)
		}
		tc.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("cluster.etcd.tls: cert and key must be given together")
	}
	if t.Cert != "" {
		kp, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}

// h2Preface is an HTTP/2 client connection preface and an empty SETTINGS
// frame: what a gRPC client sends first, and what an etcd member answers.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// tlsDiagnosis explains why the gRPC connection to an endpoint failed when
// the cause was TLS, which gRPC only reports as a deadline: it connects to
// each endpoint that clientv3 would use TLS for (https, or any scheme with
// TLS configured) with the same TLS configuration, sends the HTTP/2
// preface and reads the answer. TLS 1.3 servers reject a client
// certificate after the handshake, so the read is what sees that alert.
// It returns "" when no endpoint shows a TLS problem (the endpoint is
// down, or answers), else "; TLS with <ep>: <error>" for each one that
// does, naming the cluster.etcd.tls settings to check.
func tlsDiagnosis(ctx context.Context, eps []string, tc *tls.Config, timeout time.Duration) string {
	var b strings.Builder
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "https" && tc == nil) || (u.Scheme != "https" && u.Scheme != "http") {
			continue
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if tc != nil {
			cfg = tc.Clone()
		}
		cfg.NextProtos = []string{"h2"}
		if err := tlsProbe(ctx, u.Host, cfg, timeout); err != nil {
			fmt.Fprintf(&b, "; TLS with %s: %v (check cluster.etcd.tls ca, cert and key against the member's certificate and CA)", ep, err)
		}
	}
	return b.String()
}

// tlsProbe returns the TLS error of a connection to addr, or nil when the
// handshake succeeded and the server answered, or the failure was not TLS.
func tlsProbe(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil // not a TLS problem
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		return tlsError(err)
	}
	if _, err := tconn.Write([]byte(h2Preface)); err != nil {
		return tlsError(err)
	}
	var one [1]byte
	if _, err := tconn.Read(one[:]); err != nil {
		return tlsError(err)
	}
	return nil
}

// tlsError keeps err when it is about TLS (a certificate the client
// rejected, an alert from the server, a non-TLS peer), else nil. A
// server's alert is an unexported type; its text starts "tls:".
func tlsError(err error) error {
	var (
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		netError net.Error
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &header):
		return err
	case errors.As(err, &netError) && netError.Timeout(), errors.Is(err, io.EOF):
		return nil
	case strings.Contains(err.Error(), "tls:"):
		return err
	}
	return nil
}
