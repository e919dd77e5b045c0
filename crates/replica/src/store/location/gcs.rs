//! `gs://bucket/path`: where a Google Cloud Storage replica is and how to authenticate to it.
//!
//! Endpoint: `?endpoint=URL`, else `STORAGE_EMULATOR_HOST` (the Google SDKs' convention, which
//! the Go tools honour: `host:port` means plain http), else the public service.
//! Credentials, first found: `GOOGLE_SERVICE_ACCOUNT` (or `_PATH`, a file),
//! `GOOGLE_SERVICE_ACCOUNT_KEY` (the JSON itself), `GOOGLE_APPLICATION_CREDENTIALS` (a file).
//! `STORAGE_EMULATOR_HOST` always gets anonymous requests, as the Google SDKs send it; an
//! `?endpoint=` gets those credentials if one is set, else anonymous requests. The public
//! service also takes gcloud's application-default file, and the metadata server only where
//! `GCE_METADATA_HOST` says there is one, so a machine without credentials fails at once
//! instead of waiting on a metadata service.

use std::sync::Arc;

use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use object_store::StaticCredentialProvider;

use crate::error::{Error, Result};

/// Where and how to reach a GCS bucket; the caller adds client options and retries.
pub(super) struct Gcs {
    pub builder: GoogleCloudStorageBuilder,
    /// Plain-http endpoint (an emulator, a proxy): http must be allowed for it.
    pub plain_http: bool,
    /// Every request goes to the endpoint (anonymous: no token service is asked).
    pub endpoint_only: bool,
}

pub(super) fn gcs(
    bucket: String,
    endpoint: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    display: &str,
) -> Result<Gcs> {
    // The Google SDKs send an emulator no credentials, whatever else is configured.
    let emulator = endpoint.is_none() && env("STORAGE_EMULATOR_HOST").is_some();
    let endpoint = endpoint.or_else(|| env("STORAGE_EMULATOR_HOST").map(|h| emulator_url(&h)));
    let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(bucket);
    let explicit = if let Some(p) =
        env("GOOGLE_SERVICE_ACCOUNT").or_else(|| env("GOOGLE_SERVICE_ACCOUNT_PATH"))
    {
        b = b.with_service_account_path(p);
        true
    } else if let Some(k) = env("GOOGLE_SERVICE_ACCOUNT_KEY") {
        b = b.with_service_account_key(k);
        true
    } else if let Some(p) = env("GOOGLE_APPLICATION_CREDENTIALS") {
        if !std::path::Path::new(&p).is_file() {
            return Err(Error::Config(format!(
                "GOOGLE_APPLICATION_CREDENTIALS names {p}, which is not a file (for {display})"
            )));
        }
        b = b.with_application_credentials(p);
        true
    } else {
        false
    };
    let plain_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let mut endpoint_only = false;
    match endpoint {
        Some(ep) => {
            b = b.with_base_url(ep.trim_end_matches('/'));
            if emulator || !explicit {
                endpoint_only = true;
                // Anonymous: an emulator checks no credentials. Reads and listings skip the
                // signature; object_store's uploads and deletions ask the credential provider
                // whatever that setting says, so it must be a static empty token, or they
                // would go looking for a metadata server.
                b = b
                    .with_skip_signature(true)
                    .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential {
                        bearer: String::new(),
                    })));
            }
        }
        None if explicit => {}
        None if adc_file(env).is_some() || env("GCE_METADATA_HOST").is_some() => {}
        None => {
            return Err(Error::Config(format!(
                "no GCS credentials for {display}: set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON file (or GOOGLE_SERVICE_ACCOUNT_KEY to its contents); on Google Cloud, set GCE_METADATA_HOST=metadata.google.internal to use the metadata server; for an emulator, add ?endpoint=http://HOST:PORT or set STORAGE_EMULATOR_HOST"
            )))
        }
    }
    Ok(Gcs {
        builder: b,
        plain_http,
        endpoint_only,
    })
}

/// `STORAGE_EMULATOR_HOST` is `host:port` (plain http) or a URL.
fn emulator_url(v: &str) -> String {
    if v.contains("://") {
        v.to_string()
    } else {
        format!("http://{v}")
    }
}

/// gcloud's application-default credentials file, which object_store reads by itself.
fn adc_file(env: &dyn Fn(&str) -> Option<String>) -> Option<std::path::PathBuf> {
    let home = env("HOME")?;
    let p = std::path::Path::new(&home).join(".config/gcloud/application_default_credentials.json");
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_host_is_plain_http_unless_it_says_otherwise() {
        assert_eq!(emulator_url("127.0.0.1:4443"), "http://127.0.0.1:4443");
        assert_eq!(emulator_url("https://gcs.local"), "https://gcs.local");
    }
}
