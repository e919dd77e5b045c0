//! Turns a Litestream replica URL into an `object_store` client and a key prefix.
//!
//! The URL forms are Litestream's own, so the same `LITESTREAM_REPLICA_URL` works for the Go VFS
//! and for us: `file:///dir`, `s3://bucket/path?endpoint=&region=&force-path-style=`,
//! `gs://bucket/path?endpoint=`, `abs://[account@]container/path?endpoint=`. Credentials come
//! from the environment, never from the URL, and never appear in messages.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, Certificate, ClientOptions, ObjectStore, RetryConfig};

use crate::error::{Error, Result};

mod azure;
mod gcs;

/// A connected replica location.
#[derive(Clone, Debug)]
pub struct Location {
    /// The store client.
    pub store: Arc<dyn ObjectStore>,
    /// The same store with timeouts for bulk transfers: the parts and server-side copy of a
    /// large upload and whole-file downloads, which may rightly send nothing back, or keep
    /// sending, for longer than a page read may take.
    pub bulk: Arc<dyn ObjectStore>,
    /// Prefix of the database's files inside the store.
    pub root: Path,
    /// The URL as shown in messages: no credentials.
    pub display: String,
}

/// Environment lookup, injectable so tests need not touch the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Connects to the replica named by `url`. No request is sent here.
pub fn connect(url: &str, env: Env<'_>) -> Result<Location> {
    connect_with(url, env, false)
}

