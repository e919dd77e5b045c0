//! The engine's one error type. Each variant tells the caller what it can do about it.

use std::time::Duration;

/// Errors of the replica engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The replica URL or an option is wrong. Fix the configuration; retrying will not help.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The replica holds no LTX files, so there is no database to read yet.
    #[error("replica {url} is empty: no LTX files were found under it. Start `litestream replicate` for this database first, or check the path in the URL")]
    Empty {
        /// The replica URL, without credentials.
        url: String,
    },

    /// Object storage refused the credentials or the permission. Fix credentials or bucket policy.
    #[error("access denied by object storage for {what}: {detail}. Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY) and the bucket policy")]
    Access {
        /// What was being accessed (bucket, key).
        what: String,
        /// What the store said.
        detail: String,
    },

    /// The bucket or container does not exist. Create it or fix the URL.
    #[error("bucket or container not found for {what}: {detail}")]
    NoBucket {
        /// What was being accessed.
        what: String,
        /// What the store said.
        detail: String,
    },

    /// The store could not be reached or failed transiently. Retrying later may succeed.
    #[error(
        "object storage unavailable during {op} {key} (after retries for {elapsed:?}): {detail}"
    )]
    Unavailable {
        /// The operation: list, get, put, …
        op: &'static str,
        /// The object key or prefix.
        key: String,
        /// How long was spent retrying.
        elapsed: Duration,
        /// What went wrong.
        detail: String,
    },

    /// An object named by the index or the plan no longer exists (deleted by retention or by hand).
    #[error("object {key} was not found in the replica")]
    NotFound {
        /// The missing key.
        key: String,
    },

    /// An LTX file failed validation. The replica is damaged at this key; nothing from it is served.
    #[error("corrupt LTX file {key}: {source}")]
    Corrupt {
        /// The key of the bad object.
        key: String,
        /// What check failed.
        #[source]
        source: ltx::Error,
    },

    /// The replica's files do not form a consistent history (gap in TXIDs, header disagrees with
    /// its name, mixed page sizes). Nothing past the inconsistency is served.
    #[error("inconsistent replica: {0}")]
    Inconsistent(String),

    /// Another writer changed the replica, or this writer lost the race for a TXID (write
    /// mode is fenced). Nothing was overwritten; committed local transactions are kept in the
    /// buffer file the message names. Stop the other writer, then reopen.
    #[error("write conflict: {0}")]
    Conflict(String),

    /// The local write buffer could not be read or written. Fix the disk or the path
    /// (`LITESTREAM_BUFFER_PATH`); what it holds is not discarded.
    #[error("write buffer {path}: {detail}")]
    Buffer {
        /// The buffer file.
        path: String,
        /// What failed.
        detail: String,
    },

    /// A background task (poller, uploader, compactor, hydrator) failed repeatedly and was
    /// stopped, so the state it keeps up to date cannot be trusted to move. Nothing is lost:
    /// reopen the database (every connection of the process) to start it again.
    #[error("the litestream {task} stopped after repeated failures ({cause}); close and reopen the database to restart it")]
    TaskFailed {
        /// Which task.
        task: &'static str,
        /// Its last failure.
        cause: String,
    },

    /// A bug in the engine (a panic in an I/O task). Nothing was changed by the failed call;
    /// report it with the log.
    #[error("internal error in the litestream engine: {0}")]
    Internal(String),

    /// A time-travel target (time or TXID) cannot be reached with the files that exist.
    #[error("{0}")]
    TargetUnavailable(String),

    /// A time-travel value could not be parsed.
    #[error("invalid value {value:?}: {reason}")]
    InvalidTarget {
        /// The text given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

impl Error {
    /// True when retrying the same call later may succeed (network trouble, throttling).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Classifies an `object_store` error for operation `op` on `key`.
    pub(crate) fn from_store(
        op: &'static str,
        key: &str,
        elapsed: Duration,
        err: object_store::Error,
    ) -> Error {
        use object_store::Error as E;
        let detail = with_causes(&err);
        match err {
            E::NotFound { .. } => {
                if detail.contains("NoSuchBucket") || detail.contains("ContainerNotFound") {
                    Error::NoBucket {
                        what: key.to_string(),
                        detail,
                    }
                } else {
                    Error::NotFound {
                        key: key.to_string(),
                    }
                }
            }
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => Error::Access {
                what: key.to_string(),
                detail,
            },
            // Retrying cannot fix a certificate the client refuses: it is configuration.
            _ if detail.contains("invalid peer certificate") => Error::Config(format!(
                "the TLS certificate of the endpoint is not trusted ({detail}); set AWS_CA_BUNDLE to a PEM file with its CA, or skip-verify=true in the replica URL for testing"
            )),
            _ if detail.contains("NoSuchBucket") || detail.contains("ContainerNotFound") => {
                Error::NoBucket {
                    what: key.to_string(),
                    detail,
                }
            }
            _ if detail.contains("AccessDenied")
                || detail.contains("InvalidAccessKeyId")
                || detail.contains("SignatureDoesNotMatch")
                || detail.contains("403 Forbidden") =>
            {
                Error::Access {
                    what: key.to_string(),
                    detail,
                }
            }
            _ => Error::Unavailable {
                op,
                key: key.to_string(),
                elapsed,
                detail,
            },
        }
    }
}

/// The error's text followed by each cause its text does not already include. object_store's
/// own text can stop at "error sending request", which hides the reason a user can act on
/// (for example "invalid peer certificate: UnknownIssuer").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
