//! Drop-in for real applications: the PRAGMAs applications send at connect answer as SQLite
//! answers on a VFS without shared memory; `VACUUM INTO` and `ATTACH` of a plain path make
//! ordinary local files, at the state the connection reads (checked against `litestream
//! restore`); Django's ORM reads (with the usual WAL `init_command`, several threads) and writes.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use e2e::{
    dump, extension_path, go_restore, integrity, open_vfs, open_vfs_app, open_vfs_rw, shell,
    snapshot, uri_encode, venv_python,
};
use rusqlite::Connection;
use testkit::golitestream::{restore, ReplicaTarget, RestoreOpts};

/// What frameworks send at connect (Django's and Rails' usual settings among them), each set
/// and then read back.
const CONNECT_PRAGMAS: &str = "\
PRAGMA journal_mode=WAL;
PRAGMA journal_mode;
PRAGMA journal_mode=wal2;
PRAGMA synchronous=NORMAL;
PRAGMA synchronous;
PRAGMA foreign_keys=ON;
PRAGMA foreign_keys;
PRAGMA busy_timeout=5000;
PRAGMA busy_timeout;
PRAGMA mmap_size=268435456;
PRAGMA mmap_size;
PRAGMA cache_size=-20000;
PRAGMA cache_size;
PRAGMA temp_store=MEMORY;
PRAGMA temp_store;
PRAGMA locking_mode=NORMAL;
PRAGMA locking_mode;
PRAGMA query_only=ON;
PRAGMA query_only;
PRAGMA query_only=OFF;
PRAGMA wal_autocheckpoint=1000;
PRAGMA wal_autocheckpoint;
PRAGMA auto_vacuum=INCREMENTAL;
PRAGMA auto_vacuum;
SELECT count(*), sum(length(v)) FROM t;
";

/// A plain copy of the replica's newest state in rollback mode, for SQLite's own answers.
fn plain_copy(target: &ReplicaTarget, path: &Path) -> Result<()> {
    restore(target, path, &RestoreOpts::default())?;
    Connection::open(path)?.execute_batch("PRAGMA journal_mode=DELETE")?;
    Ok(())
}

/// The shell's transcript of `script` on the database `open` (statements echoed).
fn transcript(open: &str, script: &str) -> Result<String> {
    shell(&format!(".open {open}\n.echo on\n{script}"), &[])
}

#[test]
fn connect_pragmas_answer_as_on_a_vfs_without_shared_memory() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = e2e::small_replica(dir.path())?;
    let url = uri_encode(&target.url());
    let buffer = uri_encode(&dir.path().join("app.buffer").display().to_string());
    let (ro, rw) = (dir.path().join("ro.db"), dir.path().join("rw.db"));
    plain_copy(&target, &ro)?;
    plain_copy(&target, &rw)?;
    // SQLite's unix-dotfile VFS has no shared memory, like ours.
    let plain = |p: &Path, mode: &str| format!("file:{}?vfs=unix-dotfile{mode}", p.display());

    // A read connection answers exactly as a read-only plain file on such a VFS.
    let ours = transcript(
        &format!("file:app.db?vfs=litestream&replica_url={url}"),
        CONNECT_PRAGMAS,
    )?;
    assert_eq!(ours, transcript(&plain(&ro, "&mode=ro"), CONNECT_PRAGMAS)?);
    assert!(
        ours.contains("PRAGMA journal_mode=WAL;\ndelete\n"),
        "{ours}"
    );

    // In write mode too, and a write after `journal_mode=WAL` reaches the replica.
    let script = format!("{CONNECT_PRAGMAS}INSERT INTO t(v) VALUES ('after wal');\n");
    let ours = transcript(
        &format!(
            "file:app.db?vfs=litestream&write_enabled=true&replica_url={url}&buffer_path={buffer}"
        ),
        &script,
    )?;
    assert_eq!(ours, transcript(&plain(&rw, ""), &script)?);
    let want = snapshot(&Connection::open(&rw)?)?;
    assert_eq!(
        snapshot(&go_restore(&target, dir.path(), "restored.db")?)?,
        want
    );

    // In exclusive locking mode SQLite would build a WAL index in heap memory, which needs a
    // WAL file: ours still answers with the rollback mode in effect, and no error.
    let script = "PRAGMA locking_mode=EXCLUSIVE;\nSELECT count(*) FROM t;\nPRAGMA journal_mode=WAL;\nSELECT count(*) FROM t;\n";
    for extra in ["", "&write_enabled=true"] {
        let out = transcript(
            &format!("file:app.db?vfs=litestream&replica_url={url}&buffer_path={buffer}{extra}"),
            script,
        )?;
        let n = want["t"].len();
        assert_eq!(
            out,
            format!("PRAGMA locking_mode=EXCLUSIVE;\nexclusive\nSELECT count(*) FROM t;\n{n}\nPRAGMA journal_mode=WAL;\ndelete\nSELECT count(*) FROM t;\n{n}\n"),
            "{extra}"
        );
    }

    // The shell's own exports: VACUUM INTO and .backup (the backup API) make plain files.
    let (vacuumed, backup) = (dir.path().join("vacuumed.db"), dir.path().join("backup.db"));
    let out = shell(
        &format!(
            ".open file:app.db?vfs=litestream&replica_url={url}\nVACUUM INTO '{}';\n.backup '{}'\n",
            vacuumed.display(),
            backup.display()
        ),
        &[],
    )?;
    assert!(out.trim().is_empty(), "{out}");
    assert_eq!(snapshot(&Connection::open(&vacuumed)?)?, want);
    assert_eq!(snapshot(&Connection::open(&backup)?)?, want);
    Ok(())
}

