package config

import "testing"

// TestEtcdTLSAndAuth: the etcd TLS file paths and the user and password
// file reach cluster.etcd as written.
func TestEtcdTLSAndAuth(t *testing.T) {
	cfg, err := parseFile(t, "testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CA: "/etc/gwstated/ca.pem", Cert: "/etc/gwstated/client.pem", Key: "/etc/gwstated/client.key"}
	if got := cfg.Cluster.Etcd.TLS; got != want {
		t.Errorf("cluster.etcd.tls = %+v, want %+v", got, want)
	}

	data := []byte(`cluster:
  gossip: {key_file: /etc/gwstated/gossip.key}
  etcd:
    endpoints: [https://127.0.0.1:2379]
    username: gwstated
    password_file: /etc/gwstated/etcd.pw
    tls: {ca: /etc/gwstated/ca.pem}
lan: {interface: em1, network: 10.1.0.0/16}
links:
  - {name: wan, interface: em0, gateway: 192.0.2.1}
`)
	cfg, err = Parse(data, "", withHostname(testHost))
	if err != nil {
		t.Fatalf("CA only, with user and password file: %v", err)
	}
	e := cfg.Cluster.Etcd
	if e.Username != "gwstated" || e.PasswordFile != "/etc/gwstated/etcd.pw" || e.TLS != (TLS{CA: "/etc/gwstated/ca.pem"}) {
		t.Errorf("cluster.etcd = user %q, password_file %q, tls %+v", e.Username, e.PasswordFile, e.TLS)
	}
}
