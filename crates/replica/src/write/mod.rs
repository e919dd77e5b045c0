//! Write mode: the crash-safe local `buffer`, the [`writer`] that publishes local commits and
//! uploads them with fencing (`state` is what it holds under its lock, `upload` what one upload
//! sends), its background `tasks`, [`compact`] (compaction, snapshots, retention; `merge` writes one output) and `mode`,
//! the replica's write-mode switch. Given the read core, never the replica facade.

pub(crate) mod buffer;
pub mod compact;
pub(crate) mod merge;
pub(crate) mod mode;
pub(crate) mod state;
pub(crate) mod tasks;
pub(crate) mod upload;
pub mod writer;
