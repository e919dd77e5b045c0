//! One LTX file's page index in compact form: about 2 bytes a page for a dense file of pages up
//! to 32 KiB, where the decoded `Vec<ltx::PageIndexEntry>` costs 16.
//!
//! What makes it small is what the format guarantees and [`FrameIndex::new`] checks again: the
//! frames lie back to back in ascending page order. So a frame's offset is the sum of the sizes
//! before it (kept as a checkpoint every [`STRIDE`] frames), and the page numbers of a snapshot
//! are one or two runs (`1..=commit` minus the lock page).

use std::mem::size_of;

/// Frames between two offset checkpoints: a lookup adds at most `STRIDE - 1` sizes, and the
/// checkpoints cost `8 / STRIDE` bytes a page.
const STRIDE: usize = 64;

/// Where each page of one file lies: page numbers, frame sizes and sparse offsets.
#[derive(Debug)]
pub struct FrameIndex {
    pgnos: Pgnos,
    sizes: Sizes,
    /// Offset of frame `j * STRIDE`.
    checkpoints: Box<[u64]>,
}

/// The file's page numbers, ascending.
#[derive(Debug)]
enum Pgnos {
    /// Runs of consecutive pages, each as (its first page, the index of that page's frame):
    /// 8 bytes a run, so chosen when the runs average at least two pages.
    Runs(Box<[(u32, u32)]>),
    /// Scattered pages: 4 bytes each.
    List(Box<[u32]>),
}

/// Frame sizes, in file order.
#[derive(Debug)]
enum Sizes {
    /// Every frame fits in 16 bits (always so for pages up to 32 KiB: LZ4's bound on a page
    /// plus the frame header stays below 64 KiB).
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl FrameIndex {
    /// Compacts a decoded index. The frames must be in strictly ascending page order and
    /// contiguous (each starts where the one before ends): the LTX decoders check both, and
    /// they are what lets offsets be derived; an index that breaks them is refused with the
    /// reason.
    pub fn new(entries: &[ltx::PageIndexEntry]) -> std::result::Result<FrameIndex, String> {
        let mut b = FrameIndexBuilder::default();
        for e in entries {
            b.push(e)?;
        }
        Ok(b.finish())
    }

    /// Number of frames (pages) in the file.
    pub fn len(&self) -> usize {
        match &self.sizes {
            Sizes::Narrow(s) => s.len(),
            Sizes::Wide(s) => s.len(),
        }
    }

    /// Whether the file holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where page `pgno`'s frame lies: (offset, size); `None` when the file lacks the page.
    pub fn find(&self, pgno: u32) -> Option<(u64, u32)> {
        let i = match &self.pgnos {
            Pgnos::Runs(runs) => {
                let r = runs
                    .partition_point(|&(first, _)| first <= pgno)
                    .checked_sub(1)?;
                let &(first, at) = runs.get(r)?;
                let end = runs
                    .get(r + 1)
                    .map_or(self.len(), |&(_, next)| next as usize);
                let i = at as usize + (pgno - first) as usize;
                (i < end).then_some(i)?
            }
            Pgnos::List(list) => list.binary_search(&pgno).ok()?,
        };
        self.frame(i)
    }

    /// Offset and size of frame `i`.
    fn frame(&self, i: usize) -> Option<(u64, u32)> {
        let from = i - i % STRIDE;
        let start = *self.checkpoints.get(i / STRIDE)?;
        let (before, size) = match &self.sizes {
            Sizes::Narrow(s) => (
                s.get(from..i)?.iter().map(|&x| u64::from(x)).sum::<u64>(),
                u32::from(*s.get(i)?),
            ),
            Sizes::Wide(s) => (
                s.get(from..i)?.iter().map(|&x| u64::from(x)).sum::<u64>(),
                *s.get(i)?,
            ),
        };
        Some((start + before, size))
    }

    /// The page numbers, ascending.
    pub fn pgnos(&self) -> impl Iterator<Item = u32> + '_ {
        let n = self.len() as u32;
        let (runs, list): (&[(u32, u32)], &[u32]) = match &self.pgnos {
            Pgnos::Runs(r) => (r, &[]),
            Pgnos::List(l) => (&[], l),
        };
        expand(runs, n).chain(list.iter().copied())
    }

