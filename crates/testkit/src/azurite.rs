//! Azurite, Microsoft's Azure Storage emulator (blob service only), from npm: installed by
//! `scripts/setup.sh` into `target/npm`, started here on a free port of 127.0.0.1, in memory,
//! with telemetry off (it would otherwise report to the network).
//!
//! Azurite accepts its development account [`ACCOUNT`] with the published key [`ACCOUNT_KEY`];
//! its endpoints carry the account in their path (`http://127.0.0.1:PORT/devstoreaccount1`).

use std::process::Command;

use anyhow::{Context, Result};
use base64::Engine;

use crate::emulator::{installed, target_dir, Process};
use crate::http::{free_port, request_ok};

/// Azurite's development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its published account key (the same in every Azurite).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Azurite package `scripts/setup.sh` installs.
pub const VERSION: &str = "3.37.0";

/// A running Azurite blob service.
#[derive(Debug)]
pub struct Azurite {
    process: Process,
}

impl Azurite {
    /// Starts Azurite's blob service on a free port of 127.0.0.1.
    pub fn start() -> Result<Azurite> {
        let bin = installed(
            target_dir().join("npm/node_modules/.bin/azurite-blob"),
            &format!("azurite {VERSION} (npm)"),
        )?;
        let port = free_port()?;
        let dir = tempfile::Builder::new().prefix("azurite-").tempdir()?;
        let mut cmd = Command::new(bin);
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ]);
        Ok(Azurite {
            process: Process::spawn("azurite", cmd, dir, port)?,
        })
    }

    /// The blob endpoint of the development account: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.process.port())
    }

    /// The address clients connect to.
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.process.port()).into()
    }

    /// Creates a container (Create Container, signed with the account key). Azurite accepts
    /// connections a moment before it answers them, and under load it resets the first ones:
    /// a connection that fails before any response is tried again, a refusal is not.
    pub fn create_container(&self, name: &str) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.try_create_container(name) {
                Err(e) if attempt < 50 && is_connection_error(&e) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => return other.with_context(|| format!("create Azurite container {name}")),
            }
        }
    }

    fn try_create_container(&self, name: &str) -> Result<()> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        // Shared Key: verb, eleven empty standard headers, the x-ms headers, then the resource:
        // the account and the request path (which, path-style, starts with the account again).
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let auth = format!("SharedKey {ACCOUNT}:{}", sign(&to_sign)?);
        request_ok(
            &self.endpoint(),
            "PUT",
            &format!("/{ACCOUNT}/{name}?restype=container"),
            &[
                ("x-ms-date", date),
                ("x-ms-version", version.to_string()),
                ("Authorization", auth),
            ],
            &[],
        )?;
        Ok(())
    }

    /// An account SAS token for the blob service (read, write, delete, list, add, create on
    /// everything) valid for an hour, as `sv=…&sig=…`.
    pub fn account_sas(&self) -> Result<String> {
        let expiry = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let (version, perms, protocol) = ("2021-08-06", "rwdlac", "https,http");
        // Account SAS, version 2020-12-06 and later: the fields in this order, each ended by a
        // newline (start time, IP range and encryption scope empty).
        let to_sign =
            format!("{ACCOUNT}\n{perms}\nb\nsco\n\n{expiry}\n\n{protocol}\n{version}\n\n");
        let sig: String = sign(&to_sign)?
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        Ok(format!(
            "sv={version}&ss=b&srt=sco&sp={perms}&se={expiry}&spr={protocol}&sig={sig}"
        ))
    }
}

/// HMAC-SHA256 of `to_sign` with the account key, in base64: Shared Key and SAS signatures.
fn sign(to_sign: &str) -> Result<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(ACCOUNT_KEY)?;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = aws_lc_rs::hmac::sign(&key, to_sign.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(sig.as_ref()))
}

/// Whether `e` is a connection that failed before any response (reset, refused, cut short).
fn is_connection_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
    })
}
