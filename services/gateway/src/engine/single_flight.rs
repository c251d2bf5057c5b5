//! One backend call for many callers: concurrent requests for the same key
//! share the call in flight and all get its result.
//!
//! Join storms are the case: when a gateway's cache of a room does not
//! cover a join, every join of the room that arrives while the first one's
//! history read is in flight waits for that read instead of making its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt, Shared};

/// See the module documentation. Holds one entry per key in flight, dropped
/// once its last caller is done (or gone): the map is bounded by the calls
/// being awaited.
pub struct SingleFlight<K, V> {
    in_flight: Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight { in_flight: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> SingleFlight<K, V> {
    /// The result of the call in flight for `key`, or of `call()` started now.
    pub async fn run<F>(&self, key: K, call: impl FnOnce() -> F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let shared = {
            let mut in_flight = self.lock();
            in_flight.entry(key.clone()).or_insert_with(|| call().boxed().shared()).clone()
        };
        let _done = Done { flight: self, key, shared: shared.clone() };
        shared.await
    }

    /// How many keys are in flight.
    pub fn keys_in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Shared<BoxFuture<'static, V>>>> {
        // Every mutation is a single insert or remove: a poisoned map is whole.
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Drops the entry when its last caller finishes or is cancelled.
struct Done<'a, K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> {
    flight: &'a SingleFlight<K, V>,
    key: K,
    shared: Shared<BoxFuture<'static, V>>,
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Drop for Done<'_, K, V> {
    fn drop(&mut self) {
        let mut in_flight = self.flight.lock();
        let Some(entry) = in_flight.get(&self.key) else { return };
        // The map's handle and this caller's two: nobody else waits on it.
        if entry.ptr_eq(&self.shared) && self.shared.strong_count().is_none_or(|n| n <= 3) {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_call_and_later_ones_make_a_new_one() {
        let flight = Arc::new(SingleFlight::<&str, u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |calls: Arc<AtomicUsize>| {
            move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                calls.fetch_add(1, Ordering::SeqCst) as u32
            }
        };
        let waiting = (0..10).map(|_| {
            let (flight, calls) = (flight.clone(), calls.clone());
            tokio::spawn(async move { flight.run("room", call(calls)).await })
        });
        let results = futures_util::future::join_all(waiting).await;
        assert!(results.into_iter().all(|r| r.unwrap() == 0), "every caller got the one call's result");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(flight.keys_in_flight(), 0, "nothing left once done");
        assert_eq!(flight.run("room", call(calls.clone())).await, 1, "a later call is a new one");
    }

    #[tokio::test]
    async fn a_cancelled_caller_leaves_nothing_behind() {
        let flight = SingleFlight::<&str, u32>::default();
        let slow = flight.run("room", || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            1
        });
        assert!(tokio::time::timeout(Duration::from_millis(10), slow).await.is_err());
        assert_eq!(flight.keys_in_flight(), 0);
        assert_eq!(flight.run("room", || async { 2 }).await, 2);
    }
}
