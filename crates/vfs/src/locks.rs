//! SQLite's rollback-journal locks between the connections of one process that share a
//! writable replica: many readers (SHARED), one writer (RESERVED), and a commit (EXCLUSIVE)
//! only when no reader is inside a transaction, as the unix VFS does with `fcntl` locks. A
//! conflict is `SQLITE_BUSY`, which SQLite's busy handler retries.
//!
//! Other processes are kept out by the write buffer's file lock and, on the replica, by the
//! conditional create of every level-0 file.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use sqlite_plugin::flags::LockLevel;
use sqlite_plugin::vars;
use sqlite_plugin::vfs::VfsResult;

/// Who holds what on one replica.
#[derive(Debug, Default)]
pub struct LockTable {
    shared: usize,
    reserved: Option<u64>,
    pending: Option<u64>,
    exclusive: Option<u64>,
}

static TABLES: Mutex<Option<HashMap<usize, Weak<Mutex<LockTable>>>>> = Mutex::new(None);

/// The table of the replica at `key` (its address), shared by every connection holding it.
pub fn table_for(key: usize) -> Arc<Mutex<LockTable>> {
    let mut tables = TABLES.lock();
    let map = tables.get_or_insert_with(HashMap::new);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(t) = map.get(&key).and_then(Weak::upgrade) {
        return t;
    }
    let t = Arc::new(Mutex::new(LockTable::default()));
    map.insert(key, Arc::downgrade(&t));
    t
}

impl LockTable {
    fn other(holder: Option<u64>, me: u64) -> bool {
        holder.is_some_and(|h| h != me)
    }

    /// Moves connection `me` from `from` up to `to`.
    pub fn lock(&mut self, me: u64, from: LockLevel, to: LockLevel) -> VfsResult<()> {
        if to <= from {
            return Ok(());
        }
        if from == LockLevel::Unlocked {
            // A writer waiting to commit (PENDING) keeps new readers out, so it cannot starve.
            if Self::other(self.pending, me) || Self::other(self.exclusive, me) {
                return Err(vars::SQLITE_BUSY);
            }
            self.shared += 1;
            if to == LockLevel::Shared {
                return Ok(());
            }
        }
        if to == LockLevel::Reserved {
            if Self::other(self.reserved, me)
                || Self::other(self.pending, me)
                || Self::other(self.exclusive, me)
            {
                return Err(vars::SQLITE_BUSY);
            }
            self.reserved = Some(me);
            return Ok(());
        }
        // PENDING or EXCLUSIVE.
        if Self::other(self.pending, me) || Self::other(self.exclusive, me) {
            return Err(vars::SQLITE_BUSY);
        }
        self.pending = Some(me);
        if to == LockLevel::Pending {
            return Ok(());
        }
        if self.shared > 1 {
            return Err(vars::SQLITE_BUSY);
        }
        self.exclusive = Some(me);
        Ok(())
    }

    /// Moves connection `me` down from `from` to `to`.
    pub fn unlock(&mut self, me: u64, from: LockLevel, to: LockLevel) {
        if to < LockLevel::Reserved {
            for h in [&mut self.reserved, &mut self.pending, &mut self.exclusive] {
                if *h == Some(me) {
                    *h = None;
                }
            }
        }
        if to == LockLevel::Unlocked && from >= LockLevel::Shared {
            self.shared = self.shared.saturating_sub(1);
        }
    }

    /// Whether some connection holds RESERVED or more.
    pub fn reserved(&self) -> bool {
        self.reserved.is_some() || self.pending.is_some() || self.exclusive.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockLevel::*;

    #[test]
    fn readers_share_one_writer_commits_alone() {
        let mut t = LockTable::default();
        t.lock(1, Unlocked, Shared).unwrap();
        t.lock(2, Unlocked, Shared).unwrap();
        t.lock(1, Shared, Reserved).unwrap();
        assert!(t.reserved());
        assert_eq!(t.lock(2, Shared, Reserved), Err(vars::SQLITE_BUSY));
        // The commit waits for reader 2, and meanwhile no new reader gets in.
        assert_eq!(t.lock(1, Reserved, Exclusive), Err(vars::SQLITE_BUSY));
        assert_eq!(t.lock(3, Unlocked, Shared), Err(vars::SQLITE_BUSY));
        t.unlock(2, Shared, Unlocked);
        t.lock(1, Reserved, Exclusive).unwrap();
        t.unlock(1, Exclusive, Shared);
        assert!(!t.reserved());
        t.lock(3, Unlocked, Shared).unwrap();
        t.unlock(1, Shared, Unlocked);
        t.unlock(3, Shared, Unlocked);
        assert_eq!(t.shared, 0);
    }

    #[test]
    fn tables_are_per_replica_and_released() {
        let a = table_for(1);
        let b = table_for(1);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &table_for(2)));
        a.lock().lock(9, Unlocked, Reserved).unwrap();
        drop((a, b));
        assert!(
            !table_for(1).lock().reserved(),
            "a fresh table after release"
        );
    }
}
