//! The one place where engine errors become SQLite result codes.

use sqlite_plugin::vars;
use sqlite_plugin::vfs::SqliteErr;

/// The SQLite code for an engine error met while reading pages.
pub fn read_code(e: &replica::Error) -> SqliteErr {
    use replica::Error as E;
    match e {
        // Retrying the statement later may succeed: say so the way SQLite users expect.
        E::Unavailable { .. } | E::TargetUnavailable(_) => vars::SQLITE_BUSY,
        E::Access { .. } | E::NoBucket { .. } => vars::SQLITE_IOERR_ACCESS,
        E::NotFound { .. } | E::Corrupt { .. } | E::Inconsistent(_) => vars::SQLITE_IOERR_READ,
        E::Config(_) | E::Empty { .. } | E::InvalidTarget { .. } => vars::SQLITE_CANTOPEN,
        E::Conflict(_) => vars::SQLITE_BUSY,
        E::Buffer { .. } => vars::SQLITE_IOERR_READ,
        // The state would not move any more: refuse rather than serve it as the latest.
        E::TaskFailed { .. } => vars::SQLITE_IOERR_RDLOCK,
        E::Internal(_) => vars::SQLITE_INTERNAL,
    }
}

/// The SQLite code for an engine error met while committing or starting a write.
pub fn write_code(e: &replica::Error) -> SqliteErr {
    use replica::Error as E;
    match e {
        // Another writer won the replica: this connection can only read from now on. Not
        // BUSY, which busy handlers would retry for their whole timeout on every statement.
        E::Conflict(_) => vars::SQLITE_READONLY,
        E::Buffer { .. } => vars::SQLITE_IOERR_FSYNC,
        E::Config(_) => vars::SQLITE_READONLY,
        _ => vars::SQLITE_IOERR_WRITE,
    }
}

/// The SQLite code for an engine error met while setting a PRAGMA.
pub fn pragma_code(e: &replica::Error) -> SqliteErr {
    match e {
        replica::Error::Unavailable { .. } => vars::SQLITE_BUSY,
        _ => vars::SQLITE_ERROR,
    }
}
