//! Fuzz targets. Each function takes arbitrary bytes, must never panic, and asserts what must
//! hold of what the code under test accepts (a panic here is a finding). The libFuzzer binaries
//! in `fuzz_targets/` call them (`make fuzz`), and `tests/corpus.rs` replays every file of
//! `corpus/` and `regressions/` through them in `make test`.
//!
//! | target | code under test | input |
//! |---|---|---|
//! | [`ltx_file`] | `ltx::decode_file`, `verify_file`, `decode_page_index`, `decode_page_frame`, `Encoder` | a whole LTX file |
//! | [`ltx_page_index`] | `ltx::decode_page_index`, `page_index_location` | 8 bytes BE (file size beyond the tail), then the tail |
//! | [`ltx_page_frame`] | `ltx::decode_page_frame` | 1 byte (page size `512 << (b % 8)`), then the frame |
//! | [`pragma_values`] | `replica::parse_time`, `parse_txid`, `vfs::config::parse_duration`, `parse_size`, `parse_bool` | text |

#[cfg(feature = "pragma")]
use replica::Target;

/// Inputs longer than this are cut: every structure of interest fits, and the parsers' cost
/// grows with the input.
const MAX_INPUT: usize = 1 << 20;

/// A whole LTX file: the whole-file decoder, and the random-access path a VFS uses (header,
/// index from the tail, then one frame at a time), must agree; an accepted file re-encodes to
/// the same pages.
pub fn ltx_file(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    let len = data.len() as u64;
    let whole = ltx::decode_file(data);
    let verified = ltx::verify_file(data);
    assert_eq!(
        whole.as_ref().err(),
        verified.as_ref().err(),
        "decode_file and verify_file disagree"
    );
    // The random-access path on the same bytes must not panic whatever they are.
    let header = ltx::Header::decode(data);
    let index = ltx::decode_page_index(len, data);
    let Ok(file) = whole else {
        if let (Ok(h), Ok(ltx::PageIndexDecode::Complete(entries))) = (&header, &index) {
            let mut page = vec![0u8; h.page_size as usize];
            for e in entries.iter().take(64) {
                if let Some(frame) = data.get(e.offset as usize..e.end() as usize) {
                    let _ = ltx::decode_page_frame(frame, h.page_size, &mut page);
                }
            }
        }
        return;
    };
    let summary = verified.expect("verify_file agreed");
    assert_eq!(summary.header, file.header);
    assert_eq!(summary.index, file.index);
    assert_eq!(header.as_ref().ok(), Some(&file.header), "Header::decode");
    assert_eq!(
        index.as_ref().ok(),
        Some(&ltx::PageIndexDecode::Complete(file.index.clone())),
        "decode_page_index on the whole file"
    );
    assert_eq!(file.pages.len(), file.index.len());
    let page_size = file.header.page_size;
    let mut page = vec![0u8; page_size as usize];
    let mut prev = 0u32;
    for ((pgno, data_page), e) in file.pages.iter().zip(&file.index) {
        assert_eq!(*pgno, e.pgno);
        assert!(*pgno > prev && *pgno <= file.header.commit, "page {pgno}");
        prev = *pgno;
        assert_eq!(data_page.len(), page_size as usize);
        // What a VFS does: one frame by its index entry.
        let frame = &data[e.offset as usize..e.end() as usize];
        let got = ltx::decode_page_frame(frame, page_size, &mut page)
            .expect("a frame of a valid file decodes alone");
        assert_eq!(got, *pgno);
        assert_eq!(&page, data_page, "frame {pgno} decodes differently alone");
    }
    // The tail alone (as a VFS fetches it) gives the same index.
    let tail_len = (file.index.len() * 30 + 64).min(data.len());
    match ltx::decode_page_index(len, &data[data.len() - tail_len..]) {
        Ok(ltx::PageIndexDecode::Complete(i)) => assert_eq!(i, file.index),
        Ok(ltx::PageIndexDecode::NeedTail(n)) => assert!(n > tail_len as u64 && n <= len),
        Err(e) => panic!("the tail of a valid file fails: {e}"),
    }
    // Our encoder accepts what our decoder accepted, and round-trips the pages.
    let mut enc = ltx::Encoder::new(file.header.clone()).expect("decoded header re-encodes");
    for (pgno, p) in &file.pages {
        enc.add_page(*pgno, p).expect("decoded page re-encodes");
    }
    let bytes = enc
        .finish(file.trailer.post_apply_checksum)
        .expect("decoded file re-encodes");
    let again = ltx::decode_file(&bytes).expect("re-encoded file decodes");
    assert_eq!(again.header, file.header);
    assert_eq!(again.pages, file.pages);
}

