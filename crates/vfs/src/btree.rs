//! B-tree scan detection. A scan of a table or an index reads the children of an interior page
//! one after another, and in a database grown by many small writes those children are scattered
//! over the file, so the engine's sequential read-ahead (next page numbers) never starts. The
//! interior page already lists them: once two of its children have been read in order, the rest
//! are handed to the engine to fetch in the background.
//!
//! Only this module knows the SQLite page format; the engine just gets page numbers.

/// Interior pages followed at once: one per level of the tree being scanned, plus slack for a
/// join that scans two trees.
const TRACKED: usize = 6;

/// Children read in order before the rest are prefetched. Two is never reached by a point
/// lookup, which reads one child per interior page.
const STREAK: u32 = 2;

#[derive(Debug)]
struct Interior {
    pgno: u32,
    children: Vec<u32>,
    /// Index of the child a scan would read next.
    next: usize,
    streak: u32,
    prefetched: bool,
    /// Children (themselves interior pages) whose own children were handed to the engine,
    /// `children[..below_until]`.
    below_until: usize,
}

/// What to fetch ahead of a scan.
#[derive(Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// These pages.
    Pages(Vec<u32>),
    /// The children of these interior pages: the leaves of many subtrees, known at once.
    Below(Vec<u32>),
}

/// Per-connection detector.
#[derive(Debug, Default)]
pub struct ScanDetector {
    tracked: Vec<Interior>,
}

impl ScanDetector {
    /// Called with every page read. Returns what to prefetch when this read continues an
    /// in-order walk over an interior page's children. `room` says how many pages may be
    /// fetched ahead now (asked only when a walk goes one level down from an upper level).
    ///
    /// A walk over the children of a lower interior page prefetches its remaining children. A
    /// walk over the children of an upper one (whose children are interior pages) prefetches
    /// the children of its next children, as many subtrees as `room` holds, and again once the
    /// walk is half way through them: the leaves of many subtrees known at once can share
    /// large GETs, the hundred leaves of one cannot.
    pub fn observe(
        &mut self,
        pgno: u32,
        page: &[u8],
        room: impl FnOnce() -> usize,
    ) -> Option<Prefetch> {
        let mut out = None;
        let kids = interior_children(pgno, page);
        let mut room = Some(room);
        let mut covered = false;
        for t in &mut self.tracked {
            if t.children.get(t.next) != Some(&pgno) {
                continue;
            }
            let at = t.next;
            t.next += 1;
            t.streak += 1;
            if t.streak < STREAK {
                continue;
            }
            match &kids {
                Some(grand) => {
                    let fanout = grand.len().max(1);
                    let window = room.take().map_or(1, |r| r() / fanout).max(1);
                    if at + window / 2 >= t.below_until {
                        let from = at.max(t.below_until);
                        let to = (at + window).min(t.children.len());
                        if from < to {
                            out = Some(Prefetch::Below(t.children[from..to].to_vec()));
                            t.below_until = to;
                        }
                    }
                    covered |= at < t.below_until;
                }
                None if !t.prefetched => {
                    t.prefetched = true;
                    let rest = t.children[t.next..].to_vec();
                    if !rest.is_empty() && out.is_none() {
                        out = Some(Prefetch::Pages(rest));
                    }
                }
                None => {}
            }
        }
        if let Some(children) = kids {
            self.tracked.retain(|t| t.pgno != pgno);
            if self.tracked.len() == TRACKED {
                self.tracked.remove(0);
            }
            self.tracked.push(Interior {
                pgno,
                children,
                next: 0,
                streak: 0,
                // Its children are being fetched already.
                prefetched: covered,
                below_until: 0,
            });
        }
        out
    }
}

