"use strict";

// The litestream VFS for SQLite (Rust build). The same API as the Go project's npm package
// `litestream-vfs`: getLoadablePath() returns the path of the loadable extension, for
// `db.loadExtension(path)` in better-sqlite3 or any other SQLite binding.

const fs = require("fs");
const os = require("os");
const path = require("path");

// SQLite derives the entry point from this name (sqlite3_litestreamvfs_init).
const LIBRARY = "litestream-vfs.so";

function getLoadablePath() {
  const key = `${os.platform()}-${os.arch()}`;
  if (key !== "linux-x64") {
    throw new Error(`litestream-vfs-rs ships a linux-x64 library; this is ${key}`);
  }
  const file = path.join(__dirname, LIBRARY);
  if (!fs.existsSync(file)) {
    throw new Error(`the litestream VFS library is missing: ${file}`);
  }
  return file;
}

module.exports = { getLoadablePath };