/// `strftime` of SQLite: RFC 3339 with milliseconds, as `litestream restore -timestamp` takes.
fn now_rfc3339() -> Result<String> {
    Ok(Connection::open_in_memory()?.query_row(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        [],
        |r| r.get(0),
    )?)
}

fn objects(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(objects(&p)?);
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn vacuum_into_exports_the_state_read_as_litestream_restore_does() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = ReplicaTarget::file(&dir.path().join("replica"))?;
    let buffer = dir.path().join("app.buffer");
    // Durable commits: one LTX file (one TXID) each, uploaded before COMMIT returns.
    let extra = format!(
        "&sync_interval=0&buffer_path={}",
        uri_encode(&buffer.display().to_string())
    );
    let writer = open_vfs_rw("app.db", &target.url(), &extra).context("open the writer")?;
    let mut past = Vec::new();
    for i in 0..3 {
        writer.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, round INTEGER, v BLOB);
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100)
             INSERT INTO t(round, v) SELECT {i}, randomblob(300) FROM s;
             UPDATE t SET v = randomblob(10) WHERE id % 7 = {i};"
        ))?;
        let txid: String = writer.query_row("PRAGMA litestream_txid", [], |r| r.get(0))?;
        // A moment strictly between this upload and the next one.
        std::thread::sleep(std::time::Duration::from_millis(300));
        past.push((u64::from_str_radix(&txid, 16)?, now_rfc3339()?));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    drop(writer);
    let before = objects(&dir.path().join("replica"))?;

    let reader = open_vfs("app.db", &target.url(), "").context("open the reader")?;
    for (n, (txid, time)) in past.iter().take(2).enumerate() {
        // By time: equal to `litestream restore -timestamp`.
        reader.query_row(
            &format!("PRAGMA litestream_time = '{time}'"),
            [],
            |_| Ok(()),
        )?;
        let out = dir.path().join(format!("at-time-{n}.db"));
        reader
            .execute("VACUUM INTO ?1", [out.display().to_string()])
            .context("VACUUM INTO at a time")?;
        let go = dir.path().join(format!("go-time-{n}.db"));
        let opts = RestoreOpts {
            timestamp: Some(time.clone()),
            ..RestoreOpts::default()
        };
        restore(&target, &go, &opts)?;
        let exported = Connection::open(&out)?;
        assert_eq!(integrity(&exported)?, "ok");
        let want = snapshot(&Connection::open(&go)?)?;
        assert_eq!(snapshot(&exported)?, want, "state at {time}");
        assert_eq!(want["t"].len(), 100 * (n + 1), "the restore at {time}");

        // By TXID: equal to `litestream restore -txid`.
        reader.query_row(
            &format!("PRAGMA litestream_txid = '{txid:016x}'"),
            [],
            |_| Ok(()),
        )?;
        let out = dir.path().join(format!("at-txid-{n}.db"));
        reader.execute("VACUUM INTO ?1", [out.display().to_string()])?;
        let go = dir.path().join(format!("go-txid-{n}.db"));
        let opts = RestoreOpts {
            txid: Some(*txid),
            ..RestoreOpts::default()
        };
        restore(&target, &go, &opts)?;
        assert_eq!(
            snapshot(&Connection::open(&out)?)?,
            snapshot(&Connection::open(&go)?)?,
            "state at TXID {txid:016x}"
        );
    }

    // The latest state: the whole content (every table, the schema) of the copy is the
    // reader's and the newest restore's.
    reader.query_row("PRAGMA litestream_time = 'latest'", [], |_| Ok(()))?;
    let out = dir.path().join("latest.db");
    reader.execute("VACUUM INTO ?1", [out.display().to_string()])?;
    let copy = snapshot(&Connection::open(&out)?)?;
    assert_eq!(copy, snapshot(&reader)?);
    assert_eq!(
        copy,
        snapshot(&go_restore(&target, dir.path(), "go-latest.db")?)?
    );
    // And the shell's hash of the whole content (schema and every row): the copy's, the
    // replica's read through the VFS and the restored file's are one.
    let sha3 = |open: String| shell(&format!(".open {open}\n.sha3sum\n"), &[]);
    let hash = sha3(out.display().to_string())?;
    assert!(
        !hash.trim().is_empty() && hash.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
    assert_eq!(
        sha3(format!(
            "file:app.db?vfs=litestream&replica_url={}",
            uri_encode(&target.url())
        ))?,
        hash
    );
    assert_eq!(
        sha3(dir.path().join("go-latest.db").display().to_string())?,
        hash
    );
    assert_eq!(copy["t"].len(), 300);

    // SQLite's own rule for the target: an existing non-empty file is refused.
    let err = reader
        .execute("VACUUM INTO ?1", [out.display().to_string()])
        .unwrap_err();
    assert!(
        err.to_string().contains("output file already exists"),
        "{err}"
    );

    // ATTACH of a plain path is an ordinary local database too, with a real journal, on a
    // connection opened read-write as applications do (a read-only one attaches read-only).
    let local = dir.path().join("local.db");
    let app = open_vfs_app("app.db", &target.url(), "")?;
    app.execute("ATTACH ?1 AS loc", [local.display().to_string()])?;
    app.execute_batch(
        "CREATE TABLE loc.copy AS SELECT id, round FROM t;
         BEGIN; DELETE FROM loc.copy WHERE round = 0; ROLLBACK;
         DETACH loc;",
    )?;
    let rows = dump(&Connection::open(&local)?, "SELECT count(*) FROM copy")?;
    assert_eq!(rows, dump(&reader, "SELECT count(*) FROM t")?);
    assert!(!dir.path().join("local.db-journal").exists());

    assert_eq!(
        objects(&dir.path().join("replica"))?,
        before,
        "the replica was not touched"
    );
    Ok(())
}