/// [`connect`], creating the directory of a local replica when `create` (a writer starting a
/// new replica); otherwise a missing directory is an empty replica.
pub fn connect_with(url: &str, env: Env<'_>, create: bool) -> Result<Location> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::Config(
            "no replica URL: set LITESTREAM_REPLICA_URL or the `replica_url` URI parameter, e.g. s3://bucket/path or file:///var/lib/replica".into(),
        ));
    }
    if url.starts_with('/') {
        return local(url, url, create);
    }
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::Config(format!(
            "cannot parse replica URL {:?}: {e}; expected a form like s3://bucket/path or file:///path",
            redact(url)
        ))
    })?;
    let display = redact(url);
    let path = parsed.path().trim_matches('/').to_string();
    let query = |keys: &[&str]| {
        parsed
            .query_pairs()
            .find(|(k, _)| keys.contains(&k.as_ref()))
            .map(|(_, v)| v.into_owned())
    };
    match parsed.scheme() {
        "file" => {
            if parsed
                .host_str()
                .is_some_and(|h| !h.is_empty() && h != "localhost")
            {
                return Err(Error::Config(format!(
                    "file URL {display} names host {:?}; use file:///absolute/path",
                    parsed.host_str().unwrap_or_default()
                )));
            }
            local(parsed.path(), &display, create)
        }
        "s3" => {
            let bucket = bucket(&parsed, &display)?;
            let endpoint = query(&["endpoint"]).or_else(|| env("LITESTREAM_S3_ENDPOINT"));
            let region = query(&["region"])
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into());
            let force_path_style = query(&["force-path-style", "forcePathStyle"])
                .map(|v| parse_bool(&v, "force-path-style"))
                .transpose()?;
            let skip_verify = query(&["skip-verify", "skipVerify"])
                .map(|v| parse_bool(&v, "skip-verify"))
                .transpose()?
                .unwrap_or(false);
            let key_id = env("LITESTREAM_ACCESS_KEY_ID").or_else(|| env("AWS_ACCESS_KEY_ID"));
            let secret =
                env("LITESTREAM_SECRET_ACCESS_KEY").or_else(|| env("AWS_SECRET_ACCESS_KEY"));
            let b = match (key_id, secret) {
                (Some(k), Some(s)) => {
                    let b = AmazonS3Builder::new()
                        .with_access_key_id(k)
                        .with_secret_access_key(s);
                    match env("AWS_SESSION_TOKEN") {
                        Some(t) => b.with_token(t),
                        None => b,
                    }
                }
                // Real AWS: let the standard provider chain (web identity, container, instance
                // metadata) find credentials, as the AWS SDK in the Go tools does.
                (None, None) if endpoint.is_none() => AmazonS3Builder::from_env(),
                (k, _) => {
                    // With an explicit endpoint there is no metadata service to ask, and probing
                    // one would hang or reach outside the configured network.
                    let missing = if k.is_none() {
                        "AWS_ACCESS_KEY_ID"
                    } else {
                        "AWS_SECRET_ACCESS_KEY"
                    };
                    return Err(Error::Config(format!(
                        "missing S3 credentials for {display}: set {missing} (or LITESTREAM_{})",
                        missing.trim_start_matches("AWS_")
                    )));
                }
            };
            // With an endpoint, credentials are explicit (see above): every request goes there.
            let plain_http = endpoint.as_deref().is_some_and(is_plain_http);
            let mut b = b
                .with_bucket_name(&bucket)
                .with_region(region)
                .with_retry(retry_config());
            if let Some(ep) = endpoint {
                // (http itself is allowed in the client options below, which replace the
                // builder's: `with_allow_http` here would be lost.)
                b = b
                    .with_endpoint(&ep)
                    .with_virtual_hosted_style_request(force_path_style == Some(false));
            }
            // Large uploads are fenced by a create-only copy (store/transfer.rs), which S3
            // offers only as a multipart copy completed with `If-None-Match: *`. A mode set in
            // the environment wins: a compatible store may take a header instead.
            let key = AmazonS3ConfigKey::CopyIfNotExists;
            b = match env("AWS_COPY_IF_NOT_EXISTS") {
                Some(mode) => b.with_config(key, mode),
                None if b.get_config_value(&key).is_some() => b,
                None => b.with_copy_if_not_exists(S3CopyIfNotExists::Multipart),
            };
            let opts = |t| {
                client_options(env, skip_verify, plain_http, t)
                    .map(|o| o.with_allow_http(plain_http))
            };
            let bulk = b.clone().with_client_options(opts(Timeouts::Bulk)?).build();
            let store = b.with_client_options(opts(Timeouts::Interactive)?).build();
            located(store, bulk, path, display)
        }
        "gs" => {
            let g = gcs::gcs(
                bucket(&parsed, &display)?,
                query(&["endpoint"]),
                env,
                &display,
            )?;
            let opts =
                |t| cloud_options(env, "GOOGLE_ALLOW_HTTP", g.plain_http, g.endpoint_only, t);
            let b = g.builder.with_retry(retry_config());
            let bulk = b.clone().with_client_options(opts(Timeouts::Bulk)?).build();
            let store = b.with_client_options(opts(Timeouts::Interactive)?).build();
            located(store, bulk, path, display)
        }
        "abs" => {
            let account = Some(parsed.username())
                .filter(|a| !a.is_empty())
                .map(str::to_string);
            let a = azure::azure(
                bucket(&parsed, &display)?,
                account,
                query(&["endpoint"]),
                env,
                &display,
            )?;
            let opts = |t| cloud_options(env, "AZURE_ALLOW_HTTP", a.plain_http, a.endpoint_only, t);
            let b = a.builder.with_retry(retry_config());
            let bulk = b.clone().with_client_options(opts(Timeouts::Bulk)?).build();
            let store = b.with_client_options(opts(Timeouts::Interactive)?).build();
            located(store, bulk, path, display)
        }
        other => Err(Error::Config(format!(
            "unsupported replica URL scheme {other:?} in {display}: supported are file, s3, gs, abs"
        ))),
    }
}

fn located<S: ObjectStore>(
    built: object_store::Result<S>,
    bulk: object_store::Result<S>,
    path: String,
    display: String,
) -> Result<Location> {
    let store = built.map_err(|e| Error::Config(format!("{display}: {e}")))?;
    let bulk = bulk.map_err(|e| Error::Config(format!("{display}: {e}")))?;
    Ok(Location {
        store: Arc::new(store),
        bulk: Arc::new(bulk),
        root: Path::from(path),
        display,
    })
}

