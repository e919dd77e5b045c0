//! Merging a run of consecutive files into one (compaction), as Go's `ltx.Compactor` does.
//!
//! The merge streams: each input is read one page at a time with a [`PageReader`], and a heap
//! over the inputs' next page numbers yields pages in ascending order. Only the newest input's
//! image of a page is kept; the older images are decoded into a scratch buffer only because
//! the file checksum covers them. Memory beyond the inputs' and the output's bytes is two pages
//! plus each input's page index, whatever the number of pages, which is what lets a snapshot of
//! a large database go through it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::file::PageReader;
use crate::header::{Header, HEADER_FLAG_NO_CHECKSUM};
use crate::source::FileSource;

/// The file [`compact`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// Its header (also the first 100 bytes of `bytes`).
    pub header: Header,
    /// The whole file.
    pub bytes: Vec<u8>,
}

/// Merges `inputs`, whole LTX files ordered by TXID, into one file covering the first input's
/// `min_txid` to the last input's `max_txid`.
///
/// Each input must continue the previous one: start at or before its `max_txid + 1` and end
/// after it (overlaps are allowed, gaps are not), with the same page size. Every page comes
/// from the newest input holding it. Pages above the last input's commit are dropped, and so
/// are pages a later input truncates away; such a page that lies below the final commit again
/// is an error ([`Error::CompactTruncatedPage`]), since the database regrew without it being
/// written. If the first input starts at TXID 1 the output is a snapshot and must hold every
/// page 1..=commit except the lock page ([`Error::CompactMissingPage`] otherwise).
///
/// The header follows Go's `Compactor.Compact`: `flags` as given (Litestream passes
/// [`HEADER_FLAG_NO_CHECKSUM`]), page size of the inputs, commit of the last input, pre-apply
/// checksum of the first, post-apply checksum of the last, WAL fields and node id zero. Two
/// deliberate differences: with `HEADER_FLAG_NO_CHECKSUM` both checksums are 0 whatever the
/// inputs carry (Go fails on checksum-tracking inputs there), and the timestamp is the newest
/// input's rather than the last input's; the two agree whenever the clock did not step back,
/// and the newest one never makes the file look older than a transaction it holds, which
/// time-travel by timestamp relies on.
///
/// Every input is fully verified (file checksum included); an error about one input is
/// [`Error::CompactInput`] with its position.
pub fn compact<B: AsRef<[u8]>>(inputs: &[B], flags: u32) -> Result<Compacted> {
    let sources: Vec<&[u8]> = inputs.iter().map(AsRef::as_ref).collect();
    let (header, bytes) = compact_into(sources, flags, Vec::new())?;
    Ok(Compacted { header, bytes })
}