/// Writes the Django project of the tests into `dir`: settings in `conf.py`, an app `shop`.
fn django_project(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("shop/migrations"))?;
    std::fs::write(dir.join("shop/__init__.py"), "")?;
    std::fs::write(dir.join("shop/migrations/__init__.py"), "")?;
    std::fs::write(
        dir.join("shop/models.py"),
        r#"from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100, unique=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.IntegerField()
    note = models.TextField(default="")
"#,
    )?;
    std::fs::write(
        dir.join("conf.py"),
        r#"import os, sqlite3, sys
import django
from django.conf import settings

# The VFS is registered when the extension is loaded: before Django opens its first
# connection (a connection_created handler runs too late for that one).
boot = sqlite3.connect(":memory:")
boot.enable_load_extension(True)
boot.load_extension(os.environ["LITESTREAM_SO"])

settings.configure(
    INSTALLED_APPS=["shop"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["DJANGO_DB"],
            "OPTIONS": {
                "uri": True,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
django.setup()
"#,
    )?;
    Ok(())
}

fn run_python(python: &Path, dir: &Path, db: &str, script: &str) -> Result<String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PYTHONPATH", dir)
        .env("LITESTREAM_SO", extension_path()?)
        .env("DJANGO_DB", db)
        .env_remove("LITESTREAM_REPLICA_URL")
        .output()
        .context("run the venv's python")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// `key=value` lines of a script's output.
fn fields(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(out: &str, key: &str) -> Result<String> {
    fields(out)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .with_context(|| format!("{key} missing from {out}"))
}

#[test]
fn django_writes_and_reads_through_the_vfs() -> Result<()> {
    let python = venv_python()?;
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("project");
    django_project(&project)?;
    let target = ReplicaTarget::file(&dir.path().join("replica"))?;
    let url = uri_encode(&target.url());
    let buffer = uri_encode(&dir.path().join("app.buffer").display().to_string());
    let orders_py = r#"json.dumps(sorted([o.id, o.customer.name, o.total, o.note] for o in Order.objects.select_related("customer")), separators=(",", ":"))"#;

    // The writer: makemigrations + migrate + ORM writes, in write mode.
    let db = format!(
        "file:app.db?vfs=litestream&write_enabled=true&replica_url={url}&buffer_path={buffer}"
    );
    let written = run_python(
        &python,
        &project,
        &db,
        &format!(
            r#"import conf, json
from django.core.management import call_command
from django.db import connection, transaction
call_command("makemigrations", "shop", verbosity=0)
call_command("migrate", verbosity=0)
from shop.models import Customer, Order
with connection.cursor() as c:
    c.execute("PRAGMA journal_mode")
    print("mode=" + c.fetchone()[0])
for i in range(20):
    c = Customer.objects.create(name=f"customer {{i}}")
    Order.objects.bulk_create(Order(customer=c, total=i * 10 + k) for k in range(5))
with transaction.atomic():
    Order.objects.filter(total__lt=30).update(note="small")
    Customer.objects.filter(name="customer 19").delete()
try:
    with transaction.atomic():
        Customer.objects.create(name="rolled back")
        raise RuntimeError("roll back")
except RuntimeError:
    pass
print("customers=%d" % Customer.objects.count())
print("orders=" + {orders_py})
connection.close()
"#
        ),
    )?;
    assert_eq!(field(&written, "mode")?, "delete");
    let orders = field(&written, "orders")?;

    // `litestream restore` has exactly what the ORM saw.
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    let got: String = restored.query_row(
        "SELECT json_group_array(json_array(o.id, c.name, o.total, o.note) ORDER BY o.id) \
         FROM shop_order o JOIN shop_customer c ON c.id = o.customer_id",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(got, orders, "restored orders vs the ORM's");
    let n: i64 = restored.query_row(
        "SELECT count(*) FROM django_migrations WHERE app = 'shop'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(n, 1, "the app's migration was recorded");

    // Readers: the WAL init_command, several threads with a connection each.
    let db = format!("file:app.db?vfs=litestream&replica_url={url}");
    let read = run_python(
        &python,
        &project,
        &db,
        &format!(
            r#"import conf, json, threading
from django.db import connection, connections
from shop.models import Customer, Order
results, errors = [], []
def work():
    try:
        for _ in range(3):
            with connection.cursor() as c:
                c.execute("PRAGMA journal_mode")
                mode = c.fetchone()[0]
            results.append((mode, {orders_py}, Customer.objects.count(), id(connection.connection)))
    except Exception as e:
        errors.append(repr(e))
    finally:
        connections.close_all()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("errors=" + json.dumps(errors))
print("modes=" + ",".join(sorted({{r[0] for r in results}})))
print("reads=%d" % len(results))
print("connections=%d" % len({{r[3] for r in results}}))
print("customers=" + ",".join(sorted({{str(r[2]) for r in results}})))
for v in sorted({{r[1] for r in results}}):
    print("view=" + v)
"#
        ),
    )?;
    assert_eq!(field(&read, "errors")?, "[]", "{read}");
    assert_eq!(field(&read, "modes")?, "delete");
    assert_eq!(field(&read, "reads")?, "12");
    assert_eq!(
        field(&read, "connections")?,
        "4",
        "one connection per thread"
    );
    assert_eq!(field(&read, "customers")?, field(&written, "customers")?);
    let views: Vec<String> = fields(&read)
        .into_iter()
        .filter(|(k, _)| k == "view")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        views,
        vec![orders],
        "every thread read what the writer wrote"
    );
    Ok(())
}
