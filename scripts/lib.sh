# shellcheck shell=bash
# Shared helpers for the scripts that install and start the test servers.
# Sourced, never run. Sets ROOT (the repo root) and CACHE (ROOT/.cache, git-ignored).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TOKENWATCH_CACHE:-$ROOT/.cache}"
mkdir -p "$CACHE"

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# port_open HOST PORT: true when a TCP connect succeeds.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pid_alive PIDFILE: true when the pid in PIDFILE is a running process.
pid_alive() {
	[[ -s "$1" ]] || return 1
	local pid
	pid="$(cat "$1")"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pid PIDFILE NAME TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
stop_pid() {
	local pidfile="$1" name="$2" timeout="${3:-30}" pid i
	if ! pid_alive "$pidfile"; then
		rm -f "$pidfile"
		log "$name not running"
		return 0
	fi
	pid="$(cat "$pidfile")"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop within ${timeout}s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
	log "$name stopped"
}

# as_root CMD...: runs CMD directly when root, else through sudo.
as_root() {
	if [[ "$(id -u)" == 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

# apt_install PKG...: installs Debian packages non-interactively, running
# apt-get update first when the package lists are missing or older than a day.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "apt-get install ${missing[*]}"
	# Packages such as clickhouse-server and prometheus start their service from the
	# postinst; tests run their own server on other ports, so keep dpkg from starting
	# one (as Debian's container images do) unless a policy is already in place.
	local policy=/usr/sbin/policy-rc.d own_policy=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\n# temporary, from tokenwatch scripts/lib.sh apt_install\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		own_policy=1
	fi
	local rc=0
	apt_get_install "${missing[@]}" || rc=$?
	if ((own_policy)); then as_root rm -f "$policy"; fi
	return "$rc"
}

# apt_get_install PKG...: apt-get install, with one apt-get update and retry on failure.
apt_get_install() {
	if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
		{ as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
}

# take_lock NAME: holds an exclusive lock on .cache/NAME.lock until the script exits, so
# two callers (two terminals, two test binaries) never start or stop one server at once.
take_lock() {
	local f="$CACHE/$1.lock"
	exec 9>"$f"
	if ! flock -w 600 9; then
		die "could not lock $f within 600s (another start/stop still running?)"
	fi
}