/// [`compact`] for inputs of any size: each is read by range from its [`FileSource`] and the
/// output is streamed into `out`, so memory holds a few pages and the inputs' page indexes.
/// Returns the output's header and `out`; after an error `out` holds an incomplete file.
pub fn compact_into<S: FileSource, W: Write>(
    inputs: Vec<S>,
    flags: u32,
    out: W,
) -> Result<(Header, W)> {
    if inputs.is_empty() {
        return Err(Error::CompactNoInputs);
    }
    let in_input = |input: usize| {
        move |e: Error| Error::CompactInput {
            input,
            source: Box::new(e),
        }
    };
    let mut readers = inputs
        .into_iter()
        .enumerate()
        .map(|(i, s)| PageReader::new(s).map_err(in_input(i)))
        .collect::<Result<Vec<_>>>()?;
    let headers: Vec<Header> = readers.iter().map(|r| r.header().clone()).collect();
    check_sequence(&headers)?;

    let no_checksum = flags & HEADER_FLAG_NO_CHECKSUM != 0;
    if !no_checksum {
        if let Some(input) = headers.iter().position(Header::no_checksum) {
            return Err(Error::CompactChecksumUntracked { input });
        }
    }
    let (first, last) = (&headers[0], &headers[headers.len() - 1]);
    let header = Header {
        flags,
        page_size: first.page_size,
        commit: last.commit,
        min_txid: first.min_txid,
        max_txid: last.max_txid,
        timestamp_ms: headers.iter().map(|h| h.timestamp_ms).max().unwrap_or(0),
        pre_apply_checksum: if no_checksum {
            0
        } else {
            first.pre_apply_checksum
        },
        ..Header::default()
    };
    let snapshot = header.is_snapshot();
    let lock = header.lock_pgno();
    let commit = header.commit;
    let mut enc = Encoder::to_writer(header, out)?;

    // kept_below[i]: the smallest database size after input i was applied, i.e. the highest
    // page of input i that survives every later truncation.
    let mut kept_below = vec![0u32; headers.len()];
    let mut floor = u32::MAX;
    for (i, h) in headers.iter().enumerate().rev() {
        floor = floor.min(h.commit);
        kept_below[i] = floor;
    }

    // Smallest pgno first; among inputs holding the same page, the newest (highest index).
    let mut heap: BinaryHeap<Reverse<(u32, Reverse<usize>)>> = readers
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.peek_pgno().map(|p| Reverse((p, Reverse(i)))))
        .collect();
    let page_size = first.page_size as usize;
    let mut page = vec![0u8; page_size];
    let mut scratch = vec![0u8; page_size];
    let mut next_expected = 1u32;
    while let Some(Reverse((pgno, Reverse(newest)))) = heap.pop() {
        read_expecting(&mut readers[newest], &mut page, pgno).map_err(in_input(newest))?;
        if let Some(p) = readers[newest].peek_pgno() {
            heap.push(Reverse((p, Reverse(newest))));
        }
        // Older images of the same page: read (the checksum covers them) and discarded.
        while let Some(&Reverse((p, Reverse(i)))) = heap.peek() {
            if p != pgno {
                break;
            }
            heap.pop();
            read_expecting(&mut readers[i], &mut scratch, pgno).map_err(in_input(i))?;
            if let Some(p) = readers[i].peek_pgno() {
                heap.push(Reverse((p, Reverse(i))));
            }
        }

        if pgno > kept_below[newest] {
            if pgno <= commit {
                return Err(Error::CompactTruncatedPage {
                    pgno,
                    input: newest,
                    truncated_to: kept_below[newest],
                    commit,
                });
            }
            continue;
        }
        if snapshot && pgno != next_expected {
            return Err(Error::CompactMissingPage {
                pgno: next_expected,
                commit,
            });
        }
        enc.add_page(pgno, &page)?;
        next_expected = after(pgno, lock);
    }
    if snapshot && next_expected <= commit {
        return Err(Error::CompactMissingPage {
            pgno: next_expected,
            commit,
        });
    }

    // As in Go, inputs are closed (their checksums checked) after the pages are merged.
    let mut post_apply = 0;
    for (i, r) in readers.into_iter().enumerate() {
        let summary = r.finish().map_err(in_input(i))?;
        post_apply = summary.trailer.post_apply_checksum;
    }
    let header = enc.header().clone();
    let out = enc.finish(if no_checksum { 0 } else { post_apply })?;
    Ok((header, out))
}

/// Same page size everywhere, and each input continues the previous one (Go's
/// `IsContiguous`: starts at or before `prev.max + 1`, ends after `prev.max`).
fn check_sequence(headers: &[Header]) -> Result<()> {
    for (i, pair) in headers.windows(2).enumerate() {
        let (prev, cur) = (&pair[0], &pair[1]);
        if cur.page_size != headers[0].page_size {
            return Err(Error::CompactPageSize {
                input: i + 1,
                expected: headers[0].page_size,
                got: cur.page_size,
            });
        }
        if cur.min_txid > prev.max_txid.saturating_add(1) || cur.max_txid <= prev.max_txid {
            return Err(Error::NonContiguous {
                input: i + 1,
                prev_min: prev.min_txid,
                prev_max: prev.max_txid,
                min: cur.min_txid,
                max: cur.max_txid,
            });
        }
    }
    Ok(())
}

/// Reads the next page of `r`, which the heap says is `pgno`.
fn read_expecting<S: FileSource>(r: &mut PageReader<S>, page: &mut [u8], pgno: u32) -> Result<()> {
    match r.next_page(page)? {
        Some(got) if got == pgno => Ok(()),
        // next_page checks each frame against the index entry peek_pgno returned.
        got => Err(Error::InvalidIndex(format!(
            "the index announces page {pgno} but the next frame holds {got:?}"
        ))),
    }
}

/// The page a snapshot holds after `pgno`: the next one, skipping the lock page.
fn after(pgno: u32, lock: u32) -> u32 {
    let next = pgno.saturating_add(1);
    if next == lock {
        next.saturating_add(1)
    } else {
        next
    }
}
