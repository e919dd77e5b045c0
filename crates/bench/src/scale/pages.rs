//! The pages of the scale suite's database, computed one at a time from their number, so that
//! a database of any size can be written without existing anywhere as a file.
//!
//! The database: page 1 (header and `sqlite_schema`), then the leaves of one table
//! `t(id INTEGER PRIMARY KEY, body TEXT)`, one row per leaf (`id` = leaf number, from 1), then
//! the interior pages level by level up to the root, which is the last page. Page numbers skip
//! SQLite's lock page (the page at byte offset 1 GiB), which no b-tree may use. Every `body` is
//! `r<id> v<version> ` followed by a repeated phrase, so that a leaf compresses about 100:1.

use ltx::lock_pgno;

/// Page size of the database.
pub const PAGE_SIZE: usize = 4096;
/// Children per interior page. SQLite fits about 370 (4-byte child, varint key of up to 5
/// bytes, 2-byte cell pointer); fewer keeps every page well within its size.
pub const FANOUT: u64 = 360;
/// Length of each row's `body`: below the 4061 bytes a 4 KiB leaf keeps without overflow.
pub const BODY_LEN: usize = 3000;
/// The table's `CREATE` statement, as `sqlite_schema` holds it.
pub const TABLE_SQL: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)";
/// What `SQLITE_VERSION_NUMBER` the header claims wrote the file last.
const SQLITE_VERSION: u32 = 3_046_001;
const FILLER: &[u8] = b"the quick brown fox jumps over the lazy dog; ";

/// Where each page of a database of `leaves` rows lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Rows, one per leaf.
    pub leaves: u64,
    /// Pages per b-tree level, leaves first, the root (one page) last.
    pub levels: Vec<u64>,
    /// Pages in the database, the lock page included if the file reaches it.
    pub total_pages: u32,
}

impl Layout {
    /// The layout of a table of `leaves` rows (at least 2, so that the root is interior).
    pub fn new(leaves: u64) -> anyhow::Result<Layout> {
        anyhow::ensure!(leaves >= 2, "the scale database needs at least 2 leaves");
        let mut levels = vec![leaves];
        while let Some(&n) = levels.last().filter(|&&n| n > 1) {
            levels.push(n.div_ceil(FANOUT));
        }
        let used: u64 = levels.iter().sum();
        let last = nth_page(used - 1);
        let total_pages =
            u32::try_from(last).map_err(|_| anyhow::anyhow!("{leaves} leaves: too many pages"))?;
        Ok(Layout {
            leaves,
            levels,
            total_pages,
        })
    }

    /// Page number of node `j` of `level` (0 = leaves).
    pub fn pgno(&self, level: usize, j: u64) -> u32 {
        let before: u64 = self.levels[..level].iter().sum();
        nth_page(before + j) as u32
    }

    /// The root page.
    pub fn root(&self) -> u32 {
        self.total_pages
    }

    /// Bytes of the database file.
    pub fn db_bytes(&self) -> u64 {
        u64::from(self.total_pages) * PAGE_SIZE as u64
    }

    /// The leaf holding row `id` (1-based).
    pub fn leaf_pgno(&self, id: u64) -> u32 {
        self.pgno(0, id - 1)
    }

    /// The contents of page `pgno` (never the lock page), `row_version(id)` giving the version
    /// of each row: the change counter of page 1 is `row_version(0)`.
    pub fn page(&self, pgno: u32, row_version: impl Fn(u64) -> u64, out: &mut [u8; PAGE_SIZE]) {
        out.fill(0);
        if pgno == 1 {
            return page_one(self, row_version(0), out);
        }
        // Invert nth_page: the k-th b-tree page, then its level and index in the level.
        let lock = lock_pgno(PAGE_SIZE as u32);
        let mut k = u64::from(pgno) - 2;
        if pgno > lock {
            k -= 1;
        }
        let mut level = 0;
        while k >= self.levels[level] {
            k -= self.levels[level];
            level += 1;
        }
        if level == 0 {
            let id = k + 1;
            leaf(id, row_version(id), 0, out);
        } else {
            self.interior(level, k, out);
        }
    }

