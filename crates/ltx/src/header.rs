//! Fixed-size parts of a file (header, trailer) and the page-numbering rules tied to them.

use crate::checksum::CHECKSUM_FLAG;
use crate::error::{Error, Result};

/// First four bytes of every LTX file (formats v1, v2 and v3 alike: there is no version field).
pub const MAGIC: [u8; 4] = *b"LTX1";
/// Size of the file header.
pub const HEADER_SIZE: usize = 100;
/// Size of the trailer (post-apply checksum + file checksum).
pub const TRAILER_SIZE: usize = 16;
/// Size of a page header (pgno u32 + flags u16); also the size of the end-of-pages marker.
pub const PAGE_HEADER_SIZE: usize = 6;
/// Header flag: database checksums are not tracked (pre/post-apply must be 0). The file
/// checksum is still present. Litestream sets it on every file.
pub const HEADER_FLAG_NO_CHECKSUM: u32 = 0x2;
/// Page header flag: a u32 BE compressed size and a raw LZ4 block follow (current encoding).
/// Without it the payload is a whole LZ4 frame (legacy encoding).
pub const PAGE_HEADER_FLAG_SIZE: u16 = 0x1;
/// Length of the IndexLen field that sits between the index and the trailer.
pub const INDEX_LEN_SIZE: usize = 8;
/// Smallest possible file: header, zero page header, index terminator, IndexLen, trailer.
pub const MIN_FILE_SIZE: usize = HEADER_SIZE + PAGE_HEADER_SIZE + 1 + INDEX_LEN_SIZE + TRAILER_SIZE;

// SQLite's PENDING_BYTE: the page holding it is never written to a database file.
const PENDING_BYTE: u32 = 0x4000_0000;

/// Page number of SQLite's lock page (the page containing PENDING_BYTE) for `page_size`.
/// It is never stored in an LTX file nor part of a database checksum.
///
/// A `page_size` of 0 is treated as 1 so the function cannot panic on unvalidated input.
pub fn lock_pgno(page_size: u32) -> u32 {
    PENDING_BYTE / page_size.max(1) + 1
}

/// True for the page sizes SQLite allows: powers of two from 512 to 65536.
pub fn is_valid_page_size(page_size: u32) -> bool {
    (512..=65536).contains(&page_size) && page_size.is_power_of_two()
}

/// The 100-byte file header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Header flags; only `HEADER_FLAG_NO_CHECKSUM` is valid.
    pub flags: u32,
    /// Database page size in bytes.
    pub page_size: u32,
    /// Database size in pages after applying this file (0 = empty database).
    pub commit: u32,
    /// First transaction covered; 1 makes the file a snapshot.
    pub min_txid: u64,
    /// Last transaction covered.
    pub max_txid: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Database checksum before applying (0 on snapshots and untracked files).
    pub pre_apply_checksum: u64,
    /// Offset in the source WAL where this file's frames began (0 if not from a WAL).
    pub wal_offset: i64,
    /// Length of that WAL segment.
    pub wal_size: i64,
    /// WAL header salt-1 of the source WAL.
    pub wal_salt1: u32,
    /// WAL header salt-2 of the source WAL.
    pub wal_salt2: u32,
    /// LiteFS node id that created the file (0 = unset).
    pub node_id: u64,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

pub(crate) fn read_be_u64(b: &[u8], at: usize) -> u64 {
    be_u64(b, at)
}

pub(crate) fn read_be_u32(b: &[u8], at: usize) -> u32 {
    be_u32(b, at)
}

