//! Security: secrets never reach logs or messages, the database name given to `xOpen` cannot
//! steer reads outside the configured replica, and TLS endpoints must present a certificate
//! the extension trusts.

use anyhow::Result;
use e2e::{dump, open_vfs, shell, EncodedHistory, ROWS_SQL};
use testkit::fault::{test_ca, FaultProxy};
use testkit::S3Server;

fn history() -> &'static EncodedHistory {
    static H: std::sync::OnceLock<EncodedHistory> = std::sync::OnceLock::new();
    H.get_or_init(|| EncodedHistory::build(4).expect("history builds"))
}

/// An S3 server holding the history at `bucket/tenant/app` and a decoy at `bucket/other/secret`.
fn server() -> Result<(tempfile::TempDir, S3Server)> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    let bucket = server.create_bucket("bucket")?;
    history().write_to(&bucket.join("tenant/app"))?;
    history().write_to(&bucket.join("other/secret"))?;
    Ok((root, server))
}

fn url(endpoint: &str, path: &str) -> String {
    format!("s3://bucket/{path}?endpoint={endpoint}&region=us-east-1&force-path-style=true")
}

#[test]
fn secrets_never_reach_logs_or_messages_on_a_working_replica() -> Result<()> {
    let (_root, server) = server()?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("litestream.log");
    let log_s = log.display().to_string();
    // A password in the URL's user-info is not a credential we use, and must not be shown.
    let with_userinfo = url(&server.endpoint(), "tenant/app")
        .replace("s3://bucket", "s3://someone:hunter2-url-password@bucket");
    let script = format!(
        ".open file:app.db?vfs=litestream\n\
         SELECT count(*) FROM t;\n\
         PRAGMA litestream_replica_url;\n\
         PRAGMA litestream_stats;\n\
         PRAGMA litestream_txid = '0000000000000002';\n\
         SELECT count(*) FROM t;\n\
         PRAGMA litestream_txid = 'latest';\n\
         PRAGMA litestream_time = 'not a time';\n\
         INSERT INTO t(grp, body) VALUES (1, x'00');\n\
         .open file:other.db?vfs=litestream&replica_url={}\n\
         SELECT 1;\n",
        e2e::uri_encode(&url("http://127.0.0.1:9", "nowhere"))
    );
    let out = shell(
        &script,
        &[
            ("LITESTREAM_REPLICA_URL", &with_userinfo),
            ("LITESTREAM_LOG_FILE", &log_s),
            ("LITESTREAM_LOG_LEVEL", "debug"),
            ("AWS_SESSION_TOKEN", "session-token-never-shown"),
        ],
    );
    // The session token is not accepted by the test server; run again without it for the
    // successful path, appending to the same log.
    let out = out?
        + &shell(
            &script,
            &[
                ("LITESTREAM_REPLICA_URL", &with_userinfo),
                ("LITESTREAM_LOG_FILE", &log_s),
                ("LITESTREAM_LOG_LEVEL", "debug"),
            ],
        )?;
    let text = std::fs::read_to_string(&log)?;
    let rows = history().states.last().unwrap().1.len().to_string();
    assert!(
        out.lines().any(|l| l.trim() == rows),
        "the replica was read: {out}"
    );
    assert!(out.contains("REDACTED"), "the URL is shown redacted: {out}");
    assert!(
        text.contains("get_range") || text.contains("list"),
        "debug log: {text}"
    );
    for secret in [
        testkit::s3::SECRET_KEY,
        "hunter2-url-password",
        "session-token-never-shown",
    ] {
        assert!(!out.contains(secret), "{secret} in the output: {out}");
        assert!(!text.contains(secret), "{secret} in the debug log");
    }
    Ok(())
}

#[test]
fn database_names_cannot_steer_reads() -> Result<()> {
    let (_root, server) = server()?;
    let proxy = FaultProxy::start(server.addr())?;
    let tenant = url(&proxy.endpoint(), "tenant/app");
    let want = &history().states.last().unwrap().1;
    let scratch = tempfile::tempdir()?;
    let abs = scratch.path().join("sub/abs.db").display().to_string();
    let names = [
        "../../etc/passwd",
        "../other/secret",
        "/other/secret",
        "other/secret/0000/0000000000000002-0000000000000002.ltx",
        "tenant/../other/secret",
        "..%2F..%2Fother%2Fsecret",
        "%2e%2e/%2e%2e/other",
        abs.as_str(),
        "app.db/../../other",
    ];
    for name in names {
        let conn = open_vfs(name, &tenant, "&poll_interval=0")?;
        assert_eq!(&dump(&conn, ROWS_SQL)?, want, "{name}");
    }
    // The sqlite3 shell, with the name in a URI and the URL from the environment.
    let out = shell(
        ".open file:../../etc/passwd?vfs=litestream\nSELECT count(*) FROM t;\n",
        &[("LITESTREAM_REPLICA_URL", &tenant)],
    )?;
    assert_eq!(out.trim(), want.len().to_string(), "{out}");
    // Nothing was created next to the names given, and no other prefix was asked for.
    assert!(
        !scratch.path().join("sub").exists(),
        "a local file was created"
    );
    let seen = proxy.requests();
    assert!(seen.len() >= names.len(), "{seen:?}");
    for r in &seen {
        let inside = if r.is_list() {
            r.query_param("prefix")
                .is_some_and(|p| p.starts_with("tenant/app/"))
                && r.query_param("start-after")
                    .is_none_or(|s| s.starts_with("tenant/app/"))
        } else {
            r.path().starts_with("/bucket/tenant/app/")
        };
        assert!(inside, "a request outside the replica prefix: {r:?}");
    }
    println!(
        "{} names, {} requests, all under bucket/tenant/app/",
        names.len() + 1,
        seen.len()
    );
    Ok(())
}