    /// Children of interior node `j` of `level`, first and last (inclusive): `FANOUT` each,
    /// except that the last node never gets a single child (SQLite holds an interior page
    /// without cells corrupt): the one before it then gives it one.
    fn children(&self, level: usize, j: u64) -> (u64, u64) {
        let (below, n) = (self.levels[level - 1], self.levels[level]);
        let mut first = j * FANOUT;
        let mut last = ((j + 1) * FANOUT).min(below) - 1;
        if below % FANOUT == 1 {
            if j + 2 == n {
                last -= 1;
            } else if j + 1 == n {
                first -= 1;
            }
        }
        (first, last)
    }

    /// The largest row id under node `j` of `level`.
    fn max_id(&self, level: usize, j: u64) -> u64 {
        if level == 0 {
            j + 1
        } else {
            self.max_id(level - 1, self.children(level, j).1)
        }
    }

    /// Interior node `j` of `level`: a cell per child but the last, keyed by the largest row
    /// id under it; the last child is the right-most pointer.
    fn interior(&self, level: usize, j: u64, out: &mut [u8; PAGE_SIZE]) {
        let (first, last) = self.children(level, j);
        let n_cells = (last - first) as usize;
        out[0] = 0x05;
        out[3..5].copy_from_slice(&(n_cells as u16).to_be_bytes());
        out[8..12].copy_from_slice(&self.pgno(level - 1, last).to_be_bytes());
        let mut end = PAGE_SIZE;
        for (i, child) in (first..last).enumerate() {
            let mut cell = [0u8; 13];
            cell[..4].copy_from_slice(&self.pgno(level - 1, child).to_be_bytes());
            let n = 4 + put_varint(&mut cell[4..], self.max_id(level - 1, child));
            end -= n;
            out[end..end + n].copy_from_slice(&cell[..n]);
            out[12 + 2 * i..14 + 2 * i].copy_from_slice(&(end as u16).to_be_bytes());
        }
        out[5..7].copy_from_slice(&(end as u16).to_be_bytes());
    }
}

/// The `k`-th b-tree page after page 1 (k from 0): page `2 + k`, past the lock page.
fn nth_page(k: u64) -> u64 {
    let p = 2 + k;
    if p >= u64::from(lock_pgno(PAGE_SIZE as u32)) {
        p + 1
    } else {
        p
    }
}

/// The `body` of row `id` at `version`.
pub fn body(id: u64, version: u64) -> Vec<u8> {
    let mut b = format!("r{id} v{version} ").into_bytes();
    while b.len() < BODY_LEN {
        let n = (BODY_LEN - b.len()).min(FILLER.len());
        b.extend_from_slice(&FILLER[..n]);
    }
    b
}

/// The version a `body` was written at (what the follow reads back).
pub fn body_version(body: &str) -> Option<u64> {
    body.split_whitespace()
        .nth(1)?
        .strip_prefix('v')?
        .parse()
        .ok()
}

/// A table leaf holding row `id` at `version`, its b-tree header at `hdr` (100 on page 1).
fn leaf(id: u64, version: u64, hdr: usize, out: &mut [u8; PAGE_SIZE]) {
    let body = body(id, version);
    // Record: header (size, NULL for the rowid alias, TEXT of the body), then the body.
    let mut rec = Vec::with_capacity(BODY_LEN + 8);
    let mut types = vec![0u8];
    push_varint(&mut types, 2 * body.len() as u64 + 13);
    rec.push((types.len() + 1) as u8);
    rec.extend_from_slice(&types);
    rec.extend_from_slice(&body);
    write_cell(out, hdr, id, &rec);
}

/// Writes a one-cell table leaf: header at `hdr`, the cell at the end of the page.
fn write_cell(out: &mut [u8; PAGE_SIZE], hdr: usize, rowid: u64, record: &[u8]) {
    let mut cell = Vec::with_capacity(record.len() + 18);
    push_varint(&mut cell, record.len() as u64);
    push_varint(&mut cell, rowid);
    cell.extend_from_slice(record);
    let start = PAGE_SIZE - cell.len();
    out[start..].copy_from_slice(&cell);
    out[hdr] = 0x0d;
    out[hdr + 3..hdr + 5].copy_from_slice(&1u16.to_be_bytes());
    out[hdr + 5..hdr + 7].copy_from_slice(&(start as u16).to_be_bytes());
    out[hdr + 8..hdr + 10].copy_from_slice(&(start as u16).to_be_bytes());
}

