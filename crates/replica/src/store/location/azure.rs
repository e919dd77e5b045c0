//! `abs://[account@]container/path`: where an Azure Blob Storage replica is and how to
//! authenticate to it.
//!
//! Sources, in this order (the Go tools' variables first, then the Azure SDKs' and
//! object_store's):
//! * account: the URL's user, `LITESTREAM_AZURE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_NAME`,
//!   the connection string's `AccountName`;
//! * endpoint: `?endpoint=URL`, `AZURE_STORAGE_ENDPOINT`, the connection string's
//!   `BlobEndpoint` (or `EndpointSuffix`), else `https://ACCOUNT.blob.core.windows.net`. An
//!   Azurite endpoint carries the account in its path: `http://127.0.0.1:10000/devstoreaccount1`;
//! * credentials: a SAS token (`LITESTREAM_AZURE_SAS_TOKEN`, `AZURE_STORAGE_SAS_TOKEN`, the
//!   connection string's `SharedAccessSignature`), which wins as in the Go tools; an account key
//!   (`LITESTREAM_AZURE_ACCOUNT_KEY`, `AZURE_STORAGE_ACCOUNT_KEY`, the connection string's
//!   `AccountKey`); Azurite's well-known account and key (`AZURE_STORAGE_USE_EMULATOR=true` or
//!   the connection string `UseDevelopmentStorage=true`); else object_store's Azure AD settings
//!   (`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`/`AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
//!   `AZURE_USE_AZURE_CLI`, `AZURE_CREDENTIAL_TYPE=managed_identity`, ...). With none of
//!   these the open fails at once, naming them, instead of waiting on a metadata service.

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use crate::error::{Error, Result};

/// Azurite's development account and its published key (the same in every installation).
pub(super) const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// object_store's Azure AD settings, passed through from the environment as they are.
const AD_SETTINGS: &[&str] = &[
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USE_AZURE_CLI",
    "AZURE_CREDENTIAL_TYPE",
    "AZURE_MSI_ENDPOINT",
    "AZURE_MSI_RESOURCE_ID",
    "AZURE_OBJECT_ID",
    "AZURE_STORAGE_TOKEN",
];

/// Where and how to reach an Azure container; the caller adds client options and retries.
pub(super) struct Azure {
    pub builder: MicrosoftAzureBuilder,
    /// Plain-http endpoint (Azurite, a proxy): http must be allowed for it.
    pub plain_http: bool,
    /// Every request goes to the endpoint (a key or a SAS token: no token service is asked).
    pub endpoint_only: bool,
}

pub(super) fn azure(
    container: String,
    url_account: Option<String>,
    endpoint: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    display: &str,
) -> Result<Azure> {
    let cs = match env("AZURE_STORAGE_CONNECTION_STRING") {
        Some(s) => ConnectionString::parse(&s)
            .map_err(|e| Error::Config(format!("AZURE_STORAGE_CONNECTION_STRING: {e}")))?,
        None => ConnectionString::default(),
    };
    let emulator = cs.development
        || env("AZURE_STORAGE_USE_EMULATOR").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
    let account = url_account
        .or_else(|| env("LITESTREAM_AZURE_ACCOUNT_NAME"))
        .or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME"))
        .or_else(|| cs.account.clone())
        .or_else(|| emulator.then(|| EMULATOR_ACCOUNT.to_string()))
        .ok_or_else(|| {
            Error::Config(format!(
                "no Azure storage account for {display}: use abs://ACCOUNT@container/path, or set LITESTREAM_AZURE_ACCOUNT_NAME"
            ))
        })?;
    let endpoint = endpoint
        .or_else(|| env("AZURE_STORAGE_ENDPOINT"))
        .or_else(|| cs.endpoint(&account))
        .or_else(|| emulator.then(|| EMULATOR_ENDPOINT.to_string()));
    let sas = env("LITESTREAM_AZURE_SAS_TOKEN")
        .or_else(|| env("AZURE_STORAGE_SAS_TOKEN"))
        .or_else(|| env("AZURE_STORAGE_SAS_KEY"))
        .or_else(|| cs.sas.clone());
    let key = env("LITESTREAM_AZURE_ACCOUNT_KEY")
        .or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY"))
        .or_else(|| env("AZURE_STORAGE_ACCESS_KEY"))
        .or_else(|| cs.key.clone())
        .or_else(|| emulator.then(|| EMULATOR_KEY.to_string()));
    let mut b = MicrosoftAzureBuilder::new()
        .with_container_name(container)
        .with_account(&account);
    let endpoint_only = sas.is_some() || key.is_some();
    if let Some(sas) = sas {
        b = b.with_config(AzureConfigKey::SasKey, sas);
    } else if let Some(key) = key {
        b = b.with_access_key(key);
    } else {
        let mut any = false;
        for name in AD_SETTINGS {
            if let Some(v) = env(name) {
                let k: AzureConfigKey = name
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| Error::Config(format!("{name}: {e}")))?;
                b = b.with_config(k, v);
                any = true;
            }
        }
        if !any {
            return Err(Error::Config(format!(
                "no Azure credentials for {display}: set LITESTREAM_AZURE_ACCOUNT_KEY (or AZURE_STORAGE_ACCOUNT_KEY), LITESTREAM_AZURE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_USE_EMULATOR=true for Azurite; on Azure, AZURE_CREDENTIAL_TYPE=managed_identity or the AZURE_CLIENT_ID/AZURE_TENANT_ID settings of a service principal"
            )));
        }
    }
    let plain_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if let Some(ep) = endpoint {
        b = b.with_endpoint(ep.trim_end_matches('/').to_string());
    }
    Ok(Azure {
        builder: b,
        plain_http,
        endpoint_only,
    })
}

/// The parts of an Azure storage connection string
/// (`DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=…`) that name a
/// blob endpoint and credentials.
#[derive(Debug, Default, PartialEq)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
    development: bool,
}

impl ConnectionString {
    fn parse(s: &str) -> std::result::Result<ConnectionString, String> {
        let mut cs = ConnectionString::default();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            // Values (keys, SAS tokens) may themselves contain '='.
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not NAME=VALUE"))?;
            let v = Some(v.to_string());
            match k.to_ascii_lowercase().as_str() {
                "accountname" => cs.account = v,
                "accountkey" => cs.key = v,
                "sharedaccesssignature" => cs.sas = v,
                "blobendpoint" => cs.blob_endpoint = v,
                "defaultendpointsprotocol" => cs.protocol = v,
                "endpointsuffix" => cs.suffix = v,
                "usedevelopmentstorage" => cs.development = v.as_deref() == Some("true"),
                _ => {}
            }
        }
        Ok(cs)
    }

    fn endpoint(&self, account: &str) -> Option<String> {
        self.blob_endpoint.clone().or_else(|| {
            let suffix = self.suffix.as_deref()?;
            let protocol = self.protocol.as_deref().unwrap_or("https");
            Some(format!("{protocol}://{account}.blob.{suffix}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_name_endpoint_and_credentials() {
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        )
        .unwrap();
        assert_eq!(cs.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(cs.key.as_deref(), Some("a2V5=="));
        assert_eq!(
            cs.endpoint("x").as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let cs = ConnectionString::parse(
            "AccountName=acct;SharedAccessSignature=sv=2024&sig=abc%3D;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(cs.sas.as_deref(), Some("sv=2024&sig=abc%3D"));
        assert_eq!(
            cs.endpoint("acct").as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
        assert!(
            ConnectionString::parse("UseDevelopmentStorage=true")
                .unwrap()
                .development
        );
        assert!(ConnectionString::parse("AccountName").is_err());
    }
}
