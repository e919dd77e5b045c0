"""The litestream VFS for SQLite (Rust build): serve a database straight from a Litestream replica.

A drop-in for the Go package of the same import name (PyPI ``litestream-vfs``): the same functions,
``loadable_path()`` and ``load(conn)``. Install one of the two, never both: they share this module
name.

Configuration is read from the environment when a database is opened, not when the library is
loaded, so ``os.environ["LITESTREAM_REPLICA_URL"] = ...`` set at any point before the open works.
"""

import os
import sys

__all__ = ["loadable_path", "load"]

# SQLite derives the entry point from the file name (``litestream-vfs`` ->
# ``sqlite3_litestreamvfs_init``), so neither function has to name it.
_LIBRARY = "litestream-vfs.so"


def loadable_path():
    """Return the path of the bundled loadable extension (``.../litestream-vfs.so``)."""
    if not sys.platform.startswith("linux"):
        raise OSError(f"litestream-vfs-rs ships a Linux x86_64 library; this is {sys.platform}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _LIBRARY)
    if not os.path.exists(path):
        raise FileNotFoundError(f"the litestream VFS library is missing: {path}")
    return path


def load(conn):
    """Load the extension into a ``sqlite3`` connection, registering the ``litestream`` VFS.

    Extension loading is enabled only for the call and disabled again afterwards, even if the load
    fails. The VFS stays registered for the whole process.
    """
    path = loadable_path()
    conn.enable_load_extension(True)
    try:
        conn.load_extension(os.path.splitext(path)[0])
    finally:
        conn.enable_load_extension(False)
