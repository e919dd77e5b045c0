//! The text of `docs` titles and bodies: deterministic words from a seeded [`Rng`].

use crate::spec::Rng;

/// The vocabulary.
const WORDS: &[&str] = &[
    "replica",
    "page",
    "snapshot",
    "level",
    "compaction",
    "sqlite",
    "object",
    "storage",
    "bucket",
    "range",
    "request",
    "latency",
    "cache",
    "index",
    "frame",
    "header",
    "checksum",
    "transaction",
    "commit",
    "reader",
    "writer",
    "primary",
    "stream",
    "restore",
    "travel",
    "time",
    "order",
    "customer",
    "invoice",
    "product",
    "warehouse",
    "shipment",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "with",
    "for",
    "on",
    "by",
    "from",
    "at",
    "as",
    "quickly",
    "slowly",
    "durable",
    "remote",
    "local",
    "consistent",
    "immutable",
    "compressed",
    "random",
    "sequential",
    "cold",
    "warm",
    "hot",
    "small",
    "large",
    "new",
    "old",
    "every",
];

/// Text of `min_len..max_len` bytes, drawn from a small vocabulary with numbers here and there.
pub(super) fn words(rng: &mut Rng, min_len: usize, max_len: usize) -> String {
    let target = min_len + usize::try_from(rng.below((max_len - min_len) as u64)).unwrap_or(0);
    let mut s = String::with_capacity(target + 16);
    while s.len() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        let w = WORDS[usize::try_from(rng.below(WORDS.len() as u64)).unwrap_or(0)];
        s.push_str(w);
        if rng.below(12) == 0 {
            s.push_str(&format!(" {}", rng.below(100_000)));
        }
    }
    s.truncate(target);
    s
}
