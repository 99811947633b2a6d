#!/usr/bin/env bash
# Finds or builds the native tools Solstice needs that upstream would normally
# download at run time (which does not work on offline machines): the Temporal
# CLI (dev server + Web UI), versitygw, the S3-compatible server the blob store
# tests run against (posix backend), and Jaeger v2, the OTLP receiver and trace
# store the tracing tests query. Builds from the Go module proxy, pinned, cached
# in .tools/bin; a second run is a no-op.
#
# Usage: bootstrap.sh [TOOL ...]
#   TOOL: temporal, versitygw, jaeger, gitea, temporal-server, temporal-sql-tool
# (default: temporal, versitygw, jaeger). Each command asks for only what it runs: `npm run
# ci:local` needs the Temporal CLI alone, so a newcomer's first run does not wait for the
# test-only tools. Gitea (a real forge for the forge tests) is the slowest build by far, so
# only the tests and benches that need it ask for it (devstack/gitea.ts). temporal-server and
# temporal-sql-tool (a real Temporal cluster on PostgreSQL, docs/deploy.md) take ~20 min on two
# cores, so they are never built by default either: `bootstrap.sh temporal-server temporal-sql-tool`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=infra/versions.env
source "$here/versions.env"

bin_dir="${SOLSTICE_TOOLS_DIR:-$root/.tools}/bin"
mkdir -p "$bin_dir"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    die "Go is not installed, and it is needed to build $1 from source.
  Install Go >= 1.23 (Debian: apt-get install golang-go, or https://go.dev/dl),
  or put a prebuilt '$1' binary at $bin_dir/$1."
  fi
}

# Go's -v prints each package as it compiles; every 50th is the progress we show.
progress() { awk '{ n++; if (n % 50 == 0) printf "[bootstrap]   ... %d packages compiled\n", n > "/dev/stderr" }'; }

# cached NAME VERSION: true when $bin_dir/NAME was built for VERSION (its stamp says so).
cached() {
  local name="$1" version="$2"
  if [[ -x "$bin_dir/$name" && -f "$bin_dir/.$name.version" && "$(cat "$bin_dir/.$name.version")" == "$version" ]]; then
    say "$name $version: cached at $bin_dir/$name"
    return 0
  fi
  return 1
}

# build NAME VERSION WHAT COMMAND...: runs the Go build COMMAND, then stamps the version.
build() {
  local name="$1" version="$2" what="$3"
  shift 3
  need_go "$name"
  say "$name $version: building $what with $(go version | awk '{print $3}') (first time takes several minutes)..."
  local started=$SECONDS
  if ! "$@" 2> >(progress); then
    die "building $name failed (see above). Is the Go module proxy reachable? (go env GOPROXY: $(go env GOPROXY))"
  fi
  echo "$version" > "$bin_dir/.$name.version"
  say "$name $version: built in $((SECONDS - started))s -> $bin_dir/$name"
}

# build_tool NAME MODULE@VERSION VERSION
build_tool() {
  local name="$1" pkg="$2" version="$3"
  cached "$name" "$version" && return
  build "$name" "$version" "$pkg" env GOBIN="$bin_dir" GOFLAGS="${GOFLAGS:-} -trimpath" go install -v "$pkg"
}

# build_wrapped_tool NAME PACKAGE VERSION
# For tools whose go.mod has `replace` lines (which `go install pkg@version` refuses):
# infra/NAME/go.mod requires the pinned module and repeats those lines, and we build
# the package inside that module.
build_wrapped_tool() {
  local name="$1" pkg="$2" version="$3"
  local module_dir="$here/$name"
  local module="${pkg%/cmd/*}"
  if ! grep -qE "^[[:space:]]*$module $version( |$)" "$module_dir/go.mod"; then
    die "$module_dir/go.mod does not require $module $version (infra/versions.env); update both together."
  fi
  cached "$name" "$version" && return
  build "$name" "$version" "$pkg" \
    env -C "$module_dir" GOFLAGS="${GOFLAGS:-} -trimpath" go build -v -o "$bin_dir/$name" "$pkg"
}

# build_gitea VERSION
# Gitea's go.mod declares `module gitea.dev` and has `replace` lines, so neither `go install`
# nor a wrapper module works; we build inside a writable copy of the downloaded module.
# The copy stays in the tools dir: the server renders its pages from the templates and
# options in it (STATIC_ROOT_PATH), since we skip the frontend build.
build_gitea() {
  local version="$1"
  local src_dir="$bin_dir/../gitea-src/$version"
  if cached gitea "$version" && [[ -d "$src_dir/templates" ]]; then return; fi
  need_go gitea
  say "gitea $version: downloading the module source..."
  local dir
  dir="$(go mod download -json "code.gitea.io/gitea@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || die "go mod download code.gitea.io/gitea@$version gave no module directory"
  rm -rf "$src_dir.tmp"
  mkdir -p "$(dirname "$src_dir")"
  cp -r "$dir" "$src_dir.tmp"
  chmod -R u+w "$src_dir.tmp"
  rm -rf "$src_dir"
  mv "$src_dir.tmp" "$src_dir"
  build gitea "$version" "code.gitea.io/gitea@$version" \
    env -C "$src_dir" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" \
    go build -v -tags 'sqlite sqlite_unlock_notify' -o "$bin_dir/gitea" .
}

# build_temporal_server NAME PACKAGE VERSION
# The server module's Makefile builds with CGO off and without the optional gRPC modules
# (-tags disable_grpc_modules). `go build pkg@version` is not allowed and `go install` names
# the binaries `server` and `sql`, so we install into a scratch GOBIN and rename.
build_temporal_server() {
  local name="$1" pkg="$2" version="$3"
  cached "$name" "$version" && return
  build "$name" "$version" "$pkg@$version" install_renamed "$name" "$pkg@$version"
}

# install_renamed NAME PACKAGE@VERSION: go install into a scratch dir, move to $bin_dir/NAME.
install_renamed() {
  local name="$1" pkg="$2" work
  work="$(mktemp -d)"
  env GOBIN="$work" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install -v -tags disable_grpc_modules "$pkg" || { rm -rf "$work"; return 1; }
  local built="${pkg%@*}"
  mv "$work/${built##*/}" "$bin_dir/$name"
  rm -rf "$work"
}

default_tools=(temporal versitygw jaeger)
all_tools=("${default_tools[@]}" gitea temporal-server temporal-sql-tool)
wanted=("$@")
((${#wanted[@]})) || wanted=("${default_tools[@]}")
for tool in "${wanted[@]}"; do
  case "$tool" in
    temporal) build_tool temporal "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" "$TEMPORAL_CLI_VERSION" ;;
    versitygw) build_tool versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" "$VERSITYGW_VERSION" ;;
    jaeger) build_wrapped_tool jaeger "github.com/jaegertracing/jaeger/cmd/jaeger" "$JAEGER_VERSION" ;;
    gitea) build_gitea "$GITEA_VERSION" ;;
    temporal-server) build_temporal_server temporal-server go.temporal.io/server/cmd/server "$TEMPORAL_SERVER_VERSION" ;;
    temporal-sql-tool) build_temporal_server temporal-sql-tool go.temporal.io/server/cmd/tools/sql "$TEMPORAL_SERVER_VERSION" ;;
    *) die "unknown tool '$tool' (known: ${all_tools[*]})" ;;
  esac
done

say "ready: ${wanted[*]} in $bin_dir"
