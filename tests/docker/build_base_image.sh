#!/usr/bin/env bash
# Builds debian:bookworm-slim locally when no container registry is reachable:
# debootstrap a minbase bookworm into a temp folder, trim it the way the official slim
# image is trimmed (no docs, man pages, locales or apt lists; dpkg told to skip them in
# later installs too), then `docker import` it under the official name.
#
# Usage: build_base_image.sh [TAG]   (default debian:bookworm-slim)
# Env:   DEBIAN_MIRROR (default: the mirror apt uses on this machine, else deb.debian.org)
set -euo pipefail

TAG="${1:-debian:bookworm-slim}"

log() { echo "[base-image] $*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG already present"
  exit 0
fi
if timeout 60 docker pull "$TAG" >/dev/null 2>&1; then
  log "pulled $TAG"
  exit 0
fi

apt_mirror() {
  # The first plain http(s) Debian URI apt is configured with (deb822 or one-line format).
  grep -rhoE '(URIs:|^deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -n1
}
MIRROR="${DEBIAN_MIRROR:-$(apt_mirror || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
MIRROR="${MIRROR%/}"

command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rectifier-base.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"

log "debootstrap --variant=minbase bookworm from $MIRROR"
start=$SECONDS
timeout 900 debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -n 30 "$WORK/debootstrap.log" >&2
  exit 1
}

# Same sources as the official image: the release, its updates and security.
cat >"$ROOT/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES

# What the official slim image sets: keep docs and translations out of later installs,
# and let apt clean its cache after every install.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::Install-Recommends "false";' >"$ROOT/etc/apt/apt.conf.d/docker-no-recommends"

find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT"/usr/share/{man,groff,info,lintian,linda}/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*
: >"$ROOT/etc/hostname"
: >"$ROOT/etc/resolv.conf"

log "docker import as $TAG"
tar -C "$ROOT" --numeric-owner -c . \
  | docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$TAG" >/dev/null
log "built $TAG in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
