#!/bin/sh
# mkdeb.sh ARCH VERSION BINDIR OUTDIR: build OUTDIR/gwstated_VERSION_ARCH.deb
# from the linux/ARCH binaries gwstated and gwctl in BINDIR and the files
# of this repository (run from its top directory; make deb does).
# Reproducible: every file's mtime is SOURCE_DATE_EPOCH (the commit time),
# owners are root (dpkg-deb --root-owner-group), man pages and the
# changelog are gzipped without names or times (gzip -n), and dpkg-deb
# sorts the archive and stamps it with SOURCE_DATE_EPOCH.
# Environment: SOURCE_DATE_EPOCH (required), DEB_MAINTAINER, DEB_HOMEPAGE.
set -eu

[ $# -eq 4 ] || { echo "usage: $0 ARCH VERSION BINDIR OUTDIR" >&2; exit 2; }
arch=$1 version=$2 bindir=$3 outdir=$4
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH (git log -1 --format=%ct)}"
maintainer=${DEB_MAINTAINER:-gwstated maintainers <maintainers@gwstated.invalid>}
homepage=${DEB_HOMEPAGE:-https://gwstated.invalid/}
case $arch in amd64|arm64) ;; *) echo "$0: unsupported arch $arch" >&2; exit 2 ;; esac
case $version in [0-9]*) ;; *) echo "$0: version $version must start with a digit" >&2; exit 2 ;; esac

d=deploy/debian
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
umask 022

inst() { # MODE SRC DST
	install -D -m "$1" "$2" "$root/$3"
}
inst 0755 "$bindir/gwstated" usr/sbin/gwstated
inst 0755 "$bindir/gwctl" usr/bin/gwctl
for page in deploy/man/gwstated.8 deploy/man/gwctl.8 deploy/man/gwstated.yaml.5; do
	name=${page##*/}
	sec=${name##*.}
	mkdir -p "$root/usr/share/man/man$sec"
	gzip -9n <"$page" >"$root/usr/share/man/man$sec/$name.gz"
done
inst 0644 deploy/linux/gwstated.service lib/systemd/system/gwstated.service
inst 0644 deploy/linux/gwstated-witness.service lib/systemd/system/gwstated-witness.service
inst 0644 deploy/linux/gwstated.sysusers usr/lib/sysusers.d/gwstated.conf
inst 0644 deploy/linux/gwstated.default etc/default/gwstated
inst 0644 "$d/gwstated.yaml" etc/gwstated/gwstated.yaml
inst 0644 cmd/ctl/completion/gwctl.bash usr/share/bash-completion/completions/gwctl
inst 0644 cmd/ctl/completion/_gwctl usr/share/zsh/vendor-completions/_gwctl
inst 0644 deploy/prometheus/gwstated-alerts.yml usr/share/gwstated/prometheus/gwstated-alerts.yml
inst 0644 deploy/prometheus/prometheus.yml usr/share/gwstated/prometheus/prometheus.yml
inst 0644 deploy/grafana/gwstated.json usr/share/gwstated/grafana/gwstated.json
inst 0644 "$d/copyright" usr/share/doc/gwstated/copyright
inst 0644 deploy/examples/keepalived.conf usr/share/doc/gwstated/examples/keepalived.conf
inst 0644 deploy/examples/conntrackd.conf usr/share/doc/gwstated/examples/conntrackd.conf
inst 0644 deploy/examples/linux-pair.yaml usr/share/doc/gwstated/examples/linux-pair.yaml
inst 0644 "$d/lintian-overrides" usr/share/lintian/overrides/gwstated
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
printf 'gwstated (%s) unstable; urgency=medium\n\n  * Built from the gwstated repository.\n\n -- %s  %s\n' \
	"$version" "$maintainer" "$date" | gzip -9n >"$root/usr/share/doc/gwstated/changelog.gz"

mkdir -p "$root/DEBIAN"
for f in postinst prerm postrm; do
	install -m 0755 "$d/$f" "$root/DEBIAN/$f"
done
printf '/etc/default/gwstated\n/etc/gwstated/gwstated.yaml\n' >"$root/DEBIAN/conffiles"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
	-e "s|@MAINTAINER@|$maintainer|" -e "s|@HOMEPAGE@|$homepage|" "$d/control.in" >"$root/DEBIAN/control"
(cd "$root" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$outdir"
out=$outdir/gwstated_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "deb: $out ($(stat -c %s "$out") bytes)"
