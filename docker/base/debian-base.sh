#!/usr/bin/env bash
# Build a minimal Debian image from debootstrap, for machines that cannot pull from a
# container registry. The stand-in images (docker/standins, docker/base/python) build
# FROM it: bookworm for all of them, sid for the current RabbitMQ series.
#
#   docker/base/debian-base.sh [TAG]     (default drone-delivery/debian-base:$DEBIAN_SUITE)
#
# Env: DEBIAN_SUITE (bookworm; sid has no -updates or -security suites), DEBIAN_MIRROR
# (default: the mirror apt is configured with), DEBIAN_SECURITY_MIRROR, FORCE=1 to rebuild
# an existing image, WORK_DIR (default build/debian-base-$DEBIAN_SUITE).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUITE="${DEBIAN_SUITE:-bookworm}"
TAG="${1:-drone-delivery/debian-base:$SUITE}"
WORK_DIR="${WORK_DIR:-$ROOT/build/debian-base-$SUITE}"
ROOTFS="$WORK_DIR/rootfs"

log() { printf '[debian-base] %s\n' "$*" >&2; }

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG exists; skipping (FORCE=1 rebuilds)"
    exit 0
fi

# The first URI that apt uses for SUITE (or SUITE-security), from one-line and deb822 files.
apt_uri_for() {
    local want="$1" f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v s="$want" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i + 1) == s) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: blank-line separated stanzas; print the URI of a stanza listing the suite.
        awk -v s="$want" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; hit = 0; deb = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
                  if ($i ~ /^Types:.*(^|[ \t])deb([ \t]|$)/) deb = 1
                  if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == s) hit = 1 }
              }
              if (hit && deb && uri != "") { print uri; exit } }' "$f"
    done
}

# Rolling suites are not in this machine's apt sources: the archive that serves its own
# (bookworm) suite serves them too.
MIRROR="${DEBIAN_MIRROR:-$(apt_uri_for "$SUITE" | head -n1)}"
MIRROR="${MIRROR:-$(apt_uri_for bookworm | head -n1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
case "$SUITE" in
    sid | unstable) ROLLING=1; SUITES="$SUITE"; SECURITY="" ;;
    *) ROLLING=0; SUITES="$SUITE $SUITE-updates"
       SECURITY="${DEBIAN_SECURITY_MIRROR:-$(apt_uri_for "$SUITE-security" | head -n1)}" ;;
esac
log "mirror: $MIRROR${SECURITY:+ (security: $SECURITY)}"

command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

rm -rf "${ROOTFS:?}"
mkdir -p "$ROOTFS"
# Keep docs, man pages and locales out of every later `apt-get install` in images built on
# this one (as Debian's official container images do); written before debootstrap's
# second stage so the base packages are unpacked without them as well.
mkdir -p "$ROOTFS/etc/dpkg/dpkg.cfg.d" "$ROOTFS/etc/apt/apt.conf.d"
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

log "debootstrap --variant=minbase $SUITE"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK_DIR/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK_DIR/debootstrap.log" >&2; exit 1
}
log "debootstrap took $((SECONDS - start)) s"

cat >"$ROOTFS/etc/apt/apt.conf.d/docker-slim" <<'EOF'
# Images install only what they ask for, and leave no package caches in their layers.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::AutoRemove::SuggestsImportant "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# Package maintainer scripts must not try to start daemons inside an image build.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
if [ "$ROLLING" = 1 ]; then
    # sid's Release file is valid for a week only: a mirror that serves a snapshot of it
    # (this machine's) is refused by apt once that week is over. Signatures are still checked.
    printf 'Acquire::Check-Valid-Until "false";\n' >"$ROOTFS/etc/apt/apt.conf.d/docker-rolling-suite"
fi

rm -f "${ROOTFS:?}/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" "$SUITES"
    if [ -n "$SECURITY" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$SECURITY" "$SUITE"
    fi
} >"$ROOTFS/etc/apt/sources.list.d/debian.sources"

# Bring the base up to date with the suite's updates and security fixes, then drop the
# indexes again.
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get upgrade -y -qq >/dev/null && apt-get clean' \
    >>"$WORK_DIR/debootstrap.log" 2>&1 || { tail -n 30 "$WORK_DIR/debootstrap.log" >&2; exit 1; }

# What the excludes above could not prevent (debootstrap's first stage), and run-time leftovers.
find "${ROOTFS:?}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find "${ROOTFS:?}/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "${ROOTFS:?}"/usr/share/man/* "${ROOTFS:?}"/usr/share/info/* "${ROOTFS:?}"/usr/share/lintian/*
find "${ROOTFS:?}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "${ROOTFS:?}"/var/lib/apt/lists/* "${ROOTFS:?}"/var/cache/apt/* "${ROOTFS:?}"/var/cache/debconf/*-old \
    "${ROOTFS:?}"/var/lib/dpkg/*-old "${ROOTFS:?}"/var/log/* "${ROOTFS:?}"/tmp/* "${ROOTFS:?}"/var/tmp/* \
    "${ROOTFS:?}"/dev/* "${ROOTFS:?}"/proc/* "${ROOTFS:?}"/sys/*
# The engine supplies these at run time; a build machine's values must not leak in.
: >"$ROOTFS/etc/resolv.conf"
printf 'localhost\n' >"$ROOTFS/etc/hostname"
rm -f "${ROOTFS:?}/etc/machine-id" && : >"${ROOTFS:?}/etc/machine-id"

log "importing as $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["bash"]' \
    -c "LABEL org.opencontainers.image.title=debian-base org.opencontainers.image.description=\"Debian $SUITE minbase from debootstrap\"" \
    - "$TAG" >/dev/null
rm -rf "${ROOTFS:?}"
docker image ls "$TAG" --format 'built {{.Repository}}:{{.Tag}} {{.Size}}' >&2
