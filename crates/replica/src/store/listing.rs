//! What a listing says: the LTX files under a replica prefix, each named by its level and TXID
//! range, with the size and time the store reports.

use std::collections::HashMap;

use object_store::path::Path;

use crate::error::Result;
use crate::store::layout::{parse_key, Layout};
use crate::store::remote::Remote;

/// What the engine knows about one LTX object from a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Level: 0 for raw syncs, 1..=8 compactions, 9 snapshots.
    pub level: u8,
    /// First TXID covered.
    pub min_txid: u64,
    /// Last TXID covered.
    pub max_txid: u64,
    /// Object size in bytes.
    pub size: u64,
    /// Best known creation time in ms since the epoch: the LTX header timestamp when it has been
    /// read, else the listing's last-modified time.
    pub created_ms: i64,
}

/// Identity of an LTX file within a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// Level 0..=9.
    pub level: u8,
    /// First TXID.
    pub min_txid: u64,
    /// Last TXID.
    pub max_txid: u64,
}

impl From<&FileInfo> for FileKey {
    fn from(f: &FileInfo) -> Self {
        FileKey {
            level: f.level,
            min_txid: f.min_txid,
            max_txid: f.max_txid,
        }
    }
}

pub(crate) struct Listing {
    pub(crate) layout: Option<Layout>,
    pub(crate) files: Vec<FileInfo>,
}

/// One recursive listing of the replica prefix: every level, both layouts.
pub(crate) async fn list_all(
    remote: &Remote,
    header_ts: &HashMap<FileKey, i64>,
) -> Result<Listing> {
    let root = &remote.root;
    let listed = remote.list(root, None).await?;
    let mut by_layout: HashMap<Layout, Vec<FileInfo>> = HashMap::new();
    for m in &listed {
        if let Some((layout, f)) = file_info(root, m, header_ts) {
            by_layout.entry(layout).or_default().push(f);
        }
    }
    let newest = |fs: &Vec<FileInfo>| fs.iter().map(|f| f.max_txid).max().unwrap_or(0);
    let layout = by_layout
        .iter()
        .max_by_key(|(_, fs)| newest(fs))
        .map(|(l, _)| *l);
    if by_layout.len() > 1 {
        tracing::warn!(url = %remote.display, chosen = ?layout, "replica holds LTX files in both key layouts; reading the one with the newest TXID");
    }
    let files = layout
        .and_then(|l| by_layout.remove(&l))
        .unwrap_or_default();
    Ok(Listing { layout, files })
}

/// A listing's last-modified time as an upper bound of the file's creation time. Azure and S3
/// list whole seconds (and so do GCS emulators): a time with nothing below the second may have
/// been cut down to it, and only the end of that second is then sure to come after the upload.
/// Local files carry nanoseconds; one whose time merely falls on a whole millisecond is taken
/// as it is (judging by milliseconds made one such file in a thousand look up to a second
/// younger than it was).
fn listed_upper_bound(m: &object_store::ObjectMeta) -> i64 {
    let ms = m.last_modified.timestamp_millis();
    if m.last_modified.timestamp_subsec_nanos() == 0 {
        ms + 999
    } else {
        ms
    }
}

pub(crate) fn file_info(
    root: &Path,
    m: &object_store::ObjectMeta,
    header_ts: &HashMap<FileKey, i64>,
) -> Option<(Layout, FileInfo)> {
    let (layout, level, min_txid, max_txid) = parse_key(root, &m.location)?;
    if min_txid == 0 || min_txid > max_txid {
        return None;
    }
    let key = FileKey {
        level,
        min_txid,
        max_txid,
    };
    let created_ms = header_ts
        .get(&key)
        .copied()
        .unwrap_or_else(|| listed_upper_bound(m));
    Some((
        layout,
        FileInfo {
            level,
            min_txid,
            max_txid,
            size: m.size,
            created_ms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed_at(t: &str) -> object_store::ObjectMeta {
        object_store::ObjectMeta {
            location: Path::from("ltx/0/0000000000000001-0000000000000001.ltx"),
            last_modified: t.parse().unwrap(),
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn only_times_cut_to_the_second_are_raised_to_its_end() {
        let ms = |t: &str| listed_at(t).last_modified.timestamp_millis();
        // Azure and S3 list whole seconds: the upload may have ended up to a second later.
        let second = "2026-12-07T10:00:00Z";
        assert_eq!(listed_upper_bound(&listed_at(second)), ms(second) + 999);
        // A local file's time in nanoseconds, on a whole millisecond or not, is taken as it is.
        for t in ["2026-12-07T10:00:00.000000500Z", "2026-12-07T10:00:00.123Z"] {
            assert_eq!(listed_upper_bound(&listed_at(t)), ms(t));
        }
    }
}