fn local(dir: &str, display: &str, create: bool) -> Result<Location> {
    let dir = std::path::Path::new(dir);
    if !dir.is_absolute() {
        return Err(Error::Config(format!(
            "file replica path must be absolute: {display}"
        )));
    }
    if create {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Config(format!(
                "cannot create the replica directory {display}: {e}"
            ))
        })?;
    }
    if !dir.is_dir() {
        return Err(Error::Empty {
            url: display.to_string(),
        });
    }
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::Config(format!("{display}: {e}")))?,
    );
    Ok(Location {
        bulk: store.clone(),
        store,
        root: Path::default(),
        display: display.to_string(),
    })
}

fn bucket(url: &url::Url, display: &str) -> Result<String> {
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(h.to_string()),
        _ => Err(Error::Config(format!(
            "replica URL {display} has no bucket name"
        ))),
    }
}

/// Client options of GCS and Azure: plain http for an `http://` endpoint, or everywhere when
/// the store's own variable (`allow_var`) says so. Setting our options replaces the store's,
/// so that variable would otherwise be lost. `endpoint_only`: no request goes elsewhere (no
/// token service), so a plain-http endpoint needs no TLS at all.
fn cloud_options(
    env: Env<'_>,
    allow_var: &str,
    plain_http: bool,
    endpoint_only: bool,
    timeouts: Timeouts,
) -> Result<ClientOptions> {
    let allow = match env(allow_var) {
        Some(v) => parse_bool(&v, allow_var)?,
        None => false,
    };
    Ok(
        client_options(env, false, plain_http && endpoint_only, timeouts)?
            .with_allow_http(allow || plain_http),
    )
}

fn is_plain_http(endpoint: &str) -> bool {
    endpoint.starts_with("http://")
}

fn parse_bool(v: &str, what: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Config(format!(
            "{what} must be true or false, not {v:?}"
        ))),
    }
}

/// Which requests a client serves: page reads, listings and small writes, or bulk transfers.
#[derive(Clone, Copy, Debug)]
enum Timeouts {
    Interactive,
    Bulk,
}

/// Timeouts short enough that a dead endpoint fails an open or a page read within seconds
/// (about 10 s: one read timeout outlasts the retry budget of `retry_config`): an endpoint that accepts the
/// connection and never answers is caught by the read timeout, which restarts on every chunk
/// received, so a slow but live transfer of a large range is not cut off; the total timeout
/// only bounds a trickle.
///
/// `plain_http_only`: every request goes to a plain-http endpoint. The system's certificate
/// store is then not loaded: reading and parsing it costs 6-14 ms of every open, for TLS that
/// is never spoken.
fn client_options(
    env: Env<'_>,
    skip_verify: bool,
    plain_http_only: bool,
    timeouts: Timeouts,
) -> Result<ClientOptions> {
    let (read, total) = match timeouts {
        Timeouts::Interactive => (10, 60),
        // A server-side copy of gigabytes answers only when done (S3's UploadPartCopy, GCS's
        // rewrite), and a multi-GB download takes minutes.
        Timeouts::Bulk => (15 * 60, 4 * 3600),
    };
    let mut o = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_read_timeout(Duration::from_secs(read))
        .with_timeout(Duration::from_secs(total))
        .with_pool_idle_timeout(Duration::from_secs(60))
        .with_no_system_certificates(plain_http_only);
    if skip_verify {
        o = o.with_allow_invalid_certificates(true);
    }
    if let Some(bundle) = env("AWS_CA_BUNDLE") {
        let pem = std::fs::read(&bundle)
            .map_err(|e| Error::Config(format!("cannot read AWS_CA_BUNDLE {bundle}: {e}")))?;
        let certs = Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("AWS_CA_BUNDLE {bundle}: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "AWS_CA_BUNDLE {bundle} holds no certificate"
            )));
        }
        for c in certs {
            o = o.with_root_certificate(c);
        }
    }
    Ok(o)
}

