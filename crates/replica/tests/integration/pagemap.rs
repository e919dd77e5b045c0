//! What the page map costs, measured by a counting allocator: resident bytes a page, and the
//! bytes one poll's apply allocates. Allocation counts, never timings, are asserted; the
//! ignored `measure` test prints the figures quoted in docs/architecture.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use replica::meta::FileMeta;
use replica::store::listing::FileInfo;
use replica::Version;

/// Counts the bytes this thread allocates and frees, so tests running beside it in other
/// threads do not disturb the figures.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    static FREED: Cell<u64> = const { Cell::new(0) };
}

fn count(cell: &'static std::thread::LocalKey<Cell<u64>>, bytes: usize) {
    // `try_with`: a thread being torn down still frees memory.
    let _ = cell.try_with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the counters
// are thread-local `Cell`s with const initialisers, which neither allocate nor reenter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCATED, layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(&FREED, layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&FREED, layout.size());
        count(&ALLOCATED, new_size);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocated, freed) by this thread so far.
fn counters() -> (u64, u64) {
    (ALLOCATED.with(Cell::get), FREED.with(Cell::get))
}

/// Runs `f`; returns its result, the bytes it allocated in all, and the bytes it left allocated.
fn measured<T>(f: impl FnOnce() -> T) -> (T, u64, i64) {
    let (a0, f0) = counters();
    let out = f();
    let (a1, f1) = counters();
    (out, a1 - a0, (a1 - a0) as i64 - (f1 - f0) as i64)
}

const PAGE_SIZE: u32 = 4096;

/// Frame sizes of compressible 4 KiB pages, varied so nothing is uniform.
fn frame_size(pgno: u32, txid: u64) -> u32 {
    600 + (pgno.wrapping_mul(2_654_435_761) ^ txid as u32) % 3000
}

/// The decoded index of a file holding `pages`: contiguous frames from the header on.
fn entries(pages: impl Iterator<Item = u32>, txid: u64) -> Vec<ltx::PageIndexEntry> {
    let mut offset = ltx::HEADER_SIZE as u64;
    pages
        .map(|pgno| {
            let size = frame_size(pgno, txid);
            let e = ltx::PageIndexEntry { pgno, offset, size };
            offset += u64::from(size);
            e
        })
        .collect()
}

/// A snapshot of `n` pages (the lock page skipped) or, for `txid > 1`, a level-0 file.
fn meta(txid: u64, commit: u32, index: &[ltx::PageIndexEntry]) -> Arc<FileMeta> {
    let (level, min) = if txid == 1 { (9, 1) } else { (0, txid) };
    let info = FileInfo {
        level,
        min_txid: min,
        max_txid: txid,
        size: index.last().map_or(0, |e| e.end()) + 1000,
        created_ms: txid as i64,
    };
    let header = ltx::Header::unchecksummed(PAGE_SIZE, commit, min, txid, txid as i64);
    let path = format!("ltx/{level}/{min:016x}-{txid:016x}.ltx").into();
    Arc::new(FileMeta::new(txid, &info, path, header, index).unwrap())
}

fn snapshot_index(n: u32) -> Vec<ltx::PageIndexEntry> {
    let lock = ltx::lock_pgno(PAGE_SIZE);
    entries((1..=n).filter(|&p| p != lock), 1)
}

/// The pages a poll's file changes: `k` spread over the database.
fn changed_pages(n: u32, k: u32, txid: u64) -> Vec<ltx::PageIndexEntry> {
    let lock = ltx::lock_pgno(PAGE_SIZE);
    let mut pages: Vec<u32> = (0..k)
        .map(|i| 1 + (i * (n / k) + (txid as u32 * 7919) % (n / k)) % n)
        .filter(|&p| p != lock)
        .collect();
    pages.sort_unstable();
    pages.dedup();
    entries(pages.into_iter(), txid)
}

#[test]
fn the_index_stays_under_8_bytes_a_page_while_following() {
    let n = 1_000_000u32;
    let polls = 200u64;
    // The decoded indexes exist before the measure starts and go after it: what is counted is
    // only what the metas and versions keep.
    let base = snapshot_index(n);
    let incr: Vec<_> = (2..polls + 2).map(|t| changed_pages(n, 50, t)).collect();
    let (versions, _, live) = measured(|| {
        let mut v = Version::build(&[meta(1, n, &base)]).unwrap();
        let mut kept = vec![v.clone()];
        for (i, index) in incr.iter().enumerate() {
            v = v.apply(&[meta(i as u64 + 2, n, index)]).unwrap();
            // Readers pinning old versions: every tenth stays alive.
            if i % 10 == 0 {
                kept.push(v.clone());
            }
        }
        kept.push(v);
        kept
    });
    let per_page = live as f64 / f64::from(n);
    assert!(
        per_page <= 8.0,
        "{per_page:.2} bytes a page for {} versions",
        versions.len()
    );
    // Once the readers let go of the old versions, what is left is the newest's, and the
    // accounting method tells the truth about it.
    let mut versions = versions;
    let newest = versions.pop().unwrap();
    let ((), _, released) = measured(|| drop(versions));
    let live = live + released;
    assert_eq!(newest.txid(), polls + 1);
    assert_eq!(newest.files().len() as u64, polls + 1);
    let resident = newest.resident_bytes() as f64;
    eprintln!("{per_page:.2} bytes a page with old versions pinned; newest alone {live} bytes, resident_bytes {resident}");
    assert!(
        (resident - live as f64).abs() <= 0.15 * live as f64,
        "resident_bytes says {resident}, the allocator {live}"
    );
}