    /// Every frame in file order, as the decoded index listed it.
    pub fn entries(&self) -> impl Iterator<Item = ltx::PageIndexEntry> + '_ {
        let (narrow, wide): (&[u16], &[u32]) = match &self.sizes {
            Sizes::Narrow(s) => (s, &[]),
            Sizes::Wide(s) => (&[], s),
        };
        let sizes = narrow
            .iter()
            .map(|&s| u32::from(s))
            .chain(wide.iter().copied());
        let start = self.checkpoints.first().copied().unwrap_or(0);
        self.pgnos().zip(sizes).scan(start, |offset, (pgno, size)| {
            let e = ltx::PageIndexEntry {
                pgno,
                offset: *offset,
                size,
            };
            *offset += u64::from(size);
            Some(e)
        })
    }

    /// Bytes this index holds, itself included.
    pub fn resident_bytes(&self) -> usize {
        let pgnos = match &self.pgnos {
            Pgnos::Runs(r) => r.len() * size_of::<(u32, u32)>(),
            Pgnos::List(l) => l.len() * size_of::<u32>(),
        };
        let sizes = match &self.sizes {
            Sizes::Narrow(s) => s.len() * size_of::<u16>(),
            Sizes::Wide(s) => s.len() * size_of::<u32>(),
        };
        size_of::<Self>() + pgnos + sizes + self.checkpoints.len() * size_of::<u64>()
    }
}

/// The page numbers of `runs` (first page, index of its frame), of `n` frames in all.
fn expand(runs: &[(u32, u32)], n: u32) -> impl Iterator<Item = u32> + '_ {
    runs.iter().enumerate().flat_map(move |(r, &(first, at))| {
        let end = runs.get(r + 1).map_or(n, |&(_, next)| next);
        (0..end - at).map(move |d| first + d)
    })
}

/// Builds a [`FrameIndex`] one entry at a time, as [`ltx::visit_page_index`] parses them, so
/// that the decoded entries (16 bytes a page) are never all held: what it holds is the compact
/// form, plus, for a file of scattered pages, its runs (8 bytes a page) until `finish`.
#[derive(Default)]
pub struct FrameIndexBuilder {
    runs: Vec<(u32, u32)>,
    checkpoints: Vec<u64>,
    narrow: Vec<u16>,
    /// Every size so far, once one did not fit in 16 bits (`narrow` is then empty).
    wide: Option<Vec<u32>>,
    prev: Option<ltx::PageIndexEntry>,
    len: u32,
}

impl FrameIndexBuilder {
    /// Adds the next frame in file order; refuses one that breaks page order or contiguity.
    pub fn push(&mut self, e: &ltx::PageIndexEntry) -> std::result::Result<(), String> {
        if e.pgno == 0 {
            return Err("page 0 in the page index".into());
        }
        if let Some(p) = &self.prev {
            if e.pgno <= p.pgno {
                return Err(format!(
                    "the page index is not in ascending page order ({} then {})",
                    p.pgno, e.pgno
                ));
            }
            if e.offset != p.end() {
                return Err(format!(
                    "page {}'s frame starts at offset {}, not where page {}'s ends ({}): frames must be contiguous",
                    e.pgno,
                    e.offset,
                    p.pgno,
                    p.end()
                ));
            }
        }
        let i = self.len;
        if i == u32::MAX {
            return Err("more than 4 294 967 295 pages in one file".into());
        }
        if (i as usize).is_multiple_of(STRIDE) {
            self.checkpoints.push(e.offset);
        }
        if self
            .prev
            .is_none_or(|p| p.pgno.checked_add(1) != Some(e.pgno))
        {
            self.runs.push((e.pgno, i));
        }
        match (&mut self.wide, u16::try_from(e.size)) {
            (Some(w), _) => w.push(e.size),
            (None, Ok(narrow)) => self.narrow.push(narrow),
            (None, Err(_)) => {
                let mut w: Vec<u32> = std::mem::take(&mut self.narrow)
                    .into_iter()
                    .map(u32::from)
                    .collect();
                w.push(e.size);
                self.wide = Some(w);
            }
        }
        self.prev = Some(*e);
        self.len = i + 1;
        Ok(())
    }

