#!/usr/bin/env bash
# chDB (current ClickHouse as an in-process library, PyPI package chdb-core) in a venv,
# for the SQL checks of migrations, views and dashboard queries.
#
#   scripts/chdb.sh install   create .cache/venv and pip install chdb-core (once; cached)
#   scripts/chdb.sh python    print the venv's python (TOKENWATCH_TEST_CHDB_PYTHON)
#   scripts/chdb.sh check     run one query through scripts/chdb_server.py
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHDB_VERSION="${CHDB_VERSION:-26.9.0}"
VENV="$CACHE/venv"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"

install() {
	local stamp="$VENV/.chdb-core-$CHDB_VERSION"
	if [[ -f "$stamp" && -x "$PY" ]]; then
		return 0
	fi
	local t0=$SECONDS
	if [[ ! -x "$PY" ]]; then
		log "creating venv $VENV with $("$PYTHON" --version 2>&1)"
		if ! "$PYTHON" -m venv "$VENV"; then
			# Debian's own python3 needs python3-venv for ensurepip
			rm -rf "$VENV"
			apt_install python3-venv
			"$PYTHON" -m venv "$VENV"
		fi
	fi
	log "pip install chdb-core==$CHDB_VERSION"
	"$PY" -m pip install -q --disable-pip-version-check --no-input "chdb-core==$CHDB_VERSION" >&2
	"$PY" -c 'import chdb, chdb.session' || die "chdb-core installed but 'import chdb' fails"
	rm -f "$VENV"/.chdb-core-*
	touch "$stamp"
	log "chdb-core $CHDB_VERSION installed in $((SECONDS - t0))s"
}

check() {
	install
	printf '%s\n' '{"op":"query","sql":"SELECT version() AS v, 1 + 1 AS two"}' |
		"$PY" "$ROOT/scripts/chdb_server.py"
}

case "${1:-}" in
install) install ;;
python) echo "$PY" ;;
check) check ;;
*)
	echo "usage: $0 {install|python|check}" >&2
	exit 2
	;;
esac
