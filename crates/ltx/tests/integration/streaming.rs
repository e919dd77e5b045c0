//! Files of any size: the encoder streamed into a writer and the merge reading its inputs by
//! range agree byte for byte with the in-memory forms, and a failing writer or source is an
//! error, never a short file taken for a whole one.

use crate::common;

use std::io::Write;

use common::random_page;
use ltx::{
    compact, compact_into, verify_file, Encoder, Error, FileSource, Header, PageReader,
    HEADER_FLAG_NO_CHECKSUM,
};

const PS: u32 = 4096;

fn header(min: u64, max: u64, commit: u32) -> Header {
    Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: PS,
        commit,
        min_txid: min,
        max_txid: max,
        timestamp_ms: max as i64,
        ..Header::default()
    }
}

fn file(min: u64, max: u64, commit: u32, pgnos: impl Iterator<Item = u32>) -> Vec<u8> {
    let mut enc = Encoder::new(header(min, max, commit)).unwrap();
    for p in pgnos {
        enc.add_page(p, &random_page(u64::from(p) * 31 + max, PS as usize))
            .unwrap();
    }
    enc.finish(0).unwrap()
}

/// A source that is not in memory: every range is copied into the reader's buffer, and reads
/// are counted so the test can tell it read by range.
struct Copied<'a> {
    bytes: &'a [u8],
    reads: std::cell::Cell<usize>,
    largest: std::cell::Cell<usize>,
}

impl FileSource for &Copied<'_> {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn bytes<'s>(&'s self, offset: u64, len: usize, buf: &'s mut Vec<u8>) -> ltx::Result<&'s [u8]> {
        self.reads.set(self.reads.get() + 1);
        self.largest.set(self.largest.get().max(len));
        let start = offset as usize;
        let Some(range) = self.bytes.get(start..start + len) else {
            return Err(Error::Input(format!("{offset}+{len} is past the end")));
        };
        buf.clear();
        buf.extend_from_slice(range);
        Ok(buf)
    }
}

fn copied(bytes: &[u8]) -> Copied<'_> {
    Copied {
        bytes,
        reads: Default::default(),
        largest: Default::default(),
    }
}

#[test]
fn a_streamed_file_is_the_in_memory_file() {
    let in_memory = file(1, 1, 300, 1..=300);
    let mut enc = Encoder::to_writer(header(1, 1, 300), std::io::Cursor::new(Vec::new())).unwrap();
    for p in 1..=300 {
        enc.add_page(p, &random_page(u64::from(p) * 31 + 1, PS as usize))
            .unwrap();
    }
    let streamed = enc.finish(0).unwrap().into_inner();
    assert_eq!(streamed, in_memory);
    verify_file(&streamed).unwrap();
}

#[test]
fn merging_ranged_inputs_into_a_writer_matches_the_in_memory_merge() {
    let inputs = [
        // 4 MiB: far more than any one read.
        file(1, 1, 1000, 1..=1000),
        file(
            2,
            2,
            260,
            (150..=260)
                .step_by(3)
                .chain(201..=260)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter(),
        ),
        file(3, 3, 240, (1..=240).step_by(7)),
    ];
    let want = compact(&inputs, HEADER_FLAG_NO_CHECKSUM).unwrap();
    let sources: Vec<Copied> = inputs.iter().map(|b| copied(b)).collect();
    let (header, out) = compact_into(
        sources.iter().collect(),
        HEADER_FLAG_NO_CHECKSUM,
        Vec::new(),
    )
    .unwrap();
    assert_eq!((header, out), (want.header, want.bytes));
    for (s, b) in sources.iter().zip(&inputs) {
        // Read frame by frame: the largest read is the first look at the tail (64 KiB).
        assert!(s.reads.get() > 10, "{} reads", s.reads.get());
        let largest = s.largest.get();
        assert!(largest <= 64 << 10, "largest read {largest} of {}", b.len());
    }
}

#[test]
fn a_corrupt_ranged_input_fails_like_an_in_memory_one() {
    let mut bad = file(1, 1, 50, 1..=50);
    let n = bad.len();
    bad[n / 2] ^= 0x40;
    let in_memory = PageReader::new(&bad[..]).and_then(PageReader::finish);
    let c = copied(&bad);
    let ranged = PageReader::new(&c).and_then(PageReader::finish);
    assert!(in_memory.is_err());
    assert_eq!(ranged.unwrap_err(), in_memory.unwrap_err());
}

struct Failing(usize);

impl Write for Failing {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.0 < b.len() {
            return Err(std::io::Error::other("disk full"));
        }
        self.0 -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_or_source_is_an_error() {
    let mut enc = Encoder::to_writer(header(1, 1, 20), Failing(3000)).unwrap();
    let err = (1..=20)
        .map(|p| enc.add_page(p, &random_page(u64::from(p), PS as usize)))
        .find_map(Result::err)
        .unwrap();
    assert!(
        matches!(&err, Error::Output(m) if m.contains("disk full")),
        "{err}"
    );

    let whole = file(1, 1, 20, 1..=20);
    let c = copied(&whole[..whole.len() - 1]);
    assert!(PageReader::new(&c).is_err());
}
