//! Where pages lie inside LTX files, and how frames close together are fetched in one GET.

/// Where one page's frame lies. `size == 0` means the page is absent (the lock page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PageLoc {
    pub file: u32,
    pub size: u32,
    pub offset: u64,
}

/// Pages of one file, each with its frame location, in file order: what one ranged GET fetches.
pub(crate) type Run = Vec<(u32, PageLoc)>;

/// The bytes of the file that hold the frames of `run` (ascending offsets), first to last.
pub(crate) fn run_span(run: &[(u32, PageLoc)]) -> std::ops::Range<u64> {
    match (run.first(), run.last()) {
        (Some((_, first)), Some((_, last))) => first.offset..last.offset + u64::from(last.size),
        _ => 0..0,
    }
}

/// Splits `pages` of one file, sorted by offset, into runs of one ranged GET each: a frame
/// joins the run before it while the bytes between them are at most `gap` (downloaded and
/// discarded: cheaper than another round trip) and the run spans at most `max_bytes`.
pub(crate) fn coalesce(pages: Run, gap: u64, max_bytes: u64) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (pgno, loc) in pages {
        match runs.last_mut() {
            Some(run)
                if loc.offset <= run_span(run).end + gap
                    && loc.offset + u64::from(loc.size) - run_span(run).start <= max_bytes =>
            {
                run.push((pgno, loc))
            }
            _ => runs.push(vec![(pgno, loc)]),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, size: u32) -> PageLoc {
        PageLoc {
            file: 0,
            size,
            offset,
        }
    }

    #[test]
    fn coalesce_joins_across_small_gaps_within_the_size_bound() {
        let pages: Run = vec![
            (1, at(100, 50)),   // 100..150
            (2, at(150, 50)),   // adjacent
            (3, at(260, 40)),   // 110-byte gap: joins with gap 200
            (4, at(900, 100)),  // 600-byte gap: a new run
            (5, at(1000, 600)), // adjacent, but the run would span 700 > 650
        ];
        let runs = coalesce(pages, 200, 650);
        let pgnos: Vec<Vec<u32>> = runs
            .iter()
            .map(|r| r.iter().map(|(p, _)| *p).collect())
            .collect();
        assert_eq!(pgnos, vec![vec![1, 2, 3], vec![4], vec![5]]);
        assert_eq!(run_span(&runs[0]), 100..300);
        assert_eq!(run_span(&runs[2]), 1000..1600);
        assert_eq!(run_span(&[]), 0..0);
    }
}
