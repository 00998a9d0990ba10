//go:build tools

// Package main pins the module versions the issues name until their importers exist.
package main

import (
	_ "github.com/hashicorp/memberlist"
	_ "github.com/prometheus-community/pro-bing"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/viper"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/client/v3/concurrency"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sys/unix"
)
