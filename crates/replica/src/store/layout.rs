//! Where LTX files live under a replica prefix.
//!
//! Litestream uses two key layouts (litestream#1426): S3 and OSS put level `L` under `<path>/<L as
//! %04x>/`, every other backend under `<path>/ltx/<L decimal>/`. We never assume one from the
//! scheme: the layout is detected from the keys that a listing returns.

use object_store::path::Path;

/// Highest compaction level; level 9 holds snapshots.
pub const SNAPSHOT_LEVEL: u8 = 9;

/// The two key layouts Litestream writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `<path>/0000/<min>-<max>.ltx` (S3, OSS).
    Hex,
    /// `<path>/ltx/0/<min>-<max>.ltx` (file, GCS, Azure, SFTP, WebDAV, NATS).
    Ltx,
}

impl Layout {
    /// The prefix holding the files of `level`.
    pub fn level_prefix(self, root: &Path, level: u8) -> Path {
        match self {
            Layout::Hex => root.clone().join(format!("{level:04x}").as_str()),
            Layout::Ltx => root.clone().join("ltx").join(level.to_string().as_str()),
        }
    }

    /// The key of an LTX file.
    pub fn file_key(self, root: &Path, level: u8, min: u64, max: u64) -> Path {
        self.level_prefix(root, level)
            .join(ltx::format_filename(min, max).as_str())
    }
}

/// Parses a key below `root` into its layout, level and TXID range. Keys of other shapes
/// (other databases' files, Litestream's own metadata) give `None`.
pub fn parse_key(root: &Path, key: &Path) -> Option<(Layout, u8, u64, u64)> {
    let rest: Vec<_> = key.prefix_match(root)?.collect();
    let (layout, level) = match rest.as_slice() {
        [dir, _] => {
            let dir = dir.as_ref();
            if dir.len() != 4 || !dir.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            (Layout::Hex, u8::from_str_radix(dir, 16).ok()?)
        }
        [ltx, dir, _] if ltx.as_ref() == "ltx" => {
            let dir = dir.as_ref();
            if dir.is_empty() || dir.len() > 2 || !dir.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Layout::Ltx, dir.parse().ok()?)
        }
        _ => return None,
    };
    if level > SNAPSHOT_LEVEL {
        return None;
    }
    let name = rest.last()?.as_ref();
    let (min, max) = ltx::parse_filename(name)?;
    Some((layout, level, min, max))
}

/// The key layout a new replica gets: Litestream's per backend (litestream#1426).
pub(crate) fn layout_for_url(url: &str) -> Layout {
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    if scheme == "s3" || scheme == "oss" {
        Layout::Hex
    } else {
        Layout::Ltx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_round_trip() {
        let root = Path::from("backups/app");
        for layout in [Layout::Hex, Layout::Ltx] {
            for level in [0u8, 1, 3, 9] {
                let key = layout.file_key(&root, level, 5, 0x1f);
                assert_eq!(
                    parse_key(&root, &key),
                    Some((layout, level, 5, 0x1f)),
                    "{key}"
                );
            }
        }
        assert_eq!(
            Layout::Hex.file_key(&root, 9, 1, 2).as_ref(),
            "backups/app/0009/0000000000000001-0000000000000002.ltx"
        );
        assert_eq!(
            Layout::Ltx.file_key(&root, 9, 1, 2).as_ref(),
            "backups/app/ltx/9/0000000000000001-0000000000000002.ltx"
        );
    }

    #[test]
    fn foreign_keys_are_ignored() {
        let root = Path::from("app");
        for key in [
            "app/0000/garbage.ltx",
            "app/000g/0000000000000001-0000000000000001.ltx",
            "app/ltx/10/0000000000000001-0000000000000001.ltx",
            "app/000a/0000000000000001-0000000000000001.ltx",
            "app/0000/0000000000000001-0000000000000001.ltx.tmp",
            "other/0000/0000000000000001-0000000000000001.ltx",
            "app/generations/x/0000000000000001-0000000000000001.ltx",
        ] {
            assert_eq!(parse_key(&root, &Path::from(key)), None, "{key}");
        }
    }
}
