//! The pages a write transaction has written and not committed yet: in memory up to a budget,
//! then in an unnamed file beside the write buffer, so that a transaction of any size holds a
//! bounded amount of memory. Nothing here needs to survive a crash: a transaction that did not
//! commit is lost by definition, and the unnamed file goes with the process.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;
use replica::TxPages;

/// Pages kept in memory before the rest go to the spill file.
const MEM_BUDGET: usize = 16 << 20;

#[derive(Debug)]
enum Slot {
    Mem(Vec<u8>),
    /// Offset in the spill file.
    Spilled(u64),
}

/// Pages written by the transaction in progress, not recorded yet.
#[derive(Debug)]
pub struct Dirty {
    pages: BTreeMap<u32, Slot>,
    /// Database size in pages.
    pub size: u32,
    /// The smallest size during the transaction: pages above it not written since read as
    /// zeros.
    pub low: u32,
    pub page_size: u32,
    in_memory: usize,
    /// Where the spill file goes (the write buffer's directory), and the file once made.
    spill_dir: Option<PathBuf>,
    spill: Option<File>,
    spill_end: u64,
}

impl Dirty {
    /// A transaction on a database of `size` pages of `page_size` bytes.
    pub fn new(size: u32, page_size: u32, spill_dir: Option<PathBuf>) -> Dirty {
        Dirty {
            pages: BTreeMap::new(),
            size,
            low: size,
            page_size,
            in_memory: 0,
            spill_dir,
            spill: None,
            spill_end: 0,
        }
    }

    /// Whether no page was written.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Keeps page `pgno` (one page of bytes).
    pub fn put(&mut self, pgno: u32, data: &[u8]) -> std::io::Result<()> {
        match self.pages.get_mut(&pgno) {
            Some(Slot::Mem(v)) => v.copy_from_slice(data),
            Some(Slot::Spilled(at)) => {
                let at = *at;
                self.spill_file()?.write_all_at(data, at)?;
            }
            None if self.in_memory + data.len() <= MEM_BUDGET => {
                self.in_memory += data.len();
                self.pages.insert(pgno, Slot::Mem(data.to_vec()));
            }
            None => {
                let at = self.spill_end;
                self.spill_file()?.write_all_at(data, at)?;
                self.spill_end += data.len() as u64;
                self.pages.insert(pgno, Slot::Spilled(at));
            }
        }
        self.size = self.size.max(pgno);
        Ok(())
    }

    /// Copies bytes `in_page..` of page `pgno` into `out`; `false` when the transaction did not
    /// write that page.
    pub fn read(&self, pgno: u32, in_page: usize, out: &mut [u8]) -> std::io::Result<bool> {
        match self.pages.get(&pgno) {
            None => Ok(false),
            Some(Slot::Mem(v)) => {
                out.copy_from_slice(&v[in_page..in_page + out.len()]);
                Ok(true)
            }
            Some(Slot::Spilled(at)) => {
                let f = self.spill.as_ref().ok_or_else(no_spill)?;
                f.read_exact_at(out, at + in_page as u64)?;
                Ok(true)
            }
        }
    }

    /// The database shrinks (or grows) to `pages` pages.
    pub fn truncate(&mut self, pages: u32) {
        let cut: Vec<u32> = self.pages.range(pages + 1..).map(|(p, _)| *p).collect();
        for p in cut {
            if let Some(Slot::Mem(v)) = self.pages.remove(&p) {
                self.in_memory -= v.len();
            }
        }
        self.size = pages;
        self.low = self.low.min(pages);
    }

    /// Rewrites page `pgno`, if written, with `f`.
    pub fn update(&mut self, pgno: u32, f: impl FnOnce(&mut [u8])) -> std::io::Result<()> {
        let mut page = vec![0u8; self.page_size as usize];
        if self.read(pgno, 0, &mut page)? {
            f(&mut page);
            self.put(pgno, &page)?;
        }
        Ok(())
    }

    /// The pages to commit, ascending, without `skip` (the lock page), read one at a time.
    pub fn into_pages(self, skip: u32) -> TxPages<'static> {
        let count = self.pages.len() - usize::from(self.pages.contains_key(&skip));
        let (spill, page_size) = (self.spill, self.page_size as usize);
        let pages = self.pages.into_iter().filter(move |(p, _)| *p != skip).map(
            move |(p, slot)| match slot {
                Slot::Mem(v) => Ok((p, Bytes::from(v))),
                Slot::Spilled(at) => {
                    let mut v = vec![0u8; page_size];
                    let f = spill.as_ref().ok_or_else(no_spill)?;
                    f.read_exact_at(&mut v, at)?;
                    Ok((p, Bytes::from(v)))
                }
            },
        );
        TxPages {
            count,
            pages: Box::new(pages),
        }
    }

    fn spill_file(&mut self) -> std::io::Result<&File> {
        if self.spill.is_none() {
            let f = match &self.spill_dir {
                Some(dir) => tempfile::tempfile_in(dir)?,
                None => tempfile::tempfile()?,
            };
            self.spill = Some(f);
        }
        self.spill.as_ref().ok_or_else(no_spill)
    }
}

fn no_spill() -> std::io::Error {
    std::io::Error::other("a spilled page has no spill file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_beyond_the_budget_spill_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ps = 4096u32;
        let n = (MEM_BUDGET / ps as usize) as u32 + 100;
        let mut d = Dirty::new(0, ps, Some(dir.path().to_path_buf()));
        let page = |p: u32, v: u8| vec![(p as u8) ^ v; ps as usize];
        for p in (1..=n).rev() {
            d.put(p, &page(p, 1)).unwrap();
        }
        assert!(d.spill.is_some(), "spilled past the budget");
        assert!(d.in_memory <= MEM_BUDGET);
        // Rewrites land in place, spilled or not.
        d.put(1, &page(1, 2)).unwrap();
        d.put(n, &page(n, 2)).unwrap();
        let mut half = vec![0u8; 100];
        assert!(d.read(1, 50, &mut half).unwrap());
        assert_eq!(half, page(1, 2)[50..150]);
        d.truncate(n - 1);
        let lock = 3;
        let tx = d.into_pages(lock);
        assert_eq!(tx.count, n as usize - 2);
        let got: Vec<(u32, Bytes)> = tx.pages.map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), n as usize - 2);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(got[0], (1, Bytes::from(page(1, 2))));
        assert_eq!(got[2], (4, Bytes::from(page(4, 1))));
        assert_eq!(got.last().unwrap().0, n - 1);
    }
}
