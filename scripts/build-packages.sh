#!/usr/bin/env bash
# Builds the release artifacts of the static binary into OUT_DIR and prints their paths:
#   etcdadm_<version>-1_amd64.deb          (cargo-deb)
#   etcdadm-<version>-1.x86_64.rpm         (cargo-generate-rpm)
#   etcdadm-<version>-x86_64-linux.tar.gz  (binary, unit, man pages, completions, docs)
#   SHA256SUMS                             (of the three, as `sha256sum -c` reads it)
# Each package carries /usr/bin/etcdadm, etcdadm-bootstrap.service with a drop-in pointing
# it at /usr/bin, one man page per command (section 8), bash/zsh/fish completions, README,
# license, and the example Prometheus alert rules (/usr/share/etcdadm/prometheus/). Tools: scripts/install-deps.sh.
set -euo pipefail
usage="usage: $0 OUT_DIR"
out=${1:?$usage}
cd "$(dirname "$0")/.."
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || { echo "build-packages: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
[[ $(uname -m) == x86_64 ]] || { echo "build-packages: only x86_64 is packaged (this is $(uname -m))" >&2; exit 1; }
mkdir -p "$out"
out=$(realpath "$out")

bin=$(scripts/build-static.sh)
target=x86_64-unknown-linux-gnu
version=$("$bin" --version | awk '{print $2}')
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "build-packages: cannot tell the version from '$("$bin" --version)'" >&2; exit 1; }

# Generated assets next to the binary: the packages' target/release/packaging/.
stage=$(dirname "$bin")/packaging
rm -rf "$stage"
mkdir -p "$stage/man" "$stage/completions"
"$bin" generate man "$stage/man" >/dev/null
gzip -9n "$stage"/man/*.8
"$bin" generate completions bash >"$stage/completions/etcdadm.bash"
"$bin" generate completions zsh >"$stage/completions/_etcdadm"
"$bin" generate completions fish >"$stage/completions/etcdadm.fish"

deb=$out/etcdadm_${version}-1_amd64.deb
rpm=$out/etcdadm-${version}-1.x86_64.rpm
tarball=$out/etcdadm-${version}-x86_64-linux.tar.gz
rm -f "$deb" "$rpm" "$tarball" "$out/SHA256SUMS"
cargo deb --locked --no-build --no-strip --target "$target" --output "$deb" >&2
cargo generate-rpm --target "$target" --payload-compress gzip --output "$rpm" >&2

# The tarball: for machines without dpkg or rpm (the unit as the examples use it: /opt/bin).
top=etcdadm-${version}-x86_64-linux
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/$top/man" "$tree/$top/completions"
install -m 0755 "$bin" "$tree/$top/etcdadm"
install -m 0644 packaging/etcdadm-bootstrap.service README.md LICENSE "$tree/$top/"
install -m 0644 "$stage"/man/* "$tree/$top/man/"
install -m 0644 "$stage"/completions/* "$tree/$top/completions/"
install -D -m 0644 packaging/prometheus/etcdadm-alerts.yml "$tree/$top/prometheus/etcdadm-alerts.yml"
mtime=@$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar -C "$tree" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" -cf - "$top" | gzip -9n >"$tarball"

(cd "$out" && sha256sum "$(basename "$deb")" "$(basename "$rpm")" "$(basename "$tarball")" >SHA256SUMS)
printf '%s\n' "$deb" "$rpm" "$tarball" "$out/SHA256SUMS"
