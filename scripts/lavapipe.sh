#!/usr/bin/env bash
# Fetch Mesa 25 lavapipe (CPU Vulkan) and the Vulkan loader into a private folder, without
# installing anything system-wide, so that the webgpu backend (Dawn) finds an adapter on a
# machine with no GPU. Debian bookworm's own Mesa 22.3 lavapipe is rejected by Dawn; the
# bookworm-backports Mesa 25 works.
#
# Usage (either):
#   source scripts/lavapipe.sh            # downloads once, then exports the variables
#   eval "$(bash scripts/lavapipe.sh)"    # same, for shells that prefer eval
# Options (environment): CEG_VK_DIR   cache folder (default: <repo>/.vk)
#                       CEG_DEBIAN_SUITE  base suite (default: bookworm; backports = <suite>-backports)
#                       CEG_DEBIAN_MIRROR (default: http://deb.debian.org/debian)
# Idempotent: when the cache already holds the driver, nothing is downloaded.
# apt state (package lists) lives in <cache>/apt/, never in /var/lib/apt; nothing is installed.
# Exported: VK_ICD_FILENAMES, VK_DRIVER_FILES (both = <cache>/lvp_icd.json), LD_LIBRARY_PATH
# (<cache>/root/usr/lib/<triplet> prepended), XDG_RUNTIME_DIR (if unset).
# Without sourcing, `initEngine({backend: 'webgpu'})` also finds <repo>/.vk by itself (see
# src/engine/vulkan-env.ts), so the variables are a convenience for other tools.

_ceg_lvp_main() (
  set -euo pipefail
  local here repo vk suite mirror triplet root libdir icd apt
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  repo="$(cd "$here/.." && pwd)"
  vk="${CEG_VK_DIR:-$repo/.vk}"
  suite="${CEG_DEBIAN_SUITE:-bookworm}"
  mirror="${CEG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  case "$(uname -m)" in
    x86_64) triplet=x86_64-linux-gnu ;;
    aarch64) triplet=aarch64-linux-gnu ;;
    *) echo "lavapipe.sh: unsupported machine $(uname -m); valid: x86_64, aarch64" >&2; exit 1 ;;
  esac
  root="$vk/root"
  libdir="$root/usr/lib/$triplet"
  icd="$vk/lvp_icd.json"
  apt="$vk/apt"
  mkdir -p "$vk"

  _apt() {
    apt-get -q -o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=- \
      -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" \
      -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" "$@"
  }
  _fetch() { # download and unpack packages (name or name/suite) into $root
    mkdir -p "$vk/debs" && (cd "$vk/debs" && _apt download "$@" >&2)
    local f
    for f in "$vk"/debs/*.deb; do
      [[ -e "$f.unpacked" ]] && continue
      dpkg-deb -x "$f" "$root" && touch "$f.unpacked"
    done
  }

  if [[ ! -e "$libdir/libvulkan_lvp.so" || ! -e "$libdir/libvulkan.so.1" ]]; then
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
      echo "lavapipe.sh: needs apt-get and dpkg-deb (a Debian-based system); neither is on PATH" >&2; exit 1; }
    echo "lavapipe.sh: fetching Mesa lavapipe from $suite-backports into $vk (private apt state, nothing installed)" >&2
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    printf 'deb %s %s main\ndeb %s %s-backports main\n' "$mirror" "$suite" "$mirror" "$suite" > "$apt/sources.list"
    _apt update >&2
    _fetch "mesa-vulkan-drivers/$suite-backports" "libdrm2/$suite-backports" \
      "libdrm-amdgpu1/$suite-backports" "libdrm-common/$suite-backports" libvulkan1
    [[ -e "$libdir/libvulkan_lvp.so" ]] || { echo "lavapipe.sh: $libdir/libvulkan_lvp.so missing after unpack" >&2; exit 1; }
  fi

  # Shared libraries the driver needs that this system lacks: fetch their packages too
  # (a lean machine may lack LLVM 15, xcb, wayland ...). Soname -> Debian package by rule.
  local pass missing pkgs so
  for pass in 1 2 3; do
    missing="$(LD_LIBRARY_PATH="$libdir" ldd "$libdir/libvulkan_lvp.so" "$libdir/libvulkan.so.1" 2>/dev/null \
      | awk '/not found/ {print $1}' | sort -u)"
    [[ -z "$missing" ]] && break
    [[ -e "$apt/sources.list" ]] || {
      mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
      printf 'deb %s %s main\ndeb %s %s-backports main\n' "$mirror" "$suite" "$mirror" "$suite" > "$apt/sources.list"
      _apt update >&2; }
    pkgs=()
    for so in $missing; do
      case "$so" in
        libLLVM-*.so.*) pkgs+=("libllvm$(echo "$so" | sed -E 's/libLLVM-([0-9]+).*/\1/')") ;;
        libX11-xcb.so.1) pkgs+=(libx11-xcb1) ;;
        libicuuc.so.*|libicudata.so.*) pkgs+=("libicu$(echo "$so" | sed -E 's/.*\.so\.([0-9]+).*/\1/')") ;;
        libz.so.1) pkgs+=(zlib1g) ;;
        libxml2.so.2) pkgs+=(libxml2) ;;
        *) pkgs+=("$(echo "$so" | sed -E 's/\.so\.([0-9]+).*/\1/; s/^(.*[0-9])([0-9]+)$/\1-\2/' | tr 'A-Z_' 'a-z-')") ;;
      esac
    done
    echo "lavapipe.sh: missing $missing -> fetching ${pkgs[*]}" >&2
    _fetch "${pkgs[@]}" || true
  done
  if [[ -n "${missing:-}" ]]; then
    echo "lavapipe.sh: still missing shared libraries: $missing (install them with apt-get)" >&2; exit 1
  fi

  printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "%s", "api_version": "1.3.0" }\n}\n' \
    "$libdir/libvulkan_lvp.so" > "$icd"
  printf 'export VK_ICD_FILENAMES=%q\n' "$icd"
  printf 'export VK_DRIVER_FILES=%q\n' "$icd"
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$libdir:"*) printf 'export LD_LIBRARY_PATH=%q\n' "${LD_LIBRARY_PATH:-}" ;;
    *) printf 'export LD_LIBRARY_PATH=%q\n' "$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
  printf 'export XDG_RUNTIME_DIR=%q\n' "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}"
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # sourced: run in a subshell (errors do not kill the caller), then export the variables
  if _ceg_lvp_out="$(_ceg_lvp_main)"; then
    eval "$_ceg_lvp_out"
    echo "lavapipe.sh: exported VK_ICD_FILENAMES=$VK_ICD_FILENAMES (and VK_DRIVER_FILES, LD_LIBRARY_PATH, XDG_RUNTIME_DIR)" >&2
  else
    echo "lavapipe.sh: failed; variables not exported" >&2
  fi
  unset _ceg_lvp_out
  unset -f _ceg_lvp_main
else
  _ceg_lvp_main
fi
