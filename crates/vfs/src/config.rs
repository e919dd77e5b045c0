//! Per-database configuration: URI parameters first, then `LITESTREAM_*` environment variables,
//! then defaults. URI parameters let one process open several replicas without `setenv`, which
//! is not thread-safe (litestream#1150).

use std::time::Duration;

use replica::{DEFAULT_CACHE_SIZE, DEFAULT_POLL_INTERVAL};

/// Default upload interval in write mode, as in the Go VFS.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of one database connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Litestream replica URL.
    pub replica_url: String,
    /// How often to look for new LTX files.
    pub poll_interval: Duration,
    /// Shared page-cache budget in bytes.
    pub cache_size: u64,
    /// Write mode: commits go to the write buffer and are uploaded.
    pub write_enabled: bool,
    /// How often committed transactions are uploaded (write mode); zero uploads each before
    /// its COMMIT returns.
    pub sync_interval: Duration,
    /// The write buffer file; `None` derives one from the database name and replica URL.
    pub buffer_path: Option<String>,
    /// Compaction, snapshots and retention done by the writer.
    pub compaction: replica::CompactionOptions,
    /// Hydrate to this file (kept after close, resumed on the next open).
    pub hydration_path: Option<String>,
    /// Hydrate; without a path, to a temporary file deleted on close.
    pub hydration_enabled: bool,
    /// Check the file checksum of every LTX file, even those read by range.
    pub verify: bool,
}

/// One setting: its URI parameter and its environment variable.
const SETTINGS: &[(&str, &str)] = &[
    ("replica_url", "LITESTREAM_REPLICA_URL"),
    ("poll_interval", "LITESTREAM_POLL_INTERVAL"),
    ("cache_size", "LITESTREAM_CACHE_SIZE"),
    ("write_enabled", "LITESTREAM_WRITE_ENABLED"),
    ("sync_interval", "LITESTREAM_SYNC_INTERVAL"),
    ("buffer_path", "LITESTREAM_BUFFER_PATH"),
    ("hydration_enabled", "LITESTREAM_HYDRATION_ENABLED"),
    ("hydration_path", "LITESTREAM_HYDRATION_PATH"),
    ("log_level", "LITESTREAM_LOG_LEVEL"),
    ("compaction_levels", "LITESTREAM_COMPACTION_LEVELS"),
    ("snapshot_interval", "LITESTREAM_SNAPSHOT_INTERVAL"),
    ("snapshot_retention", "LITESTREAM_SNAPSHOT_RETENTION"),
    ("l0_retention", "LITESTREAM_L0_RETENTION"),
    ("verify", "LITESTREAM_VERIFY"),
];

