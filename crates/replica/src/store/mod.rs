//! The bucket: a replica URL made into a store ([`location`]), bounded and counted requests
//! ([`remote`]; whole files to and from local disk in bounded memory in `transfer`), where LTX
//! files live under the prefix ([`layout`]) and what a listing says about them ([`listing`]),
//! and the local spool files that stand in for memory for large files (`spool`). Knows nothing
//! of pages or versions. Test builds add [`faults`], a store that misbehaves on demand.

pub mod layout;
pub mod listing;
pub mod location;
pub mod remote;
pub(crate) mod spool;
mod transfer;

#[cfg(any(test, feature = "fault-points"))]
pub mod faults;
