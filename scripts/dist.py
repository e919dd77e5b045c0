#!/usr/bin/env python3
"""`make dist`: package the release build of the extension for pip and npm, into dist/.

- dist/litestream_vfs_rs-<version>-py3-none-manylinux_2_<N>_<arch>.whl: the import module
  `litestream_vfs` (the Go package's API) and the library as `litestream_vfs/litestream-vfs.so`.
- dist/litestream-vfs-rs-<version>.tgz: an npm package with `getLoadablePath()`, made by `npm pack`.

The manylinux tag is read off the library itself: N is the newest GLIBC_2.N symbol version it needs.
The build fails if the library needs any shared library outside the C library family, or if the
wheel would be larger than 6 MB. The standard library only: a wheel is a zip file with three
metadata files (PEP 427), which is less to trust than a build backend for one prebuilt binary.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "litestream-vfs-rs"
LIBRARY = "litestream-vfs.so"
MAX_WHEEL_BYTES = 6 * 1000 * 1000
# What a manylinux wheel may link against: the C library family, and the GCC runtime.
ALLOWED_NEEDED = re.compile(
    r"^(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux-x86-64|ld-linux-aarch64)\.so\.\d+$"
)
SUMMARY = "The litestream VFS for SQLite (Rust build): read and write a database straight from a Litestream replica"


def fail(msg):
    sys.exit(f"dist: {msg}")


def readelf(args, so):
    return subprocess.run(["readelf", *args, str(so)], check=True, capture_output=True, text=True).stdout


def library_facts(so):
    """(newest GLIBC minor version needed, list of NEEDED libraries)."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(["-d", "-W"], so))
    glibc = [int(m) for m in re.findall(r"Name: GLIBC_2\.(\d+)", readelf(["-V", "-W"], so))]
    if not glibc:
        fail(f"{so} needs no GLIBC symbol version: not a glibc build?")
    bad = [n for n in needed if not ALLOWED_NEEDED.match(n)]
    if bad:
        fail(f"{so} links {', '.join(bad)}: a manylinux wheel may link only the C library family")
    return max(glibc), needed


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(so, version, tag, out_dir):
    module = ROOT / "packaging/python/litestream_vfs/__init__.py"
    dist_info = f"{DIST_NAME.replace('-', '_')}-{version}.dist-info"
    readme = (ROOT / "packaging/README.md").read_text()
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {DIST_NAME}",
            f"Version: {version}",
            f"Summary: {SUMMARY}",
            "License: Apache-2.0",
            "Requires-Python: >=3.8",
            "Classifier: Operating System :: POSIX :: Linux",
            "Classifier: Topic :: Database",
            "Description-Content-Type: text/markdown",
            "",
            readme,
        ]
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: litestream-vfs scripts/dist.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files = [
        ("litestream_vfs/__init__.py", module.read_bytes()),
        (f"litestream_vfs/{LIBRARY}", so.read_bytes()),
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", wheel.encode()),
        (f"{dist_info}/top_level.txt", b"litestream_vfs\n"),
    ]
    record = "\n".join([record_line(n, d) for n, d in files] + [f"{dist_info}/RECORD,,", ""])
    path = out_dir / f"{DIST_NAME.replace('-', '_')}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            # The library must stay executable once unpacked (dlopen needs read, pip keeps the mode).
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            z.writestr(info, data)
        z.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2026, 1, 1, 0, 0, 0)), record)
    size = path.stat().st_size
    if size > MAX_WHEEL_BYTES:
        fail(f"{path.name} is {size} bytes, over the {MAX_WHEEL_BYTES}-byte budget")
    return path


def build_npm(so, version, glibc_minor, out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "package"
        pkg.mkdir()
        for f in ("index.js", "index.d.ts"):
            shutil.copy(ROOT / "packaging/npm" / f, pkg / f)
        shutil.copy(ROOT / "packaging/README.md", pkg / "README.md")
        shutil.copy(so, pkg / LIBRARY)
        manifest = {
            "name": DIST_NAME,
            "version": version,
            "description": SUMMARY,
            "license": "Apache-2.0",
            "main": "index.js",
            "types": "index.d.ts",
            "os": ["linux"],
            "cpu": ["x64"],
            "libc": ["glibc"],
            "keywords": ["sqlite", "litestream", "vfs", "replication"],
            "files": ["index.js", "index.d.ts", LIBRARY, "README.md"],
            "litestreamVfs": {"glibc": f"2.{glibc_minor}"},
        }
        (pkg / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        out = subprocess.run(
            ["npm", "pack", "--silent", "--pack-destination", str(out_dir)],
            cwd=pkg, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()
        return out_dir / out[-1]


def main():
    so = Path(os.environ.get("LITESTREAM_VFS_SO", ROOT / "target/release/liblitestream_vfs.so"))
    if not so.exists():
        fail(f"{so} is missing: run make build")
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    arch = os.uname().machine
    glibc_minor, needed = library_facts(so)
    tag = f"py3-none-manylinux_2_{glibc_minor}_{arch}"
    out_dir = ROOT / "dist"
    out_dir.mkdir(exist_ok=True)
    for old in list(out_dir.glob("*.whl")) + list(out_dir.glob("*.tgz")):
        old.unlink()
    wheel = build_wheel(so, version, tag, out_dir)
    tarball = build_npm(so, version, glibc_minor, out_dir)
    print(f"dist: {so.name}: {so.stat().st_size} bytes, needs GLIBC_2.{glibc_minor}, links {', '.join(needed)}")
    for p in (wheel, tarball):
        print(f"dist: {p.relative_to(ROOT)} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