/// The page-index parser on an arbitrary tail of a file of arbitrary size.
pub fn ltx_page_index(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let extra = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let tail = &data[8..data.len().min(MAX_INPUT)];
    // A plausible size (the tail plus up to 64 KiB before it), and the raw value.
    for file_size in [tail.len() as u64 + (extra & 0xFFFF), extra] {
        let loc = ltx::page_index_location(file_size, tail);
        match ltx::decode_page_index(file_size, tail) {
            Ok(ltx::PageIndexDecode::Complete(entries)) => {
                let loc = loc.expect("location of a decoded index");
                let mut next = ltx::HEADER_SIZE as u64;
                let mut prev = 0u32;
                for e in &entries {
                    assert!(e.pgno > prev, "ascending page numbers");
                    assert_eq!(e.offset, next, "contiguous frames");
                    assert!(e.size as usize > ltx::PAGE_HEADER_SIZE);
                    prev = e.pgno;
                    next = e.end();
                }
                assert_eq!(next, loc.page_block_end(), "frames fill the page block");
                assert!(loc.index_start + loc.index_len <= file_size);
            }
            Ok(ltx::PageIndexDecode::NeedTail(n)) => {
                assert!(n > tail.len() as u64, "asks for more than it had");
                assert!(n <= file_size, "asks for more than the file");
            }
            Err(_) => {}
        }
    }
}

/// One page frame, for each page size.
pub fn ltx_page_frame(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let frame = &frame[..frame.len().min(MAX_INPUT)];
    let page_size = 512u32 << (sel % 8);
    let mut a = vec![0u8; page_size as usize];
    let mut b = vec![0xA5u8; page_size as usize];
    let first = ltx::decode_page_frame(frame, page_size, &mut a);
    let second = ltx::decode_page_frame(frame, page_size, &mut b);
    assert_eq!(first, second, "deterministic");
    if let Ok(pgno) = first {
        assert_ne!(pgno, 0);
        assert_eq!(a, b, "the whole page is written");
    }
    // A buffer of the wrong size is refused, never overrun.
    let mut short = vec![0u8; page_size as usize - 1];
    assert!(ltx::decode_page_frame(frame, page_size, &mut short).is_err());
}

/// The text parsers behind `PRAGMA litestream_time`/`litestream_txid` and the configuration.
#[cfg(feature = "pragma")]
pub fn pragma_values(data: &[u8]) {
    let data = &data[..data.len().min(4096)];
    let s = String::from_utf8_lossy(data);
    match replica::parse_txid(&s) {
        Ok(Target::Txid(t)) => {
            assert_ne!(t, 0);
            assert_eq!(
                replica::parse_txid(&format!("{t:016x}")).ok(),
                Some(Target::Txid(t))
            );
        }
        Ok(Target::Latest) => assert!(s.trim().eq_ignore_ascii_case("latest")),
        Ok(Target::Time(_)) => panic!("parse_txid returned a time"),
        Err(e) => assert!(e.to_string().contains("invalid value")),
    }
    // Relative phrases are evaluated against the clock; only bound the input here.
    if s.len() <= 256 {
        match replica::parse_time(&s) {
            Ok(Target::Time(ts)) => {
                // What litestream_time prints must parse back to the same instant.
                assert_eq!(
                    replica::parse_time(&ts.to_string()).ok(),
                    Some(Target::Time(ts)),
                    "{ts}"
                );
            }
            Ok(Target::Latest) => assert!(s.trim().eq_ignore_ascii_case("latest")),
            Ok(Target::Txid(_)) => panic!("parse_time returned a txid"),
            Err(_) => {}
        }
    }
    if let Ok(d) = vfs::config::parse_duration(&s) {
        assert!(d.as_secs() <= 86_400 * 365, "{d:?}");
    }
    if let Ok(n) = vfs::config::parse_size(&s) {
        assert!(n >= 64 * 1024);
    }
    if let Ok(b) = vfs::config::parse_bool(&s) {
        assert_eq!(vfs::config::parse_bool(&b.to_string()), Ok(b));
        assert_eq!(vfs::config::parse_bool(&s.to_ascii_uppercase()), Ok(b));
    }
}
