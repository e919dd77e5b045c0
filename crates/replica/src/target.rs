//! Parsing of time-travel values: what `PRAGMA litestream_time` and `litestream_txid` accept.

use jiff::{tz::TimeZone, Timestamp, Zoned};

use crate::error::{Error, Result};

/// Which state of the database a connection reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Follow the newest state.
    Latest,
    /// The state right after this transaction.
    Txid(u64),
    /// The newest state created at or before this time.
    Time(Timestamp),
}

/// Parses a time: `latest`, RFC 3339 with or without fraction, or a relative phrase such as
/// `5 minutes ago`, `yesterday`, `2 hours ago` (evaluated in UTC now, like the Go VFS).
pub fn parse_time(value: &str) -> Result<Target> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("latest") {
        return Ok(Target::Latest);
    }
    if v.is_empty() {
        return Err(invalid(
            value,
            "empty; use an RFC 3339 time, a phrase like '5 minutes ago', or 'latest'",
        ));
    }
    if let Ok(ts) = v.parse::<Timestamp>() {
        return Ok(Target::Time(ts));
    }
    let now = Zoned::now().with_time_zone(TimeZone::UTC);
    match parse_datetime::parse_datetime_at_date(now, v) {
        Ok(parsed) => match parsed.into_zoned() {
            Some(z) => Ok(Target::Time(z.timestamp())),
            None => Err(invalid(value, "out of range")),
        },
        Err(_) => Err(invalid(
            value,
            "not a time; use RFC 3339 (2026-01-02T15:04:05Z), a phrase like '5 minutes ago' or 'yesterday', or 'latest'",
        )),
    }
}

/// Parses a TXID: `latest` or up to 16 hex digits (as `litestream_txid` prints them).
pub fn parse_txid(value: &str) -> Result<Target> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("latest") {
        return Ok(Target::Latest);
    }
    let hex = v.strip_prefix("0x").unwrap_or(v);
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            value,
            "a TXID is 1 to 16 hex digits, e.g. 00000000000000a3, or 'latest'",
        ));
    }
    match u64::from_str_radix(hex, 16) {
        Ok(0) => Err(invalid(value, "TXID 0 is before the first transaction")),
        Ok(txid) => Ok(Target::Txid(txid)),
        Err(e) => Err(invalid(value, &e.to_string())),
    }
}

fn invalid(value: &str, reason: &str) -> Error {
    Error::InvalidTarget {
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_and_without_fraction() {
        let a = parse_time("2026-01-02T03:04:05Z").unwrap();
        let b = parse_time("2026-01-02T03:04:05.250+00:00").unwrap();
        match (a, b) {
            (Target::Time(a), Target::Time(b)) => {
                assert_eq!(b.as_millisecond() - a.as_millisecond(), 250)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relative_phrases_are_in_the_past() {
        let now = Timestamp::now().as_millisecond();
        for (phrase, secs) in [
            ("5 minutes ago", 300),
            ("2 hours ago", 7200),
            ("yesterday", 86400),
        ] {
            match parse_time(phrase).unwrap() {
                Target::Time(t) => {
                    let ago = (now - t.as_millisecond()) / 1000;
                    assert!((secs - 5..=secs + 5).contains(&ago), "{phrase}: {ago}s ago");
                }
                other => panic!("{phrase}: {other:?}"),
            }
        }
    }

    #[test]
    fn latest_and_garbage() {
        assert_eq!(parse_time(" LATEST ").unwrap(), Target::Latest);
        assert!(matches!(
            parse_time("next tuesday-ish blah"),
            Err(Error::InvalidTarget { .. })
        ));
        assert!(parse_time("").is_err());
    }

    #[test]
    fn txids() {
        assert_eq!(parse_txid("00000000000000a3").unwrap(), Target::Txid(0xa3));
        assert_eq!(parse_txid("latest").unwrap(), Target::Latest);
        for bad in ["", "0", "xyz", "00000000000000000a3", "-1"] {
            assert!(parse_txid(bad).is_err(), "{bad}");
        }
    }
}
