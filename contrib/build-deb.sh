#!/bin/sh
# Builds the Debian package target/debian/palomar_<version>-1_<arch>.deb: the `palomar` binary in /usr/bin, the
# systemd unit (enabled on install, not started), a default /etc/palomar/palomar.toml (a conffile: an edited one
# is kept on upgrade), the manual pages and the bash, zsh and fish completions. Needs cargo-deb
# (`cargo install cargo-deb --locked`).
#
#   contrib/build-deb.sh                  a release build, then the package
#   contrib/build-deb.sh --no-build       package the binary already built (PALOMAR_DEB_PROFILE=dev: the debug one)
#   contrib/build-deb.sh --output DIR     where the .deb goes (default target/debian)
set -eu
cd "$(dirname "$0")/.."
profile="${PALOMAR_DEB_PROFILE:-release}"
build=yes
output=target/debian
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=no ;;
        --output) output="$2"; shift ;;
        *) echo "build-deb.sh: unknown option $1 (--no-build, --output DIR)" >&2; exit 2 ;;
    esac
    shift
done
if ! cargo deb --version >/dev/null 2>&1; then
    echo "build-deb.sh: cargo-deb is not installed: cargo install cargo-deb --locked" >&2
    exit 1
fi
if [ "$build" = yes ]; then
    cargo build --locked -p palomar --profile "$profile"
fi
case "$profile" in dev) dir=debug ;; *) dir="$profile" ;; esac
binary="${CARGO_TARGET_DIR:-target}/$dir/palomar"
# What the binary writes about itself goes in too, beside it; the package's Cargo.toml lists these paths.
assets="${CARGO_TARGET_DIR:-target}/$dir/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$binary" manpage --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$binary" completions bash > "$assets/completions/palomar"
"$binary" completions zsh > "$assets/completions/_palomar"
"$binary" completions fish > "$assets/completions/palomar.fish"
"$binary" serve --print-config > "$assets/palomar.toml"
mkdir -p "$output"
# A debug build is packaged only to be looked at (the tests): light compression is enough.
fast=""
[ "$profile" = dev ] && fast=--fast
cargo deb -p palomar --no-build --profile "$profile" --output "$output" $fast
