#!/usr/bin/env bash
# Build the base image `debian:bookworm-slim` locally when no registry is reachable: debootstrap a
# minimal Debian bookworm into a temporary directory and `docker import` it. Skips when the image
# already exists (pass --force to rebuild). Needs root, debootstrap and a running Docker engine.
#
#   docker/bootstrap-base.sh [--force]
set -euo pipefail

image="${BOTTLE_BASE_IMAGE:-debian:bookworm-slim}"
mirror="${BOTTLE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "bootstrap-base: $image already present"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "bootstrap-base: install debootstrap first (apt-get install debootstrap)" >&2; exit 1; }

root="$(mktemp -d /var/tmp/bottle-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "bootstrap-base: debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# Trim what a slim image does not carry, and point apt at the same mirror over http.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
echo "bootstrap-base: docker import as $image"
tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    - "$image" >/dev/null
echo "bootstrap-base: $image ready"