impl Config {
    /// Resolves every setting. `uri(name)` gives a URI parameter, `env(name)` an environment
    /// variable. Errors name the setting and the value.
    pub fn resolve(
        uri: &dyn Fn(&str) -> Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let get = |param: &str| -> Option<(String, String)> {
            let (_, var) = SETTINGS.iter().find(|(p, _)| *p == param)?;
            uri(param)
                .map(|v| (format!("URI parameter {param}"), v))
                .or_else(|| env(var).map(|v| (var.to_string(), v)))
                .filter(|(_, v)| !v.trim().is_empty())
        };
        let replica_url = get("replica_url").map(|(_, v)| v).unwrap_or_default();
        let poll_interval = match get("poll_interval") {
            Some((src, v)) => parse_duration(&v).map_err(|e| format!("{src}={v:?}: {e}"))?,
            None => DEFAULT_POLL_INTERVAL,
        };
        let cache_size = match get("cache_size") {
            Some((src, v)) => parse_size(&v).map_err(|e| format!("{src}={v:?}: {e}"))?,
            None => DEFAULT_CACHE_SIZE,
        };
        let flag = |param: &str| -> Result<bool, String> {
            match get(param) {
                Some((src, v)) => parse_bool(&v).map_err(|e| format!("{src}={v:?}: {e}")),
                None => Ok(false),
            }
        };
        let duration = |param: &str, default: Duration| -> Result<Duration, String> {
            match get(param) {
                Some((src, v)) => parse_duration(&v).map_err(|e| format!("{src}={v:?}: {e}")),
                None => Ok(default),
            }
        };
        let sync_interval = duration("sync_interval", DEFAULT_SYNC_INTERVAL)?;
        let defaults = replica::CompactionOptions::default();
        let levels = match get("compaction_levels") {
            Some((src, v)) => v
                .split(',')
                .map(|d| {
                    parse_duration(d).and_then(|d| {
                        if d.is_zero() {
                            Err("a level interval must be above zero".into())
                        } else {
                            Ok(d)
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!(
                        "{src}={v:?}: {e} (expected intervals of levels 1, 2, ... like 30s,5m,1h)"
                    )
                })?,
            None => defaults.levels.clone(),
        };
        let compaction = replica::CompactionOptions {
            levels,
            snapshot_interval: duration("snapshot_interval", defaults.snapshot_interval)?,
            snapshot_retention: duration("snapshot_retention", defaults.snapshot_retention)?,
            l0_retention: duration("l0_retention", defaults.l0_retention)?,
        };
        Ok(Config {
            replica_url,
            poll_interval,
            cache_size,
            write_enabled: flag("write_enabled")?,
            sync_interval,
            buffer_path: get("buffer_path").map(|(_, v)| v),
            compaction,
            hydration_enabled: flag("hydration_enabled")?,
            hydration_path: get("hydration_path").map(|(_, v)| v),
            verify: flag("verify")?,
        })
    }
}

impl Config {
    /// How database `name` is written in write mode, at open or when a connection turns write
    /// mode on.
    pub fn write_options(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> replica::WriteOptions {
        replica::WriteOptions {
            buffer_path: self.buffer_file(name, env),
            sync_interval: self.sync_interval,
            compaction: self.compaction.clone(),
        }
    }

    /// The write buffer of database `name`: `buffer_path` if set, else a stable path (never a
    /// random one, so that the next open finds what a crash left behind) in the user's state
    /// directory, named after the database and a hash of the replica URL, so that one name used
    /// with two replicas gets two buffers.
    pub fn buffer_file(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::path::PathBuf {
        if let Some(p) = &self.buffer_path {
            return std::path::PathBuf::from(p);
        }
        let dir = env("XDG_STATE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("litestream-vfs");
        let flat: String = name
            .rsplit('/')
            .next()
            .unwrap_or(name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = crate::local_file::fnv1a(self.replica_url.trim());
        dir.join(format!(
            "{}-{hash:016x}.buffer",
            flat.trim_start_matches('.')
        ))
    }
}

/// Parses a Go-style duration (`1s`, `500ms`, `1m30s`, `0`); a bare number means seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return secs_to_duration(secs);
    }
    let mut total = 0f64;
    let mut rest = v;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len]
            .parse()
            .map_err(|_| "expected a duration like 1s, 500ms or 1m30s".to_string())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit {u:?}; use ns, us, ms, s, m or h")),
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    secs_to_duration(total)
}

fn secs_to_duration(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=86400.0 * 365.0).contains(&secs) {
        return Err("duration out of range".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a byte size: `67108864`, `64MB`, `64MiB`, `512k`.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..split]
        .parse()
        .map_err(|_| "expected a size in bytes, e.g. 67108864 or 64MB".to_string())?;
    let mult: u64 = match v[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?}; use KB, MB or GB")),
    };
    let bytes = n.checked_mul(mult).ok_or("size too large")?;
    if bytes < 64 * 1024 {
        return Err("the cache needs at least 64KB".into());
    }
    Ok(bytes)
}

/// Parses a boolean the way the Go VFS does, plus the usual SQLite spellings.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parameters_override_environment() {
        let uri = |k: &str| (k == "replica_url").then(|| "file:///uri".to_string());
        let env = |k: &str| match k {
            "LITESTREAM_REPLICA_URL" => Some("file:///env".to_string()),
            "LITESTREAM_POLL_INTERVAL" => Some("250ms".to_string()),
            _ => None,
        };
        let c = Config::resolve(&uri, &env).unwrap();
        assert_eq!(c.replica_url, "file:///uri");
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.cache_size, DEFAULT_CACHE_SIZE);
        assert_eq!(c.sync_interval, DEFAULT_SYNC_INTERVAL);
    }

    #[test]
    fn buffer_paths_are_stable_and_per_replica() {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        let at = |url: &str| {
            let uri = |k: &str| (k == "replica_url").then(|| url.to_string());
            Config::resolve(&uri, &|_| None).unwrap()
        };
        let a = at("s3://b/one").buffer_file("dir/app.db", &env);
        assert_eq!(a, at("s3://b/one").buffer_file("dir/app.db", &env));
        assert!(
            a.starts_with("/home/u/.local/state/litestream-vfs"),
            "{}",
            a.display()
        );
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("app.db-"));
        assert_ne!(a, at("s3://b/two").buffer_file("dir/app.db", &env));
        let explicit = |k: &str| (k == "buffer_path").then(|| "/tmp/x.buf".to_string());
        let c = Config::resolve(&explicit, &|_| None).unwrap();
        assert_eq!(
            c.buffer_file("app.db", &env),
            std::path::PathBuf::from("/tmp/x.buf")
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let none = |_: &str| None;
        let uri = |k: &str| (k == "cache_size").then(|| "lots".to_string());
        let err = Config::resolve(&uri, &none).unwrap_err();
        assert!(err.contains("cache_size") && err.contains("lots"), "{err}");
        let env = |k: &str| (k == "LITESTREAM_POLL_INTERVAL").then(|| "5 parsecs".to_string());
        let err = Config::resolve(&none, &env).unwrap_err();
        assert!(err.contains("LITESTREAM_POLL_INTERVAL"), "{err}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("10").is_err());
    }
}