impl Header {
    /// The header of a file of TXIDs `min_txid..=max_txid` written without a running database
    /// checksum (`HEADER_FLAG_NO_CHECKSUM`), as Litestream 0.5 writes them and as our writer
    /// uploads them; no WAL position, node 0.
    pub fn unchecksummed(
        page_size: u32,
        commit: u32,
        min_txid: u64,
        max_txid: u64,
        timestamp_ms: i64,
    ) -> Header {
        Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            page_size,
            commit,
            min_txid,
            max_txid,
            timestamp_ms,
            ..Header::default()
        }
    }

    /// Parses and validates the header in the first 100 bytes of `bytes`.
    ///
    /// The 20 reserved bytes are ignored, as Go does (they are still covered by the file
    /// checksum when a whole file is decoded).
    pub fn decode(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_SIZE {
            return Err(Error::Truncated {
                what: "header",
                needed: HEADER_SIZE as u64,
                got: bytes.len() as u64,
            });
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::InvalidMagic);
        }
        let header = Header {
            flags: be_u32(bytes, 4),
            page_size: be_u32(bytes, 8),
            commit: be_u32(bytes, 12),
            min_txid: be_u64(bytes, 16),
            max_txid: be_u64(bytes, 24),
            timestamp_ms: be_u64(bytes, 32) as i64,
            pre_apply_checksum: be_u64(bytes, 40),
            wal_offset: be_u64(bytes, 48) as i64,
            wal_size: be_u64(bytes, 56) as i64,
            wal_salt1: be_u32(bytes, 64),
            wal_salt2: be_u32(bytes, 68),
            node_id: be_u64(bytes, 72),
        };
        header.validate()?;
        Ok(header)
    }

    /// Serializes the header (reserved bytes zero). Does not validate.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&self.flags.to_be_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_be_bytes());
        b[12..16].copy_from_slice(&self.commit.to_be_bytes());
        b[16..24].copy_from_slice(&self.min_txid.to_be_bytes());
        b[24..32].copy_from_slice(&self.max_txid.to_be_bytes());
        b[32..40].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[40..48].copy_from_slice(&self.pre_apply_checksum.to_be_bytes());
        b[48..56].copy_from_slice(&self.wal_offset.to_be_bytes());
        b[56..64].copy_from_slice(&self.wal_size.to_be_bytes());
        b[64..68].copy_from_slice(&self.wal_salt1.to_be_bytes());
        b[68..72].copy_from_slice(&self.wal_salt2.to_be_bytes());
        b[72..80].copy_from_slice(&self.node_id.to_be_bytes());
        b
    }

    /// Checks the header rules in the same order as Go's `Header.Validate`, so the first
    /// reported problem is the same one Go would report.
    ///
    /// Commit, timestamp and node id are deliberately unchecked (Go does not check them).
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::InvalidHeader(msg));
        if self.flags & !HEADER_FLAG_NO_CHECKSUM != 0 {
            return Err(Error::InvalidFlags(self.flags));
        }
        if !is_valid_page_size(self.page_size) {
            return Err(Error::InvalidPageSize(self.page_size));
        }
        if self.min_txid == 0 {
            return invalid("minimum transaction id required".into());
        }
        if self.max_txid == 0 {
            return invalid("maximum transaction id required".into());
        }
        if self.min_txid > self.max_txid {
            return invalid(format!(
                "transaction ids out of order: ({},{})",
                self.min_txid, self.max_txid
            ));
        }
        if self.wal_offset < 0 {
            return invalid(format!(
                "wal offset cannot be negative: {}",
                self.wal_offset
            ));
        }
        if self.wal_size < 0 {
            return invalid(format!("wal size cannot be negative: {}", self.wal_size));
        }
        if (self.wal_salt1 != 0 || self.wal_salt2 != 0) && self.wal_offset == 0 {
            return invalid("wal offset required if salt exists".into());
        }
        if self.wal_offset == 0 && self.wal_size != 0 {
            return invalid("wal offset required if wal size exists".into());
        }
        if self.is_snapshot() {
            if self.pre_apply_checksum != 0 {
                return invalid("pre-apply checksum must be zero on snapshots".into());
            }
        } else if self.no_checksum() {
            if self.pre_apply_checksum != 0 {
                return invalid("pre-apply checksum not allowed".into());
            }
        } else if self.pre_apply_checksum == 0 {
            return invalid("pre-apply checksum required on non-snapshot files".into());
        } else if self.pre_apply_checksum & CHECKSUM_FLAG == 0 {
            return invalid("invalid pre-apply checksum format".into());
        }
        Ok(())
    }

    /// A snapshot holds the whole database (every page 1..=commit except the lock page).
    pub fn is_snapshot(&self) -> bool {
        self.min_txid == 1
    }

    /// True when database checksums are not tracked (`HEADER_FLAG_NO_CHECKSUM`).
    pub fn no_checksum(&self) -> bool {
        self.flags & HEADER_FLAG_NO_CHECKSUM != 0
    }

    /// The lock page number for this header's page size.
    pub fn lock_pgno(&self) -> u32 {
        lock_pgno(self.page_size)
    }

    /// Checks that `pgno` may follow `prev` (0 = first page) in a file with this header:
    /// 1 ≤ pgno ≤ commit, not the lock page, strictly ascending, and for snapshots exactly
    /// the next page (skipping the lock page). Shared by encoder and decoder so they agree.
    pub(crate) fn check_next_page(&self, prev: u32, pgno: u32) -> Result<()> {
        if pgno == 0 {
            return Err(Error::PageNumberRequired);
        }
        if pgno > self.commit {
            return Err(Error::PageOutOfBounds {
                pgno,
                commit: self.commit,
            });
        }
        let lock = self.lock_pgno();
        if pgno == lock {
            return Err(Error::LockPage { pgno });
        }
        if self.is_snapshot() {
            let expected = if prev == 0 {
                1
            } else if prev.checked_add(1) == Some(lock) {
                prev.saturating_add(2)
            } else {
                prev.saturating_add(1)
            };
            if pgno != expected {
                return Err(Error::SnapshotSequence { prev, pgno });
            }
        } else if pgno <= prev {
            return Err(Error::PageOrder { prev, pgno });
        }
        Ok(())
    }

    /// Checks that a snapshot whose last page is `last` (0 = no pages) covers the whole
    /// database. No-op for incremental files.
    pub(crate) fn check_complete(&self, last: u32) -> Result<()> {
        if !self.is_snapshot() {
            return Ok(());
        }
        // The lock page is never stored, so a database ending exactly on it ends one earlier.
        let expected = if self.commit != 0 && self.commit == self.lock_pgno() {
            self.commit - 1
        } else {
            self.commit
        };
        if last != expected {
            return Err(Error::SnapshotIncomplete {
                last,
                commit: self.commit,
            });
        }
        Ok(())
    }
}