/// The child page numbers of a B-tree interior page, in key order (the cells' left children,
/// then the right-most pointer); `None` for any other page or a malformed one.
pub fn interior_children(pgno: u32, page: &[u8]) -> Option<Vec<u32>> {
    // Page 1 starts with the 100-byte database header.
    let h = if pgno == 1 { 100 } else { 0 };
    // 0x05: table interior, 0x02: index interior.
    if !matches!(page.get(h), Some(0x05) | Some(0x02)) {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_be_bytes(page.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_be_bytes(page.get(o..o + 4)?.try_into().ok()?));
    let cells = u16_at(h + 3)? as usize;
    let mut children = Vec::with_capacity(cells + 1);
    for i in 0..cells {
        let cell = u16_at(h + 12 + 2 * i)? as usize;
        children.push(u32_at(cell)?);
    }
    children.push(u32_at(h + 8)?);
    children.iter().all(|&c| c != 0).then_some(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4096-byte interior page (type `kind`) with these children, cells packed at the end.
    fn interior(kind: u8, header_at: usize, children: &[u32]) -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        let h = header_at;
        page[h] = kind;
        let (right, left) = children.split_last().unwrap();
        page[h + 3..h + 5].copy_from_slice(&(left.len() as u16).to_be_bytes());
        page[h + 8..h + 12].copy_from_slice(&right.to_be_bytes());
        for (i, c) in left.iter().enumerate() {
            let cell = 4096 - 8 * (i + 1);
            page[h + 12 + 2 * i..h + 14 + 2 * i].copy_from_slice(&(cell as u16).to_be_bytes());
            page[cell..cell + 4].copy_from_slice(&c.to_be_bytes());
        }
        page
    }

    fn no_room() -> usize {
        unreachable!("room is asked only one level above the leaves")
    }

    #[test]
    fn parses_table_and_index_interiors_and_page_one() {
        let kids = [7, 3, 90, 12];
        assert_eq!(
            interior_children(5, &interior(0x05, 0, &kids)),
            Some(kids.to_vec())
        );
        assert_eq!(
            interior_children(5, &interior(0x02, 0, &kids)),
            Some(kids.to_vec())
        );
        assert_eq!(
            interior_children(1, &interior(0x05, 100, &kids)),
            Some(kids.to_vec())
        );
        // Leaves and pages 1 read without the header offset are not interiors.
        assert_eq!(interior_children(5, &interior(0x0d, 0, &kids)), None);
        assert_eq!(interior_children(2, &interior(0x05, 100, &kids)), None);
        // A cell pointer past the end of the page is malformed, not a panic.
        let mut bad = interior(0x05, 0, &kids);
        bad[12..14].copy_from_slice(&4095u16.to_be_bytes());
        assert_eq!(interior_children(5, &bad), None);
    }

    #[test]
    fn in_order_walk_prefetches_the_rest_once() {
        let mut d = ScanDetector::default();
        let kids = [40, 11, 73, 25, 60];
        let leaf = vec![0x0du8; 4096];
        assert_eq!(d.observe(9, &interior(0x05, 0, &kids), no_room), None);
        assert_eq!(d.observe(40, &leaf, no_room), None);
        assert_eq!(
            d.observe(11, &leaf, no_room),
            Some(Prefetch::Pages(vec![73, 25, 60]))
        );
        assert_eq!(d.observe(73, &leaf, no_room), None, "prefetched once");
    }

    #[test]
    fn point_lookups_do_not_prefetch() {
        let mut d = ScanDetector::default();
        let root = interior(0x05, 0, &[2, 3, 4, 5]);
        let leaf = vec![0x0du8; 4096];
        // Descents to children 2 (index 2) then 0: never two in order.
        for child in [4, 2, 5, 3] {
            assert_eq!(d.observe(9, &root, no_room), None);
            assert_eq!(d.observe(child, &leaf, no_room), None);
        }
    }

    #[test]
    fn a_walk_over_upper_children_prefetches_below_them_in_windows() {
        let mut d = ScanDetector::default();
        // A root over 10 interior pages (100..110), each over 4 leaves.
        let subtrees: Vec<u32> = (100..110).collect();
        let lower = |i: u32| interior(0x05, 0, &[i * 10, i * 10 + 1, i * 10 + 2, i * 10 + 3]);
        let leaf = vec![0x0du8; 4096];
        // Room for 12 pages: 3 subtrees of 4 leaves at a time.
        let room = || 12;
        assert_eq!(d.observe(2, &interior(0x05, 0, &subtrees), room), None);
        // The first subtree: its leaves are prefetched the ordinary way.
        assert_eq!(d.observe(100, &lower(100), room), None);
        assert_eq!(d.observe(1000, &leaf, room), None);
        assert_eq!(
            d.observe(1001, &leaf, room),
            Some(Prefetch::Pages(vec![1002, 1003]))
        );
        assert_eq!(d.observe(1002, &leaf, room), None);
        assert_eq!(d.observe(1003, &leaf, room), None);
        // The walk reaches the second subtree: the leaves of three subtrees from there.
        assert_eq!(
            d.observe(101, &lower(101), room),
            Some(Prefetch::Below(vec![101, 102, 103]))
        );
        // Its leaves are covered: no ordinary prefetch of them.
        for l in 1010..1014 {
            assert_eq!(d.observe(l, &leaf, room), None);
        }
        assert_eq!(d.observe(102, &lower(102), room), None);
        for l in 1020..1024 {
            assert_eq!(d.observe(l, &leaf, room), None);
        }
        // Past half way through the window (103 of 101..104): the next one, from where the
        // last ended.
        assert_eq!(
            d.observe(103, &lower(103), room),
            Some(Prefetch::Below(vec![104, 105]))
        );
    }
}
