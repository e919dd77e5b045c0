//! `Remote::put_new_file` and `Remote::get_to_file` against every backend: a file larger than
//! `single_put_max` goes through a multipart upload to a staging key and a create-only copy,
//! which must keep the fence of `put_new` (a second writer gets `Ok(false)` and overwrites
//! nothing) and leave no staging object behind.

use std::io::{Read, Seek, SeekFrom, Write};

use replica::layout::Layout;
use replica::remote::Remote;
use testkit::backend::{Backend, Kind};

/// S3 and GCS refuse parts under 5 MiB except the last, so the parts are that size.
const PART: usize = 5 << 20;

/// Three parts, the last one short.
const LARGE: usize = 2 * PART + 123_457;

const SMALL: usize = 100_000;

/// Incompressible bytes, different for each seed.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn local_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn remote(backend: &Backend) -> Remote {
    let target = backend.target("db").unwrap();
    let env = target.env();
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let loc = replica::location::connect_with(&target.url(), &lookup, true).unwrap();
    let mut r = Remote::new(loc);
    r.single_put_max = 1 << 20;
    r.part_size = PART;
    r
}

/// The object read back both ways: whole, and streamed into a file after a prefix already
/// there (the download starts at the file's position).
async fn read_back(r: &Remote, key: &object_store::path::Path) -> Vec<u8> {
    let whole = r.get_whole(key).await.unwrap().to_vec();
    let mut out = tempfile::tempfile().unwrap();
    out.write_all(b"prefix").unwrap();
    let n = r.get_to_file(key, &mut out).await.unwrap();
    assert_eq!(n, whole.len() as u64);
    assert_eq!(out.stream_position().unwrap(), 6 + n);
    let mut streamed = Vec::new();
    out.seek(SeekFrom::Start(0)).unwrap();
    out.read_to_end(&mut streamed).unwrap();
    assert_eq!(&streamed[..6], b"prefix");
    assert_eq!(streamed[6..], whole[..], "get_to_file and get_whole differ");
    whole
}

fn check(kind: Kind) {
    let backend = Backend::start(kind).unwrap();
    let r = remote(&backend);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let large = random_bytes(LARGE, 1);
        let key = Layout::Ltx.file_key(&r.root, 0, 1, 1);
        let first = local_file(dir.path(), "first.ltx", &large);
        let puts = r.stats.snapshot().put;
        assert!(r.put_new_file(&key, &first).await.unwrap());
        // Initiate, three parts, complete, copy: the multipart path was taken.
        assert_eq!(r.stats.snapshot().put - puts, 6);
        assert_eq!(read_back(&r, &key).await, large);

        // A second writer with other bytes is refused, and the first file is intact.
        let other = local_file(dir.path(), "other.ltx", &random_bytes(LARGE + 7, 2));
        assert!(!r.put_new_file(&key, &other).await.unwrap());
        assert_eq!(read_back(&r, &key).await, large);

        // Nothing staged is left, after the upload that won and the one that lost.
        let staged = r.list(&r.staging_prefix(), None).await.unwrap();
        assert!(staged.is_empty(), "staging objects left: {staged:?}");

        // A small file goes in one PUT, with the same fence.
        let small = random_bytes(SMALL, 3);
        let small_key = Layout::Ltx.file_key(&r.root, 0, 2, 2);
        let puts = r.stats.snapshot().put;
        let f = local_file(dir.path(), "small.ltx", &small);
        assert!(r.put_new_file(&small_key, &f).await.unwrap());
        assert_eq!(r.stats.snapshot().put - puts, 1);
        assert_eq!(read_back(&r, &small_key).await, small);
        let f = local_file(dir.path(), "small2.ltx", &random_bytes(SMALL, 4));
        assert!(!r.put_new_file(&small_key, &f).await.unwrap());
        assert_eq!(read_back(&r, &small_key).await, small);

        // Exactly the two files exist under the root.
        let mut keys: Vec<String> = r
            .list(&r.root, None)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        keys.sort();
        assert_eq!(keys, [key.to_string(), small_key.to_string()]);
    });
}

#[test]
fn large_and_small_files_are_created_once_on_files() {
    check(Kind::File);
}

#[test]
fn large_and_small_files_are_created_once_on_s3() {
    check(Kind::S3);
}

#[test]
fn large_and_small_files_are_created_once_on_gcs() {
    check(Kind::Gcs);
}

#[test]
fn large_and_small_files_are_created_once_on_azure() {
    check(Kind::Azure);
}

/// Writers racing for one key through multipart uploads: one creates it, the others get
/// `Ok(false)`, and the object is the winner's file.
fn race(kind: Kind) {
    let backend = Backend::start(kind).unwrap();
    let r = remote(&backend);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let key = Layout::Ltx.file_key(&r.root, 0, 1, 1);
        let contents: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(LARGE, 10 + i)).collect();
        let files: Vec<_> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| local_file(dir.path(), &format!("w{i}.ltx"), c))
            .collect();
        let tasks: Vec<_> = files
            .iter()
            .map(|f| {
                let (r, key, f) = (r.clone(), key.clone(), f.clone());
                tokio::spawn(async move { r.put_new_file(&key, &f).await.unwrap() })
            })
            .collect();
        let mut created = Vec::new();
        for t in tasks {
            created.push(t.await.unwrap());
        }
        let winners: Vec<usize> = (0..created.len()).filter(|&i| created[i]).collect();
        assert_eq!(winners.len(), 1, "created: {created:?}");
        assert_eq!(r.get_whole(&key).await.unwrap(), contents[winners[0]]);
        let staged = r.list(&r.staging_prefix(), None).await.unwrap();
        assert!(staged.is_empty(), "staging objects left: {staged:?}");
    });
}

#[test]
fn racing_writers_create_once_on_files() {
    race(Kind::File);
}

#[test]
fn racing_writers_create_once_on_s3() {
    race(Kind::S3);
}

#[test]
fn racing_writers_create_once_on_gcs() {
    race(Kind::Gcs);
}

#[test]
fn racing_writers_create_once_on_azure() {
    race(Kind::Azure);
}
