//go:build tools

// Package tools pins SeaweedFS's `weed` main package, which the S3 test server is built from
// (see ../build.sh), so that `go mod tidy` keeps everything it needs in go.mod and go.sum.
package tools

import (
	_ "github.com/seaweedfs/seaweedfs/weed"
)
