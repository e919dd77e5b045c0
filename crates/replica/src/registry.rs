//! The process registry: one [`Replica`] per URL, shared by every connection that names it, and
//! released with its cache and poller once no connection has used it for a while.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Result;
use crate::options::ReplicaOptions;
use crate::replica::Replica;
use crate::runtime;
use crate::store::location;
use crate::supervise;

/// A replica nobody has used for this long is dropped with its cache and poller.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

static REGISTRY: Mutex<Option<HashMap<String, Arc<Replica>>>> = Mutex::new(None);

/// A connection's hold on a shared replica. Dropping it lets an idle replica be released.
#[derive(Debug)]
pub struct Session {
    replica: Arc<Replica>,
}

impl std::ops::Deref for Session {
    type Target = Arc<Replica>;
    fn deref(&self) -> &Arc<Replica> {
        &self.replica
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.replica.leave_session();
    }
}

impl Session {
    /// Whether this session's replica is the one the process registry hands to new sessions
    /// (a released one is not, and its poller has stopped).
    pub fn is_registered(&self) -> bool {
        REGISTRY
            .lock()
            .as_ref()
            .and_then(|m| m.get(self.replica.url().trim()))
            .is_some_and(|r| Arc::ptr_eq(r, &self.replica))
    }
}

/// Opens the replica at `opts.url`, or joins the one this process already has open. Blocks
/// until the newest state's page index is built, or fails with a clear error.
pub fn open(opts: &ReplicaOptions) -> Result<Session> {
    let key = opts.url.trim().to_string();
    // The session is counted under the registry lock, in the same critical section that finds
    // or inserts the replica: `release_if_idle` takes that lock to drop an idle replica, so it
    // can never drop one a session is joining (which would leave it without a poller).
    let joined = {
        let mut reg = REGISTRY.lock();
        reg.get_or_insert_with(HashMap::new)
            .get(&key)
            .map(|r| r.join_session())
    };
    let replica = match joined {
        Some(r) => r,
        None => {
            let o = opts.clone();
            let fresh = runtime::block_on(async move {
                let create = o.write.is_some();
                let loc = location::connect_with(&o.url, &location::process_env, create)?;
                Replica::connect(o, loc).await
            })?;
            let mut reg = REGISTRY.lock();
            let map = reg.get_or_insert_with(HashMap::new);
            // Another thread may have opened the same URL meanwhile: keep the first one.
            match map.get(&key) {
                Some(r) => r.join_session(),
                None => {
                    map.insert(key, fresh.clone());
                    let weak = Arc::downgrade(&fresh);
                    fresh.follow(move || weak.upgrade().is_none_or(|r| release_if_idle(&r)));
                    fresh.join_session()
                }
            }
        }
    };
    let session = Session { replica };
    if let Some(w) = &opts.write {
        session.attach_writer(w)?;
    } else if let Some(h) = &opts.hydration {
        if !session.is_writing() {
            session.start_hydration(h);
        }
    }
    Ok(session)
}

/// Drops the registry's hold when no connection has used the replica for a while; `true` once
/// it was dropped (its follower then ends).
fn release_if_idle(r: &Arc<Replica>) -> bool {
    let timeout = supervise::idle_timeout().unwrap_or(IDLE_TIMEOUT);
    if !r.idle_for(timeout) || r.sessions() != 0 {
        return false;
    }
    let mut reg = REGISTRY.lock();
    let map = reg.get_or_insert_with(HashMap::new);
    if r.sessions() == 0 {
        map.retain(|_, x| !Arc::ptr_eq(x, r));
        tracing::debug!(url = %r.display_url(), "idle replica released");
        return true;
    }
    false
}
