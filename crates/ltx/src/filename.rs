//! LTX file names: `<min txid %016x>-<max txid %016x>.ltx`.

const HEX_DIGITS: usize = 16;
const SUFFIX: &str = ".ltx";
const NAME_LEN: usize = HEX_DIGITS + 1 + HEX_DIGITS + SUFFIX.len();

/// Parses `name` as `^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$` into `(min_txid, max_txid)`.
///
/// Uppercase hex, other widths and extra path components are rejected, as in Go, so a listing
/// never picks up files that Litestream itself would ignore.
pub fn parse_filename(name: &str) -> Option<(u64, u64)> {
    let b = name.as_bytes();
    if b.len() != NAME_LEN || b[HEX_DIGITS] != b'-' || !name.ends_with(SUFFIX) {
        return None;
    }
    let min = parse_hex16(&b[..HEX_DIGITS])?;
    let max = parse_hex16(&b[HEX_DIGITS + 1..2 * HEX_DIGITS + 1])?;
    Some((min, max))
}

fn parse_hex16(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u64::from(d))
    })
}

/// Formats the file name for a transaction range (lowercase, zero-padded hex).
pub fn format_filename(min_txid: u64, max_txid: u64) -> String {
    format!("{min_txid:016x}-{max_txid:016x}{SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(
            format_filename(1, 0x3e8),
            "0000000000000001-00000000000003e8.ltx"
        );
        assert_eq!(
            parse_filename("0000000000000001-00000000000003e8.ltx"),
            Some((1, 1000))
        );
        assert_eq!(
            parse_filename(&format_filename(u64::MAX, 0)),
            Some((u64::MAX, 0))
        );
        for bad in [
            "0000000000000001-00000000000003E8.ltx",
            "000000000000001-00000000000003e8.ltx",
            "00000000000000001-00000000000003e8.ltx",
            "0000000000000001_00000000000003e8.ltx",
            "0000000000000001-00000000000003e8.ltx.tmp",
            "0000000000000001-00000000000003e8.LTX",
            "0000000000000001-00000000000003e8xltx",
            "000000000000000g-00000000000003e8.ltx",
            "+000000000000001-00000000000003e8.ltx",
            "x/0000000000000001-00000000000003e8.ltx",
            "",
            "0000000000000001-00000000000003é.ltx",
        ] {
            assert_eq!(parse_filename(bad), None, "{bad}");
        }
    }
}
