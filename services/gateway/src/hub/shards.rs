//! A map split into shards, each behind its own lock, so that work on one
//! key never waits for work on keys of other shards.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

/// How many shards each of the hub's maps has.
pub const SHARDS: usize = 64;

/// See the module documentation.
pub struct Shards<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq, V> Default for Shards<K, V> {
    fn default() -> Shards<K, V> {
        Shards { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), hasher: RandomState::new() }
    }
}

impl<K: Hash + Eq, V> Shards<K, V> {
    /// The shard that holds `key`, locked.
    pub fn lock(&self, key: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        lock(&self.shards[index])
    }

    /// Every shard in turn, each locked while it is looked at.
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<K, V>>> {
        self.shards.iter().map(lock)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section on a shard completes its inserts and removes
    // before anything can panic, so a poisoned shard still holds consistent
    // data: keep using it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