#[test]
fn tls_needs_a_trusted_certificate() -> Result<()> {
    let (_root, server) = server()?;
    let (ca_pem, identity) = test_ca()?;
    let proxy = FaultProxy::start_tls(server.addr(), &identity)?;
    assert!(proxy.endpoint().starts_with("https://"));
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, &ca_pem)?;
    let bundle_s = bundle.display().to_string();
    let tenant = url(&proxy.endpoint(), "tenant/app");
    let script = ".open file:app.db?vfs=litestream\nSELECT count(*) FROM t;\n";
    let rows = history().states.last().unwrap().1.len().to_string();

    // Untrusted by default: the open fails, saying why, within the retry budget.
    let log = dir.path().join("litestream.log");
    let log_s = log.display().to_string();
    let out = shell(
        script,
        &[
            ("LITESTREAM_REPLICA_URL", &tenant),
            ("LITESTREAM_LOG_FILE", &log_s),
        ],
    )?;
    assert!(
        out.contains("cannot open") && !out.lines().any(|l| l.trim() == rows),
        "{out}"
    );
    assert!(
        out.contains("not trusted") && out.contains("AWS_CA_BUNDLE"),
        "the error names the cause and the fix: {out}"
    );
    assert!(std::fs::read_to_string(&log)?.contains("cannot open"));
    // Nothing was sent over a connection the client did not trust.
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    // Trusted through AWS_CA_BUNDLE.
    let out = shell(
        script,
        &[
            ("LITESTREAM_REPLICA_URL", &tenant),
            ("AWS_CA_BUNDLE", &bundle_s),
        ],
    )?;
    assert_eq!(out.trim(), rows, "{out}");
    // skip-verify=true accepts it without the bundle (documented as insecure).
    let out = shell(
        script,
        &[(
            "LITESTREAM_REPLICA_URL",
            &format!("{tenant}&skip-verify=true"),
        )],
    )?;
    assert_eq!(out.trim(), rows, "{out}");
    // A bundle that is not PEM is a configuration error.
    std::fs::write(&bundle, "not a certificate")?;
    let out = shell(
        script,
        &[
            ("LITESTREAM_REPLICA_URL", &tenant),
            ("AWS_CA_BUNDLE", &bundle_s),
        ],
    )?;
    assert!(out.contains("AWS_CA_BUNDLE"), "{out}");
    Ok(())
}

#[test]
fn pragma_messages_are_not_format_strings() -> Result<()> {
    let (_root, server) = server()?;
    let tenant = url(&server.endpoint(), "tenant/app");
    // %x conversions read whatever the varargs registers hold: harmless to run, visible.
    let out = shell(
        ".open file:app.db?vfs=litestream\n\
         PRAGMA litestream_time = 'ABC%x.%x.%x';\n\
         SELECT 'alive';\n",
        &[("LITESTREAM_REPLICA_URL", &tenant)],
    )?;
    let mut problems = Vec::new();
    if !out.contains("ABC%x.%x.%x") {
        problems.push(format!("%x interpreted: {out}"));
    }
    // A replica URL with a percent-encoded path: shown whole by the PRAGMA.
    let encoded = url(&server.endpoint(), "tenant%2Fapp");
    let out = shell(
        ".open file:app.db?vfs=litestream\nPRAGMA litestream_replica_url;\n",
        &[("LITESTREAM_REPLICA_URL", &encoded)],
    )?;
    if !out.contains("tenant%2Fapp") {
        problems.push(format!("URL with %2F: {out}"));
    }
    // %s dereferences a garbage pointer: the shell must survive and echo the value.
    let (out, survived) = e2e::shell_status(
        ".open file:app.db?vfs=litestream\n\
         PRAGMA litestream_time = '%s%s%s%s%s%s%s%s';\n\
         SELECT 'alive';\n",
        &[("LITESTREAM_REPLICA_URL", &tenant)],
    )?;
    if !survived {
        problems.push(format!(
            "%s crashed the sqlite3 shell (killed by a signal): {out:?}"
        ));
    } else if !(out.contains("alive") && out.contains("%s%s%s%s")) {
        problems.push(format!("%s interpreted: {out}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn tls_errors_name_the_certificate_problem() -> Result<()> {
    let (_root, server) = server()?;
    let (_ca_pem, identity) = test_ca()?;
    let proxy = FaultProxy::start_tls(server.addr(), &identity)?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("litestream.log");
    let log_s = log.display().to_string();
    let out = shell(
        ".open file:app.db?vfs=litestream\nSELECT count(*) FROM t;\n",
        &[
            (
                "LITESTREAM_REPLICA_URL",
                &url(&proxy.endpoint(), "tenant/app"),
            ),
            ("LITESTREAM_LOG_FILE", &log_s),
        ],
    )?;
    let logged = std::fs::read_to_string(&log)?;
    for text in [&out, &logged] {
        assert!(
            text.to_lowercase().contains("certificate") || text.contains("UnknownIssuer"),
            "the error names the certificate problem: {text}"
        );
        // A certificate the client refuses is a configuration problem, not unavailability.
        assert!(!text.contains("object storage unavailable"), "{text}");
    }
    Ok(())
}
