#!/usr/bin/env bash
# Build the sandbox image `agentkit-sandbox:latest` without any registry: debootstrap a minimal
# Debian (bash, python3, git, ripgrep when the mirror has it) from the apt mirror this machine
# already uses, add a non-root user `agent` (uid 1000), and `docker import` the result.
#
#   sandboxes/build-offline-image.sh [--force] [--tag NAME] [--print-mirror]
#
# --print-mirror only prints "MIRROR SUITE [KEYRING]" as read from the apt sources
# (APT_DIR, default /etc/apt, and OS_RELEASE, default /etc/os-release, can point elsewhere).
#
# Skips everything when the image exists (unless --force). The root filesystem tarball is cached
# in .ci/cache/ so a rebuild after `docker rmi` only re-imports it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
tag=agentkit-sandbox:latest
force=0
print_only=0
apt_dir=${APT_DIR:-/etc/apt}
os_release=${OS_RELEASE:-/etc/os-release}
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --tag) tag=$2; shift ;;
    --print-mirror) print_only=1 ;;
    *) echo "usage: $0 [--force] [--tag NAME] [--print-mirror]" >&2; exit 2 ;;
  esac
  shift
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
start=$(date +%s)

if [ "$print_only" = 0 ] && [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag: already present"
  exit 0
fi

# ---- which suite and mirror: the first plain Debian source in the machine's apt configuration ----
codename=$(. "$os_release" && echo "${VERSION_CODENAME:-}")
find_mirror() {
  local f
  # deb822 .sources files: stanzas with Types/URIs/Suites/Signed-By.
  for f in "$apt_dir"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && enabled != "no") {
          n = split(suites, s, " ")
          for (i = 1; i <= n; i++) if (s[i] == want || want == "") {
            split(uris, u, " "); print u[1], s[i], signed; exit
          }
        }
        types = uris = suites = signed = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"     { $1 = ""; types = $0 }
      tolower($1) == "uris:"      { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
      tolower($1) == "suites:"    { $1 = ""; suites = $0 }
      tolower($1) == "signed-by:" { signed = $2 }
      tolower($1) == "enabled:"   { enabled = tolower($2) }
      END { flush() }' "$f"
  done
  # one-line format: deb [options] URI suite components...
  for f in "$apt_dir"/sources.list "$apt_dir"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      $1 == "deb" {
        i = 2; signed = ""
        if ($2 ~ /^\[/) { while (i <= NF) { if ($i ~ /signed-by=/) { signed = $i; sub(/.*signed-by=/, "", signed); sub(/\].*/, "", signed) } if ($i ~ /\]$/) { i++; break } i++ } }
        if ($(i + 1) == want || want == "") { print $i, $(i + 1), signed; exit }
      }' "$f"
  done
}
read -r mirror suite keyring < <(find_mirror | head -n 1) || true
if [ -z "${mirror:-}" ] || [ -z "${suite:-}" ]; then
  echo "no Debian apt source for '${codename:-?}' found in $apt_dir/sources.list(.d); cannot debootstrap" >&2
  exit 1
fi
if [ "$print_only" = 1 ]; then echo "$mirror $suite${keyring:+ $keyring}"; exit 0; fi
echo "mirror: $mirror  suite: $suite"

cache=$repo/.ci/cache
mkdir -p "$cache"
tarball=$cache/agentkit-sandbox-rootfs-$suite.tar

if [ ! -s "$tarball" ] || [ "$force" = 1 ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap not installed: apt-get install debootstrap" >&2; exit 1; }
  include=python3,git,ca-certificates,procps
  # ripgrep is optional: only ask for it when the mirror has it.
  if apt-cache show ripgrep >/dev/null 2>&1; then include=$include,ripgrep; fi
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap '$SUDO rm -rf "$rootfs"' EXIT
  keyopt=()
  if [ -n "${keyring:-}" ] && [ -f "$keyring" ]; then keyopt=(--keyring "$keyring"); fi
  echo "debootstrap $suite into $rootfs (include: $include)"
  $SUDO debootstrap --variant=minbase --include="$include" "${keyopt[@]}" "$suite" "$rootfs" "$mirror" \
    > "$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
  $SUDO chroot "$rootfs" /usr/sbin/useradd --create-home --uid 1000 --shell /bin/bash agent
  $SUDO mkdir -p "$rootfs/workspace"
  $SUDO chroot "$rootfs" /bin/chown agent:agent /workspace
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  $SUDO tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

docker import \
  --change 'USER agent' \
  --change 'WORKDIR /workspace' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'LABEL org.agentkit.sandbox-image=1' \
  --change 'CMD ["bash"]' \
  "$tarball" "$tag" >/dev/null
echo "image $tag: built in $(( $(date +%s) - start ))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
