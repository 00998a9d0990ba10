// Package config owns gwstated's configuration: one YAML file for the whole
// cluster, read with viper and decoded strictly (an unknown key anywhere is
// an error) into the typed structs of types.go; the defaults, all in
// defaults.go; and validation (validate.go) that reports every problem at
// once, each naming its field and value, so that no name, interface or
// address reaches pf or a command line unchecked.
//
// Parse and Load select the node (--node, else the file's node:, else the
// host name) whose nodes.<name> entry overrides probe sources, gossip and
// embedded etcd URLs; Self, ProbeSource, Gossip, Embed and EtcdEndpoints
// read the result. Policy hands linkstate what Decide needs; Hash lets nodes
// compare configurations; Marshal prints the effective configuration.
//
// This package renders no pf rules: that is pfapply's.
package config
