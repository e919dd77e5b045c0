//! Replays every checked-in input (`corpus/<target>/*`, the seeds, and `regressions/<target>/*`,
//! inputs that once failed) through the fuzz targets, so `make test` keeps them passing without
//! building libFuzzer. `make fuzz` does the actual fuzzing.
//!
//! The seeds are regenerated with `cargo test --release -p fuzz --test corpus -- --ignored`
//! (LTX files from our encoder and from the Go `litestream` 0.5.17).

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("ltx_file", fuzz::ltx_file),
    ("ltx_page_index", fuzz::ltx_page_index),
    ("ltx_page_frame", fuzz::ltx_page_frame),
    ("pragma_values", fuzz::pragma_values),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    out.sort();
    out
}

#[test]
fn replay_corpus_and_regressions() {
    let mut total = 0;
    for (name, target) in TARGETS {
        let seeds = inputs(&root().join("corpus").join(name));
        assert!(seeds.len() >= 3, "corpus/{name} has {} seeds", seeds.len());
        let regressions = inputs(&root().join("regressions").join(name));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", path.display());
            total += 1;
        }
    }
    println!("replayed {total} inputs");
}

/// Seeds made by our encoder (the Go-made files are added by `write_seed_corpus`).
fn encoder_seeds() -> Vec<(String, Vec<u8>)> {
    let page = |pgno: u32, fill: u8, size: usize| -> Vec<u8> {
        let mut p = vec![fill; size];
        p[..4].copy_from_slice(&pgno.to_be_bytes());
        for (i, b) in p.iter_mut().enumerate().skip(4).step_by(7) {
            *b = (i as u8).wrapping_mul(31) ^ fill;
        }
        p
    };
    let file = |flags: u32, page_size: u32, commit: u32, min: u64, max: u64, pgnos: &[u32]| {
        let snapshot = min == 1;
        let header = ltx::Header {
            flags,
            page_size,
            commit,
            min_txid: min,
            max_txid: max,
            timestamp_ms: 1_700_000_000_000 + max as i64,
            pre_apply_checksum: if snapshot || flags & ltx::HEADER_FLAG_NO_CHECKSUM != 0 {
                0
            } else {
                ltx::CHECKSUM_FLAG | 0x1234
            },
            ..ltx::Header::default()
        };
        let mut enc = ltx::Encoder::new(header).unwrap();
        for &p in pgnos {
            enc.add_page(p, &page(p, max as u8, page_size as usize))
                .unwrap();
        }
        let post = if flags & ltx::HEADER_FLAG_NO_CHECKSUM != 0 {
            0
        } else if snapshot {
            enc.database_checksum()
        } else {
            ltx::CHECKSUM_FLAG | 0x5678
        };
        enc.finish(post).unwrap()
    };
    let nc = ltx::HEADER_FLAG_NO_CHECKSUM;
    vec![
        (
            "enc-snapshot-512".into(),
            file(nc, 512, 4, 1, 1, &[1, 2, 3, 4]),
        ),
        (
            "enc-snapshot-checksummed-1024".into(),
            file(0, 1024, 3, 1, 5, &[1, 2, 3]),
        ),
        (
            "enc-incremental-512".into(),
            file(nc, 512, 9, 6, 6, &[2, 7, 9]),
        ),
        (
            "enc-incremental-checksummed-4096".into(),
            file(0, 4096, 2, 7, 9, &[2]),
        ),
        ("enc-empty-incremental".into(), file(nc, 512, 4, 8, 8, &[])),
    ]
}

fn page_size_selector(page_size: u32) -> u8 {
    (page_size / 512).trailing_zeros() as u8
}

#[test]
#[ignore = "regenerates the checked-in seeds; needs the Go litestream 0.5.17"]
fn write_seed_corpus() {
    use testkit::golitestream::{ReplicaTarget, ReplicateOpts, Replicator};
    let mut files = encoder_seeds();
    // Go-made files: a snapshot, level-0 files and a level-1 compaction of a small database.
    let dir = tempfile::tempdir().unwrap();
    let primary = testkit::PrimaryDb::create(&dir.path().join("app.db")).unwrap();
    primary
        .exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let target = ReplicaTarget::file(&dir.path().join("replica")).unwrap();
    let mut rep = Replicator::start(primary.path(), target, ReplicateOpts::default()).unwrap();
    for i in 0..4 {
        primary
            .exec(&format!(
                "INSERT INTO t(v) VALUES (printf('%.*c', 300, 'a{i}'))"
            ))
            .unwrap();
        rep.sync().unwrap();
    }
    rep.wait_for_level(1, std::time::Duration::from_secs(30))
        .unwrap();
    rep.stop(std::time::Duration::from_secs(5)).unwrap();
    let ltx_dir = dir.path().join("replica/ltx");
    for level in ["0", "1", "9"] {
        for p in inputs(&ltx_dir.join(level)).into_iter().take(3) {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.len() <= 16 * 1024 {
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                files.push((format!("go-l{level}-{name}"), bytes));
            }
        }
    }
    let corpus = root().join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let d = corpus.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    for (name, bytes) in &files {
        write("ltx_file", name, bytes);
        let file = ltx::decode_file(bytes).expect("seed decodes");
        let tail = bytes.len().min(160);
        let mut idx = ((bytes.len() - tail) as u64).to_be_bytes().to_vec();
        idx.extend_from_slice(&bytes[bytes.len() - tail..]);
        write("ltx_page_index", name, &idx);
        for e in file.index.iter().take(2) {
            let mut frame = vec![page_size_selector(file.header.page_size)];
            frame.extend_from_slice(&bytes[e.offset as usize..e.end() as usize]);
            write("ltx_page_frame", &format!("{name}-page{}", e.pgno), &frame);
        }
    }
    for (i, text) in [
        "latest",
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.250+02:00",
        "5 minutes ago",
        "yesterday",
        "00000000000000a3",
        "0x1f",
        "1m30s",
        "500ms",
        "2",
        "64MB",
        "67108864",
        "512KiB",
        "true",
        "off",
    ]
    .iter()
    .enumerate()
    {
        write("pragma_values", &format!("text-{i:02}"), text.as_bytes());
    }
}
