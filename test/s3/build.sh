#!/usr/bin/env sh
# Builds the S3-compatible test server, SeaweedFS's `weed`, from its Go module at the version
# go/go.mod requires, into ${XDG_CACHE_HOME:-$HOME/.cache}/fanout-s3/<version>/weed.
# A binary that is there and answers `weed version` is kept (the directory is keyed on the module
# version and the binary is moved into place only when complete). Prints its path on stdout
# (weed=...), progress on stderr; exits non-zero on any failure. Cold: module download (3.7 GB)
# several minutes plus about 8 min of build on 2 idle cores (29 min measured with the 2 cores
# shared by other builds and tests); warm: well under a second.
# `go install …/weed@version` is refused because SeaweedFS's go.mod has a replace directive, so
# it builds from the wrapper module in go/ (go.mod copies that replace line; tools.go pins the
# package). Runs under flock, so concurrent callers (parallel test files) wait for one build.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/fanout-s3
MODULE=github.com/seaweedfs/seaweedfs
mkdir -p "$CACHE"

VERSION=$(awk -v m="$MODULE" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' "$HERE/go/go.mod")
[ -n "$VERSION" ] || { echo "build.sh: no $MODULE version in go/go.mod" >&2; exit 1; }
OUT=$CACHE/$VERSION
WEED=$OUT/weed

is_current() {
  [ -x "$WEED" ] && "$WEED" version 2>/dev/null | grep -q 'version'
}

if is_current; then
  echo "s3 build: up to date ($WEED)" >&2
  echo "weed=$WEED"
  exit 0
fi

command -v go >/dev/null 2>&1 || {
  echo "build.sh: 'go' not found on PATH; the S3 tests build SeaweedFS from its Go module (Go >= 1.26)" >&2
  exit 1
}

exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  echo "s3 build: another build holds $CACHE/.build.lock; waiting" >&2
  flock 9
fi
# The build we waited for may have produced it.
if is_current; then
  echo "s3 build: built by another caller ($WEED)" >&2
  echo "weed=$WEED"
  exit 0
fi

START=$(date +%s)
echo "s3 build: weed ($MODULE $VERSION) -> $WEED; a cold build takes 10-30 min on 2 cores ..." >&2
mkdir -p "$OUT"
# -mod=readonly: go.mod and go.sum are committed and must not change during a test run.
# GOTOOLCHAIN=local: build with the installed Go rather than downloading another toolchain.
(cd "$HERE/go" && GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local nice -n 10 go build -o "$OUT/.weed.tmp.$$" "$MODULE/weed") || {
  rm -f "$OUT/.weed.tmp.$$"
  echo "build.sh: building weed failed" >&2
  exit 1
}
mv -f "$OUT/.weed.tmp.$$" "$WEED"
is_current || { echo "build.sh: $WEED does not answer 'weed version'" >&2; exit 1; }
echo "s3 build: done in $(($(date +%s) - START)) s: $("$WEED" version 2>/dev/null | head -1)" >&2
echo "weed=$WEED"
