#!/usr/bin/env bash
# Installs what the namespace lab, the tests and the man-page checks need on
# a Debian or Ubuntu machine, when it is missing: iproute2 (ip), nftables
# (nft), iputils-ping (the ifstated baseline of make lab-bench), mandoc,
# python3 (the pf.conf grammar checker), conntrack, keepalived and
# conntrackd (the Linux data plane and its state sync), and for the deploy tests promtool (prometheus),
# systemd-analyze, dpkg-deb, lintian and zsh. Used by make demo, make
# lab-bench and .ci/run. Needs root for apt-get; prints what to install
# otherwise.
set -euo pipefail

missing=()
command -v ip      >/dev/null 2>&1 || missing+=(iproute2)
command -v nft     >/dev/null 2>&1 || missing+=(nftables)
command -v ping    >/dev/null 2>&1 || missing+=(iputils-ping)
command -v mandoc  >/dev/null 2>&1 || missing+=(mandoc)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# dataplane nft: conntrack(8) deletes a dead link's entries (nftapply tests);
# keepalived -t checks deploy/examples/keepalived.conf.
command -v conntrack  >/dev/null 2>&1 || missing+=(conntrack)
command -v keepalived >/dev/null 2>&1 || missing+=(keepalived)
# state sync of the pair: TestLinuxStateSync, deploy/examples/conntrackd.conf
command -v conntrackd >/dev/null 2>&1 || missing+=(conntrackd)
# deploy tests (issue 16): alert unit tests, unit checks, .deb build and lint,
# the completion scripts
command -v promtool       >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v dpkg-deb       >/dev/null 2>&1 || missing+=(dpkg)
command -v lintian        >/dev/null 2>&1 || missing+=(lintian)
command -v zsh            >/dev/null 2>&1 || missing+=(zsh)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "the lab needs: ${missing[*]} (install them as root, then run again)" >&2
	exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