/// object_store's default budget is 10 retries within 180 s: far too long to block a page read.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(8),
    }
}

/// The URL with any user-info password removed, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn s3_url_with_endpoint_and_credentials() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRETXYZ"),
        ]);
        let loc = connect(
            "s3://bucket/db/app?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true",
            &env,
        )
        .unwrap();
        assert_eq!(loc.root.as_ref(), "db/app");
        assert!(!format!("{:?}", loc.display).contains("SECRETXYZ"));
    }

    #[test]
    fn s3_copy_if_not_exists_is_multipart_unless_the_environment_says_otherwise() {
        let url = "s3://bucket/db?endpoint=http://127.0.0.1:9000";
        let keys = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRETXYZ"),
        ];
        let mode = |extra: Option<&'static str>| {
            let env = move |k: &str| match k {
                "AWS_COPY_IF_NOT_EXISTS" => extra.map(str::to_string),
                _ => keys
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string()),
            };
            connect(url, &env).map(|loc| format!("{:?}", loc.store))
        };
        assert!(mode(None)
            .unwrap()
            .contains("copy_if_not_exists: Some(Multipart)"));
        let header = mode(Some("header: cf-copy-destination-if-none-match: *")).unwrap();
        assert!(
            header.contains("copy_if_not_exists: Some(Header("),
            "{header}"
        );
        let err = mode(Some("sometimes")).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[test]
    fn explicit_endpoint_without_credentials_is_refused() {
        let env = env_of(&[]);
        let err = connect("s3://bucket/db?endpoint=http://127.0.0.1:9", &env).unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
        let env = env_of(&[("LITESTREAM_ACCESS_KEY_ID", "k")]);
        let err = connect("s3://bucket/db?endpoint=http://127.0.0.1:9", &env).unwrap_err();
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let env = env_of(&[]);
        for (url, needle) in [
            ("", "no replica URL"),
            ("sftp://host/path", "unsupported replica URL scheme"),
            ("not a url", "cannot parse"),
            ("s3:///path", "no bucket"),
            ("file://otherhost/x", "names host"),
            (
                "s3://b/p?endpoint=http://x&force-path-style=maybe",
                "true or false",
            ),
        ] {
            let err = connect(url, &env).unwrap_err();
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn gcs_endpoints_and_credentials() {
        // An emulator: anonymous over plain http, from the URL or from STORAGE_EMULATOR_HOST.
        let none = env_of(&[]);
        let loc = connect("gs://bkt/db/app?endpoint=http://127.0.0.1:4443", &none).unwrap();
        assert_eq!(loc.root.as_ref(), "db/app");
        let emu = env_of(&[("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")]);
        connect("gs://bkt/db", &emu).unwrap();
        // The public service without any credential source fails at once, naming them.
        let err = connect("gs://bkt/db", &env_of(&[("HOME", "/nonexistent")])).unwrap_err();
        assert!(
            err.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{err}"
        );
        let env = env_of(&[("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json")]);
        let err = connect("gs://bkt/db", &env).unwrap_err();
        assert!(err.to_string().contains("not a file"), "{err}");
        let env = env_of(&[("GOOGLE_ALLOW_HTTP", "maybe")]);
        let err = connect("gs://bkt/db?endpoint=http://127.0.0.1:1", &env).unwrap_err();
        assert!(err.to_string().contains("GOOGLE_ALLOW_HTTP"), "{err}");
    }

    #[test]
    fn azure_accounts_endpoints_and_credentials() {
        let key = env_of(&[("LITESTREAM_AZURE_ACCOUNT_KEY", "a2V5")]);
        let loc = connect(
            "abs://devstoreaccount1@ctr/db/app?endpoint=http://127.0.0.1:10000/devstoreaccount1",
            &key,
        )
        .unwrap();
        assert_eq!(loc.root.as_ref(), "db/app");
        let err = connect("abs://ctr/db", &key).unwrap_err();
        assert!(
            err.to_string().contains("no Azure storage account"),
            "{err}"
        );
        let err = connect("abs://acct@ctr/db", &env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("LITESTREAM_AZURE_ACCOUNT_KEY"),
            "{err}"
        );
        for env in [
            env_of(&[("AZURE_STORAGE_USE_EMULATOR", "true")]),
            env_of(&[("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")]),
            env_of(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/a",
            )]),
            env_of(&[
                ("AZURE_STORAGE_ACCOUNT_NAME", "a"),
                ("LITESTREAM_AZURE_SAS_TOKEN", "?sv=2024-01-01&sig=abc"),
            ]),
            env_of(&[
                ("AZURE_STORAGE_ACCOUNT_NAME", "a"),
                ("AZURE_CREDENTIAL_TYPE", "managed_identity"),
            ]),
        ] {
            connect("abs://ctr/db", &env).unwrap();
        }
    }

    #[test]
    fn only_plain_http_endpoints_skip_the_system_certificate_store() {
        let none = env_of(&[]);
        let skips = |o: ClientOptions| {
            o.get_config_value(&object_store::ClientConfigKey::NoSystemCertificates)
                .as_deref()
                == Some("true")
        };
        assert!(skips(
            client_options(&none, false, true, Timeouts::Interactive).unwrap()
        ));
        assert!(!skips(
            client_options(&none, false, false, Timeouts::Interactive).unwrap()
        ));
        // GCS and Azure: plain http alone is not enough while a token service may be asked.
        assert!(skips(
            cloud_options(
                &none,
                "GOOGLE_ALLOW_HTTP",
                true,
                true,
                Timeouts::Interactive
            )
            .unwrap()
        ));
        assert!(!skips(
            cloud_options(
                &none,
                "GOOGLE_ALLOW_HTTP",
                true,
                false,
                Timeouts::Interactive
            )
            .unwrap()
        ));
        assert!(!skips(
            cloud_options(
                &none,
                "GOOGLE_ALLOW_HTTP",
                false,
                true,
                Timeouts::Interactive
            )
            .unwrap()
        ));
        let anon = gcs::gcs(
            "b".into(),
            Some("http://127.0.0.1:1".into()),
            &none,
            "gs://b",
        )
        .unwrap();
        assert!(anon.plain_http && anon.endpoint_only);
        let sa = env_of(&[("GOOGLE_SERVICE_ACCOUNT_KEY", "{}")]);
        let signed =
            gcs::gcs("b".into(), Some("http://127.0.0.1:1".into()), &sa, "gs://b").unwrap();
        assert!(signed.plain_http && !signed.endpoint_only);
        let key = env_of(&[("LITESTREAM_AZURE_ACCOUNT_KEY", "a2V5")]);
        let ep = Some("http://127.0.0.1:1/a".to_string());
        let a = azure::azure("c".into(), Some("a".into()), ep.clone(), &key, "abs://a@c").unwrap();
        assert!(a.plain_http && a.endpoint_only);
        let ad = env_of(&[("AZURE_CREDENTIAL_TYPE", "managed_identity")]);
        let a = azure::azure("c".into(), Some("a".into()), ep, &ad, "abs://a@c").unwrap();
        assert!(a.plain_http && !a.endpoint_only);
    }

    #[test]
    fn missing_local_dir_is_empty_replica() {
        let err = connect("file:///nonexistent/litestream/replica", &env_of(&[])).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err}");
    }

    #[test]
    fn redaction_hides_passwords() {
        assert!(!redact("s3://user:hunter2@bucket/x").contains("hunter2"));
    }
}
