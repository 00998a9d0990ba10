package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster/clustertest"
	"gwstated/cluster/etcdmember"
	"gwstated/config"
)

// startTLSMember starts a one-member embedded etcd through etcdmember.Start
// with https peer and client URLs and cluster.etcd.tls set to the member
// certificate, so the member requires client certificates signed by the
// CA. It returns the client URL.
func startTLSMember(t *testing.T, pki clustertest.TLSFiles) string {
	t.Helper()
	peer, client := "https://"+freeAddr(t), "https://"+freeAddr(t)
	cfg := testConfig(t, "tls", "fw1", "", nil)
	cfg.Nodes = map[string]config.NodeSpec{"fw1": {Etcd: config.NodeEtcd{PeerURL: peer, ClientURL: client}}}
	cfg.Cluster.Etcd.Embed = &config.Embed{DataDir: t.TempDir(), InitialCluster: map[string]string{"fw1": peer}}
	cfg.Cluster.Etcd.TLS = config.TLS{CA: pki.CA, Cert: pki.MemberCert, Key: pki.MemberKey}
	m, err := etcdmember.Start(ctxT(t, 60*time.Second), cfg, testLog())
	if err != nil {
		t.Fatalf("etcdmember.Start with TLS: %v", err)
	}
	t.Cleanup(m.Close)
	return client
}

// TestTLSClient: an embedded member serving https with client certificate
// auth takes a client with the CA and a client certificate, and refuses,
// with an error naming the endpoint and TLS, one without a certificate, one
// with a CA that did not sign the member's certificate and one speaking
// plain http.
func TestTLSClient(t *testing.T) {
	pki := clustertest.WriteTLS(t)
	other := clustertest.WriteTLS(t) // an unrelated CA and client
	ep := startTLSMember(t, pki)
	ctx := ctxT(t, 60*time.Second)

	cli, err := NewClient(ctx, config.Etcd{
		Endpoints:   []string{ep},
		DialTimeout: 5 * time.Second,
		TLS:         config.TLS{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey},
	}, testLog())
	if err != nil {
		t.Fatalf("client with CA and client certificate: %v", err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "tls-k", "tls-v"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	r, err := cli.Get(ctx, "tls-k")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "tls-v" {
		t.Fatalf("get over TLS = %v (err %v), want tls-v", r, err)
	}

	for _, tc := range []struct {
		name string
		eps  []string
		tls  config.TLS
		want []string // substrings of the error, besides the endpoint
	}{
		{"no client certificate", []string{ep}, config.TLS{CA: pki.CA}, []string{"TLS", "certificate"}},
		{"client certificate of another CA", []string{ep}, config.TLS{CA: pki.CA, Cert: other.ClientCert, Key: other.ClientKey}, []string{"TLS", "certificate"}},
		{"wrong CA", []string{ep}, config.TLS{CA: other.CA, Cert: pki.ClientCert, Key: pki.ClientKey}, []string{"TLS", "certificate", "unknown authority"}},
		{"no TLS", []string{"http://" + strings.TrimPrefix(ep, "https://")}, config.TLS{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(ctx, config.Etcd{Endpoints: tc.eps, DialTimeout: time.Second, TLS: tc.tls}, testLog())
			if err == nil {
				c.Close()
				t.Fatal("NewClient succeeded; want it refused")
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, ErrEtcdUnreachable) {
				t.Errorf("err = %v; want ErrEtcdUnreachable", err)
			}
			for _, s := range append([]string{tc.eps[0]}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v; want it to say %q", err, s)
				}
			}
		})
	}
}

// TestAuthPasswordFile: with etcd auth enabled on a TLS member, a client
// with username and password_file works; a wrong password is refused
// with an error naming the user, the password file and the endpoint.
func TestAuthPasswordFile(t *testing.T) {
	pki := clustertest.WriteTLS(t)
	ep := startTLSMember(t, pki)
	ctx := ctxT(t, 60*time.Second)
	base := config.Etcd{
		Endpoints:   []string{ep},
		DialTimeout: 5 * time.Second,
		TLS:         config.TLS{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey},
	}
	admin, err := NewClient(ctx, base, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// root (with the root role) must exist before auth can be enabled; the
	// agent's own user has a role on the cluster prefix only.
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "r00t-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "gwstated"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "gwstated", "/gwstated/", "/gwstated0", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "gw", "s3cret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "gw", "gwstated"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}

	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	os.WriteFile(bad, []byte("wrong\n"), 0o600)

	cfg := base
	cfg.Username, cfg.PasswordFile = "gw", good
	cli, err := NewClient(ctx, cfg, testLog())
	if err != nil {
		t.Fatalf("client with username and password_file: %v", err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/gwstated/auth/k", "v"); err != nil {
		t.Fatalf("authenticated put in the granted prefix: %v", err)
	}
	if _, err := cli.Put(ctx, "/elsewhere", "v"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("put outside the granted prefix: err = %v, want permission denied", err)
	}

	cfg.PasswordFile = bad
	c, err := NewClient(ctx, cfg, testLog())
	if err == nil {
		c.Close()
		t.Fatal("client with a wrong password: NewClient succeeded")
	}
	t.Logf("wrong password: %v", err)
	for _, s := range []string{ep, "authentication failed", `"gw"`, bad} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("wrong password: err = %v; want it to say %q", err, s)
		}
	}

	// An empty password file would have clientv3 skip authentication.
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	cfg.PasswordFile = empty
	if c, err := NewClient(ctx, cfg, testLog()); err == nil || !strings.Contains(err.Error(), empty+" is empty") {
		if c != nil {
			c.Close()
		}
		t.Errorf("empty password file: err = %v; want it named as empty", err)
	}

	// With a username, clientv3 authenticates while dialling; a TLS
	// failure there is explained too.
	cfg.PasswordFile, cfg.TLS, cfg.DialTimeout = good, config.TLS{CA: pki.CA}, time.Second
	c, err = NewClient(ctx, cfg, testLog())
	if err == nil {
		c.Close()
		t.Fatal("client with a password but no client certificate: NewClient succeeded")
	}
	for _, s := range []string{ep, "TLS", "certificate required"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("no client certificate: err = %v; want it to say %q", err, s)
		}
	}

	if _, err := cli.Get(ctx, "/gwstated/auth/k"); err != nil {
		t.Errorf("good client after a failed login: %v", err)
	}
}