    /// The compact index of the frames pushed.
    pub fn finish(self) -> FrameIndex {
        let n = self.len;
        let pgnos = if self.runs.len() * 2 <= n as usize {
            Pgnos::Runs(self.runs.into_boxed_slice())
        } else {
            Pgnos::List(expand(&self.runs, n).collect())
        };
        let sizes = match self.wide {
            Some(w) => Sizes::Wide(w.into_boxed_slice()),
            None => Sizes::Narrow(self.narrow.into_boxed_slice()),
        };
        FrameIndex {
            pgnos,
            sizes,
            checkpoints: self.checkpoints.into_boxed_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltx::PageIndexEntry;

    /// Contiguous frames from offset 100 for `pages` (pgno, size).
    fn entries(pages: &[(u32, u32)]) -> Vec<PageIndexEntry> {
        let mut offset = 100;
        pages
            .iter()
            .map(|&(pgno, size)| {
                let e = PageIndexEntry { pgno, offset, size };
                offset += u64::from(size);
                e
            })
            .collect()
    }

    fn same(pages: &[(u32, u32)]) {
        let e = entries(pages);
        let index = FrameIndex::new(&e).unwrap();
        assert_eq!(index.len(), e.len());
        assert_eq!(index.entries().collect::<Vec<_>>(), e);
        for x in &e {
            assert_eq!(
                index.find(x.pgno),
                Some((x.offset, x.size)),
                "page {}",
                x.pgno
            );
        }
        let max = e.last().map_or(0, |x| x.pgno);
        for pgno in 0..=max + 2 {
            if !e.iter().any(|x| x.pgno == pgno) {
                assert_eq!(index.find(pgno), None, "page {pgno}");
            }
        }
    }

    #[test]
    fn dense_sparse_wide_and_empty_indexes_give_back_every_frame() {
        // A snapshot around a lock page: two runs, more than one checkpoint.
        let dense: Vec<(u32, u32)> = (1..300u32)
            .filter(|&p| p != 150)
            .map(|p| (p, 50 + p % 7))
            .collect();
        same(&dense);
        // Scattered pages: a plain list.
        same(&[(3, 40), (9, 41), (10, 42), (200, 43), (70_000, 44)]);
        // A frame above 64 KiB (a 64 KiB page that did not compress).
        same(&[(1, 70_000), (2, 20), (3, 65_535)]);
        // ...and one after narrow frames, which then widen.
        same(&[(1, 20), (2, 30), (5, 70_000), (6, 10)]);
        same(&[]);
    }

    #[test]
    fn unordered_or_gapped_indexes_are_refused_with_the_reason() {
        let mut e = entries(&[(1, 10), (2, 10), (3, 10)]);
        (e[1].pgno, e[2].pgno) = (3, 2);
        let err = FrameIndex::new(&e).unwrap_err();
        assert!(err.contains("ascending"), "{err}");
        let mut e = entries(&[(1, 10), (2, 10)]);
        e[1].offset += 1;
        let err = FrameIndex::new(&e).unwrap_err();
        assert!(err.contains("contiguous"), "{err}");
        let err = FrameIndex::new(&entries(&[(0, 10)])).unwrap_err();
        assert!(err.contains("page 0"), "{err}");
    }

    #[test]
    fn a_dense_index_costs_about_two_bytes_a_page() {
        let pages: Vec<(u32, u32)> = (1..=100_000u32).map(|p| (p, 1000 + p % 3000)).collect();
        let index = FrameIndex::new(&entries(&pages)).unwrap();
        let per_page = index.resident_bytes() as f64 / pages.len() as f64;
        assert!(per_page < 2.2, "{per_page} bytes a page");
    }
}