#[test]
fn applying_a_small_file_allocates_for_its_pages_not_for_the_database() {
    let cost = |n: u32| {
        let base = snapshot_index(n);
        let mut v = Version::build(&[meta(1, n, &base)]).unwrap();
        // Some history first, so the changed-page map has depth.
        for t in 2..40 {
            v = v.apply(&[meta(t, n, &changed_pages(n, 200, t))]).unwrap();
        }
        let file = meta(40, n, &changed_pages(n, 10, 40));
        let (next, allocated, _) = measured(|| v.apply(&[file]).unwrap());
        assert_eq!(next.txid(), 40);
        allocated
    };
    let small = cost(64 * 1024);
    let large = cost(1_000_000);
    eprintln!("one 10-page apply allocates {small} bytes at 64 K pages, {large} at 1 M");
    // The old map copied 16 bytes a page: 16 MB here.
    assert!(
        large < 64 * 1024,
        "one 10-page apply allocated {large} bytes"
    );
    assert!(
        large <= 2 * small + 4096,
        "{large} bytes at 1 M pages against {small} at 64 K"
    );
}

/// Entries encoded as LTX writes them, with the tail `decode_page_index` reads.
fn index_tail(index: &[ltx::PageIndexEntry]) -> (u64, Vec<u8>) {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut tail = Vec::new();
    for e in index {
        varint(&mut tail, u64::from(e.pgno));
        varint(&mut tail, e.offset);
        varint(&mut tail, u64::from(e.size));
    }
    tail.push(0);
    let index_len = tail.len() as u64;
    tail.extend_from_slice(&index_len.to_be_bytes());
    tail.extend_from_slice(&[0; 16]);
    let block_end = index.last().map_or(ltx::HEADER_SIZE as u64, |e| e.end());
    let file_size = block_end + ltx::PAGE_HEADER_SIZE as u64 + tail.len() as u64;
    (file_size, tail)
}

/// Figures for docs/architecture.md: bytes a page and the cost of one 10-page apply, before
/// (the decoded index as `ltx` returns it, plus the old whole-vector map re-run) and after.
/// `cargo test --release -p replica --test integration pagemap -- --ignored --nocapture`
#[test]
#[ignore]
fn measure() {
    use std::time::Instant;
    #[derive(Clone, Copy, Default)]
    #[allow(dead_code)]
    struct OldLoc {
        file: u32,
        size: u32,
        offset: u64,
    }
    for n in [1_000_000u32, 8_000_000] {
        let base = snapshot_index(n);
        let (file_size, tail) = index_tail(&base);
        let (decoded, _, decoded_live) =
            measured(|| match ltx::decode_page_index(file_size, &tail).unwrap() {
                ltx::PageIndexDecode::Complete(index) => index,
                ltx::PageIndexDecode::NeedTail(_) => unreachable!(),
            });
        assert_eq!(decoded, base);
        drop(tail);
        // The former `Version::apply`: a copy of the whole array, then the file's entries.
        let old_apply = |pages: &[OldLoc], index: &[ltx::PageIndexEntry], file| {
            let mut pages = pages.to_vec();
            for e in index {
                pages[e.pgno as usize - 1] = OldLoc {
                    file,
                    size: e.size,
                    offset: e.offset,
                };
            }
            Arc::new(pages)
        };
        let empty = vec![OldLoc::default(); n as usize];
        let (old_map, _, old_map_live) = measured(|| old_apply(&empty, &decoded, 0));
        drop(empty);
        let before = (decoded_live + old_map_live) as f64 / f64::from(n);
        let incr = changed_pages(n, 10, 2);
        let reps = 20u32;
        let t = Instant::now();
        let mut old_alloc = 0;
        for _ in 0..reps {
            let (next, allocated, _) = measured(|| old_apply(&old_map, &incr, 1));
            old_alloc = allocated;
            drop(next);
        }
        let old_time = t.elapsed() / reps;
        drop((old_map, decoded));

        let (v, _, live) = measured(|| Version::build(&[meta(1, n, &base)]).unwrap());
        let after = live as f64 / f64::from(n);
        let file = meta(2, n, &incr);
        let reps = 2000u32;
        let t = Instant::now();
        let mut new_alloc = 0;
        for _ in 0..reps {
            let (next, allocated, _) = measured(|| v.apply(std::slice::from_ref(&file)).unwrap());
            new_alloc = allocated;
            drop(next);
        }
        let new_time = t.elapsed() / reps;
        println!(
            "{n} pages: index {before:.1} -> {after:.2} bytes/page (resident_bytes {:.2}); \
             one 10-page apply allocates {old_alloc} -> {new_alloc} bytes, takes {old_time:?} -> {new_time:?}",
            v.resident_bytes() as f64 / f64::from(n)
        );
    }
}
