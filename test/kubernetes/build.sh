#!/usr/bin/env sh
# Builds the Kubernetes test control plane from Go modules: kube-apiserver,
# kube-controller-manager and kubectl (go/kubernetes) and etcd (go/etcd), at the versions those
# go.mod files require, into ${XDG_CACHE_HOME:-$HOME/.cache}/fanout-k8s/<version>/.
# A binary that is there and reports its version is kept. Prints the binaries' dirs on stdout
# (k8s-bin-dir=..., etcd-bin-dir=...), progress on stderr; exits non-zero on any failure. Cold: ~10 min on 2 cores (the Go
# build cache then makes a relink ~10 s); warm with all binaries present: well under a second.
# Runs under flock, so concurrent callers (npm test, k8s:up) wait for one build.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/fanout-k8s
mkdir -p "$CACHE"

# The version a go.mod requires for a module, from a one-line or block `require`.
required_version() { # go.mod module
  awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' "$1"
}

K8S_VERSION=$(required_version "$HERE/go/kubernetes/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(required_version "$HERE/go/etcd/go.mod" go.etcd.io/etcd/server/v3)
[ -n "$K8S_VERSION" ] || { echo "build.sh: no k8s.io/kubernetes version in go/kubernetes/go.mod" >&2; exit 1; }
[ -n "$ETCD_VERSION" ] || { echo "build.sh: no go.etcd.io/etcd/server/v3 version in go/etcd/go.mod" >&2; exit 1; }
K8S_OUT=$CACHE/$K8S_VERSION
ETCD_OUT=$CACHE/etcd-$ETCD_VERSION

# Prints what a binary says its version is (empty if it is missing or broken).
binary_version() { # name path
  [ -x "$2" ] || return 0
  case $1 in
    kubectl) "$2" version --client 2>/dev/null || true ;;
    *) "$2" --version 2>/dev/null || true ;;
  esac
}

# True when the binary is there and reports the expected version.
is_current() { # name path expected-version
  binary_version "$1" "$2" | grep -qF "$3"
}

all_current() {
  for c in kube-apiserver kube-controller-manager kubectl; do
    is_current "$c" "$K8S_OUT/$c" "$K8S_VERSION" || return 1
  done
  is_current etcd "$ETCD_OUT/etcd" "${ETCD_VERSION#v}"
}

# The two lines on stdout say where the binaries are (progress goes to stderr).
print_dirs() {
  echo "k8s-bin-dir=$K8S_OUT"
  echo "etcd-bin-dir=$ETCD_OUT"
}

if all_current; then
  echo "k8s build: up to date ($K8S_OUT, $ETCD_OUT)" >&2
  print_dirs
  exit 0
fi

command -v go >/dev/null 2>&1 || {
  echo "build.sh: 'go' not found on PATH; the Kubernetes test suite builds its control plane from Go modules (Go >= 1.26)" >&2
  exit 1
}

exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  echo "k8s build: another build holds $CACHE/.build.lock; waiting" >&2
  flock 9
fi

now() { date +%s; }
START=$(now)

# Builds one main package into dir/name through a temp file, so an interrupted build never
# leaves a binary that looks complete.
build() { # module-dir package out-dir name ldflags
  t0=$(now)
  echo "k8s build: $4 ($2) -> $3 ..." >&2
  mkdir -p "$3"
  (cd "$1" && nice -n 19 go build -ldflags "$5" -o "$3/.$4.tmp.$$" "$2") || {
    rm -f "$3/.$4.tmp.$$"
    echo "build.sh: building $4 failed" >&2
    exit 1
  }
  mv -f "$3/.$4.tmp.$$" "$3/$4"
  echo "k8s build: $4 done in $(($(now) - t0)) s" >&2
}

# Version stamps as hack/lib/version.sh sets them; without them the binaries report
# "v0.0.0-master+$Format:%H$" from --version and /version.
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
MAJOR=$(echo "$K8S_VERSION" | cut -d. -f1 | tr -d v)
LDFLAGS=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS="$LDFLAGS -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$MAJOR -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

for c in kube-apiserver kube-controller-manager kubectl; do
  if is_current "$c" "$K8S_OUT/$c" "$K8S_VERSION"; then
    echo "k8s build: $c $K8S_VERSION present" >&2
  else
    build "$HERE/go/kubernetes" "k8s.io/kubernetes/cmd/$c" "$K8S_OUT" "$c" "$LDFLAGS"
    is_current "$c" "$K8S_OUT/$c" "$K8S_VERSION" || { echo "build.sh: $c does not report $K8S_VERSION: $(binary_version "$c" "$K8S_OUT/$c")" >&2; exit 1; }
  fi
done

if is_current etcd "$ETCD_OUT/etcd" "${ETCD_VERSION#v}"; then
  echo "k8s build: etcd $ETCD_VERSION present" >&2
else
  build "$HERE/go/etcd" go.etcd.io/etcd/server/v3 "$ETCD_OUT" etcd ""
  is_current etcd "$ETCD_OUT/etcd" "${ETCD_VERSION#v}" || { echo "build.sh: etcd does not report $ETCD_VERSION" >&2; exit 1; }
fi

echo "k8s build: done in $(($(now) - START)) s ($K8S_OUT, $ETCD_OUT)" >&2
print_dirs