/// The 16-byte trailer at the very end of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    /// Database checksum after applying the file (0 when untracked).
    pub post_apply_checksum: u64,
    /// CRC-64/GO-ISO over the file's logical contents, flag bit set.
    pub file_checksum: u64,
}

impl Trailer {
    /// Parses the first 16 bytes of `bytes`. Does not validate (that needs the header).
    pub fn decode(bytes: &[u8]) -> Result<Trailer> {
        if bytes.len() < TRAILER_SIZE {
            return Err(Error::Truncated {
                what: "trailer",
                needed: TRAILER_SIZE as u64,
                got: bytes.len() as u64,
            });
        }
        Ok(Trailer {
            post_apply_checksum: be_u64(bytes, 0),
            file_checksum: be_u64(bytes, 8),
        })
    }

    /// The file checksum an LTX file ends with, read from `end`, its last bytes (the whole
    /// file, or any tail of at least 8 bytes); `None` when `end` is shorter.
    pub fn file_checksum_at_end(end: &[u8]) -> Option<u64> {
        let at = end.len().checked_sub(8)?;
        Some(be_u64(end, at))
    }

    /// Serializes the trailer.
    pub fn encode(&self) -> [u8; TRAILER_SIZE] {
        let mut b = [0u8; TRAILER_SIZE];
        b[0..8].copy_from_slice(&self.post_apply_checksum.to_be_bytes());
        b[8..16].copy_from_slice(&self.file_checksum.to_be_bytes());
        b
    }

