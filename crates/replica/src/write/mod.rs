//! Write mode: the crash-safe local [`buffer`], the [`writer`] that publishes local commits and
//! uploads them with fencing, and [`compact`] (compaction, snapshots, retention).

pub(crate) mod buffer;
pub mod compact;
pub mod writer;
