//go:build tools

// Package tools pins etcd's server main package (server/main.go in v3.6), which ../../build.sh
// builds, so that `go mod tidy` keeps its dependencies in go.mod and go.sum.
package tools

import _ "go.etcd.io/etcd/server/v3"