    /// Checks Go's `Trailer.Validate` rules plus the "empty database" rule Go's encoder applies.
    ///
    /// The empty-database rule (commit 0 ⇒ post-apply = `CHECKSUM_FLAG`) is only applied when
    /// checksums are tracked: Go's encoder applies it unconditionally, which makes untracked
    /// empty files impossible to write there, but such files are otherwise well-formed.
    pub fn validate(&self, header: &Header) -> Result<()> {
        let invalid = |msg: &str| Err(Error::InvalidTrailer(msg.to_string()));
        if header.no_checksum() {
            if self.post_apply_checksum != 0 {
                return invalid("post-apply checksum not allowed");
            }
        } else if self.post_apply_checksum == 0 {
            return invalid("post-apply checksum required");
        } else if self.post_apply_checksum & CHECKSUM_FLAG == 0 {
            return invalid("invalid post-apply checksum format");
        } else if header.commit == 0 && self.post_apply_checksum != CHECKSUM_FLAG {
            return invalid("post-apply checksum must be empty for zero-length database");
        }
        if self.file_checksum == 0 {
            return invalid("file checksum required");
        }
        if self.file_checksum & CHECKSUM_FLAG == 0 {
            return invalid("invalid file checksum format");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(commit: u32) -> Header {
        Header {
            page_size: 4096,
            commit,
            min_txid: 1,
            max_txid: 1,
            ..Header::default()
        }
    }

    #[test]
    fn lock_page_numbers_match_sqlite() {
        let expected = [
            (512, 2_097_153),
            (1024, 1_048_577),
            (2048, 524_289),
            (4096, 262_145),
            (8192, 131_073),
            (16384, 65_537),
            (32768, 32_769),
            (65536, 16_385),
        ];
        for (size, lock) in expected {
            assert_eq!(lock_pgno(size), lock, "page size {size}");
        }
        // Must not panic on garbage.
        assert_eq!(lock_pgno(0), PENDING_BYTE + 1);
    }

    #[test]
    fn page_sizes() {
        for exp in 0..32 {
            let size = 1u32 << exp;
            assert_eq!(is_valid_page_size(size), (9..=16).contains(&exp), "{size}");
        }
        assert!(!is_valid_page_size(0));
        assert!(!is_valid_page_size(4095));
        assert!(!is_valid_page_size(4097));
    }

    #[test]
    fn snapshot_sequence_skips_only_the_lock_page() {
        let lock = lock_pgno(4096);
        let h = snapshot(lock + 5);
        h.check_next_page(0, 1).unwrap();
        assert!(matches!(
            h.check_next_page(0, 2),
            Err(Error::SnapshotSequence { prev: 0, pgno: 2 })
        ));
        h.check_next_page(1, 2).unwrap();
        assert!(matches!(
            h.check_next_page(1, 3),
            Err(Error::SnapshotSequence { .. })
        ));
        assert!(matches!(
            h.check_next_page(lock - 1, lock),
            Err(Error::LockPage { .. })
        ));
        h.check_next_page(lock - 1, lock + 1).unwrap();
        assert!(matches!(
            h.check_next_page(lock - 1, lock + 2),
            Err(Error::SnapshotSequence { .. })
        ));
        h.check_next_page(lock + 1, lock + 2).unwrap();
        assert!(matches!(
            h.check_next_page(lock + 4, lock + 6),
            Err(Error::PageOutOfBounds { .. })
        ));

        h.check_complete(lock + 5).unwrap();
        assert!(matches!(
            h.check_complete(lock + 4),
            Err(Error::SnapshotIncomplete { .. })
        ));
        // A database that ends exactly on the lock page stores one page less.
        snapshot(lock).check_complete(lock - 1).unwrap();
        assert!(snapshot(lock).check_complete(lock).is_err());
        snapshot(0).check_complete(0).unwrap();
        assert!(snapshot(3).check_complete(0).is_err());
    }

    #[test]
    fn incremental_order() {
        let h = Header {
            min_txid: 2,
            max_txid: 2,
            ..snapshot(100)
        };
        h.check_next_page(0, 7).unwrap();
        h.check_next_page(7, 9).unwrap();
        assert!(matches!(
            h.check_next_page(9, 9),
            Err(Error::PageOrder { prev: 9, pgno: 9 })
        ));
        assert!(matches!(
            h.check_next_page(9, 8),
            Err(Error::PageOrder { .. })
        ));
        assert!(matches!(
            h.check_next_page(0, 0),
            Err(Error::PageNumberRequired)
        ));
        // Incremental files may hold any subset, including none.
        h.check_complete(0).unwrap();
        h.check_complete(5).unwrap();
    }

    #[test]
    fn header_validation_messages_match_go() {
        let base = Header {
            min_txid: 2,
            max_txid: 3,
            pre_apply_checksum: CHECKSUM_FLAG | 5,
            ..snapshot(1)
        };
        base.validate().unwrap();
        let cases: Vec<(Header, &str)> = vec![
            (
                Header {
                    flags: 1,
                    ..base.clone()
                },
                "invalid flags: 0x00000001",
            ),
            (
                Header {
                    page_size: 1000,
                    ..base.clone()
                },
                "invalid page size: 1000",
            ),
            (
                Header {
                    min_txid: 0,
                    ..base.clone()
                },
                "minimum transaction id required",
            ),
            (
                Header {
                    max_txid: 0,
                    ..base.clone()
                },
                "maximum transaction id required",
            ),
            (
                Header {
                    min_txid: 4,
                    ..base.clone()
                },
                "transaction ids out of order: (4,3)",
            ),
            (
                Header {
                    wal_offset: -1,
                    ..base.clone()
                },
                "wal offset cannot be negative: -1",
            ),
            (
                Header {
                    wal_offset: 32,
                    wal_size: -2,
                    ..base.clone()
                },
                "wal size cannot be negative: -2",
            ),
            (
                Header {
                    wal_salt2: 9,
                    ..base.clone()
                },
                "wal offset required if salt exists",
            ),
            (
                Header {
                    wal_size: 9,
                    ..base.clone()
                },
                "wal offset required if wal size exists",
            ),
            (
                Header {
                    min_txid: 1,
                    ..base.clone()
                },
                "pre-apply checksum must be zero on snapshots",
            ),
            (
                Header {
                    flags: HEADER_FLAG_NO_CHECKSUM,
                    ..base.clone()
                },
                "pre-apply checksum not allowed",
            ),
            (
                Header {
                    pre_apply_checksum: 0,
                    ..base.clone()
                },
                "pre-apply checksum required on non-snapshot files",
            ),
            (
                Header {
                    pre_apply_checksum: 5,
                    ..base.clone()
                },
                "invalid pre-apply checksum format",
            ),
        ];
        for (h, msg) in cases {
            assert_eq!(h.validate().unwrap_err().to_string(), msg, "{h:?}");
        }
    }

    #[test]
    fn header_encode_decode_and_magic() {
        let h = Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            page_size: 65536,
            commit: 77,
            min_txid: 5,
            max_txid: 9,
            timestamp_ms: -3,
            pre_apply_checksum: 0,
            wal_offset: 32,
            wal_size: 4120,
            wal_salt1: 0xdead_beef,
            wal_salt2: 1,
            node_id: u64::MAX,
        };
        let mut b = h.encode();
        assert_eq!(Header::decode(&b).unwrap(), h);
        assert!(b[80..].iter().all(|&x| x == 0));
        // Reserved bytes are ignored, like Go.
        b[99] = 0xff;
        assert_eq!(Header::decode(&b).unwrap(), h);
        b[0] = b'X';
        assert_eq!(
            Header::decode(&b).unwrap_err().to_string(),
            "invalid LTX file"
        );
        assert!(matches!(
            Header::decode(&b[..99]),
            Err(Error::Truncated {
                needed: 100,
                got: 99,
                ..
            })
        ));
    }

    #[test]
    fn trailer_rules() {
        let tracked = Header {
            min_txid: 2,
            max_txid: 2,
            pre_apply_checksum: CHECKSUM_FLAG | 1,
            ..snapshot(3)
        };
        let untracked = Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            pre_apply_checksum: 0,
            ..tracked.clone()
        };
        let t = |post, file| Trailer {
            post_apply_checksum: post,
            file_checksum: file,
        };
        let f = CHECKSUM_FLAG | 7;
        t(CHECKSUM_FLAG | 1, f).validate(&tracked).unwrap();
        t(0, f).validate(&untracked).unwrap();
        let msg = |tr: Trailer, h: &Header| tr.validate(h).unwrap_err().to_string();
        assert_eq!(msg(t(1, f), &untracked), "post-apply checksum not allowed");
        assert_eq!(msg(t(0, f), &tracked), "post-apply checksum required");
        assert_eq!(msg(t(1, f), &tracked), "invalid post-apply checksum format");
        assert_eq!(msg(t(CHECKSUM_FLAG, 0), &tracked), "file checksum required");
        assert_eq!(
            msg(t(CHECKSUM_FLAG, 7), &tracked),
            "invalid file checksum format"
        );
        let empty = Header {
            commit: 0,
            ..tracked.clone()
        };
        t(CHECKSUM_FLAG, f).validate(&empty).unwrap();
        assert_eq!(
            msg(t(CHECKSUM_FLAG | 1, f), &empty),
            "post-apply checksum must be empty for zero-length database"
        );
        let tr = t(0x0102_0304_0506_0708, 0x8877_6655_4433_2211);
        assert_eq!(Trailer::decode(&tr.encode()).unwrap(), tr);
        assert!(Trailer::decode(&[0u8; 15]).is_err());
    }
}
