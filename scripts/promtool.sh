#!/usr/bin/env bash
# promtool (Debian package prometheus) for `promtool check rules` / `promtool test rules`
# on dashboards/ Prometheus rules.
#
#   scripts/promtool.sh install   apt-get install prometheus (once); the service is not started
#   scripts/promtool.sh path      print the promtool path (export it as PROMTOOL)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_promtool() {
	if [[ -n "${PROMTOOL:-}" && -x "$PROMTOOL" ]]; then
		echo "$PROMTOOL"
		return 0
	fi
	command -v promtool 2>/dev/null || { [[ -x /usr/bin/promtool ]] && echo /usr/bin/promtool; }
}

case "${1:-}" in
install)
	if ! find_promtool >/dev/null; then
		apt_install prometheus
	fi
	p="$(find_promtool)" || die "promtool not found after installing prometheus"
	log "$("$p" --version 2>&1 | head -1) at $p"
	;;
path)
	find_promtool || die "promtool not installed; run: scripts/promtool.sh install"
	;;
*)
	echo "usage: $0 {install|path}" >&2
	exit 2
	;;
esac