/// Page 1: the database header, then `sqlite_schema` with the table's row.
fn page_one(layout: &Layout, change_counter: u64, out: &mut [u8; PAGE_SIZE]) {
    let counter = (change_counter as u32).wrapping_add(1);
    out[..16].copy_from_slice(b"SQLite format 3\0");
    out[16..18].copy_from_slice(&(PAGE_SIZE as u16).to_be_bytes());
    out[18] = 1; // rollback journal: what both VFS present to SQLite
    out[19] = 1;
    out[21] = 64;
    out[22] = 32;
    out[23] = 32;
    out[24..28].copy_from_slice(&counter.to_be_bytes());
    out[28..32].copy_from_slice(&layout.total_pages.to_be_bytes());
    out[40..44].copy_from_slice(&1u32.to_be_bytes()); // schema cookie
    out[44..48].copy_from_slice(&4u32.to_be_bytes()); // schema format
    out[56..60].copy_from_slice(&1u32.to_be_bytes()); // UTF-8
    out[92..96].copy_from_slice(&counter.to_be_bytes()); // the page count above is valid
    out[96..100].copy_from_slice(&SQLITE_VERSION.to_be_bytes());
    // sqlite_schema(type, name, tbl_name, rootpage, sql): text, text, text, 4-byte int, text.
    let texts: [&[u8]; 3] = [b"table", b"t", b"t"];
    let mut types = Vec::new();
    for t in texts {
        push_varint(&mut types, 2 * t.len() as u64 + 13);
    }
    types.push(4);
    push_varint(&mut types, 2 * TABLE_SQL.len() as u64 + 13);
    let mut rec = vec![(types.len() + 1) as u8];
    rec.extend_from_slice(&types);
    for t in texts {
        rec.extend_from_slice(t);
    }
    rec.extend_from_slice(&layout.root().to_be_bytes());
    rec.extend_from_slice(TABLE_SQL.as_bytes());
    write_cell(out, 100, 1, &rec);
}

/// SQLite's varint (big-endian, 7 bits a byte, up to 9 bytes); returns its length.
fn put_varint(out: &mut [u8], v: u64) -> usize {
    let mut tmp = Vec::with_capacity(9);
    push_varint(&mut tmp, v);
    out[..tmp.len()].copy_from_slice(&tmp);
    tmp.len()
}

fn push_varint(out: &mut Vec<u8>, v: u64) {
    if v > 0x00ff_ffff_ffff_ffff {
        // Nine bytes: eight of 7 bits, then a full byte. Row ids here never get there.
        let mut bytes = [0u8; 9];
        bytes[8] = v as u8;
        let mut rest = v >> 8;
        for b in bytes[..8].iter_mut().rev() {
            *b = (rest as u8 & 0x7f) | 0x80;
            rest >>= 7;
        }
        out.extend_from_slice(&bytes);
        return;
    }
    let mut groups = Vec::with_capacity(8);
    let mut rest = v;
    loop {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        let more = if i + 1 < groups.len() { 0x80 } else { 0 };
        out.push(g | more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_page_is_the_lock_page_and_every_page_is_used_once() {
        let lock = u64::from(lock_pgno(PAGE_SIZE as u32));
        // Enough leaves to cross the lock page.
        let layout = Layout::new(lock + 5000).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (level, &n) in layout.levels.iter().enumerate() {
            for j in 0..n {
                let p = layout.pgno(level, j);
                assert_ne!(u64::from(p), lock);
                assert!(seen.insert(p), "page {p} used twice");
            }
        }
        assert_eq!(seen.len() as u64 + 2, u64::from(layout.total_pages));
        assert_eq!(layout.levels.last(), Some(&1));
        assert_eq!(layout.pgno(layout.levels.len() - 1, 0), layout.root());
    }

    #[test]
    fn varints_match_sqlite() {
        let mut v = Vec::new();
        push_varint(&mut v, 127);
        assert_eq!(v, [0x7f]);
        v.clear();
        push_varint(&mut v, 128);
        assert_eq!(v, [0x81, 0x00]);
        v.clear();
        push_varint(&mut v, 26_000_000);
        assert_eq!(v.len(), 4);
        v.clear();
        push_varint(&mut v, u64::MAX);
        assert_eq!(v, [0xff; 9]);
    }

    #[test]
    fn bodies_carry_their_version() {
        let b = body(42, 7);
        assert_eq!(b.len(), BODY_LEN);
        assert_eq!(body_version(std::str::from_utf8(&b).unwrap()), Some(7));
    }
}
