//! Read answers kept between writes: `tools/list` and every REST list and get. Every write the store
//! makes bumps one counter when it is over (committed or not); a cached answer remembers the counter it
//! was read under and is used only while nothing was written since, and never after `ttl` (for writers
//! in other processes sharing the database). The bench found the answer built per call to be most of
//! the gateway's CPU per read: 1.1 ms per `GET /tools` on SQLite against the hello server's 15 µs.
//!
//! A missing answer is read once however many ask for it at the same time (`get_or_fill`): the others
//! wait for that read. Without it every entry's expiry sent all 4000 of the bench's users to the
//! database at once, and SQLite's queue of them was a p99 of 1–4 s.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// More keys than this (one per distinct query or id asked about) and the cache starts over.
const MAX_ENTRIES: usize = 4096;

/// The count of writes ended so far, shared by every cache of one store.
#[derive(Default)]
pub struct Writes(AtomicU64);

/// Bumps the write counter when dropped: at the end of a write, whichever way it ends.
pub struct WriteGuard<'a>(&'a AtomicU64);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Writes {
    pub fn writing(&self) -> WriteGuard<'_> {
        WriteGuard(&self.0)
    }

    /// The counter to read an answer under; read it before the query.
    pub fn ticket(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Entries<K, V> {
    /// The write count every entry was read under; entries of an older count are dropped at the next put.
    writes: u64,
    map: HashMap<K, (Instant, V)>,
    /// Keys being read now; each receiver's sender is dropped when that read ends, however it ends.
    filling: HashMap<K, tokio::sync::watch::Receiver<()>>,
}

/// What to do about a key: use the answer, wait for the read under way, or read it.
enum Step<V> {
    Hit(V),
    Wait(tokio::sync::watch::Receiver<()>),
    Fill(tokio::sync::watch::Sender<()>),
}

/// Ends a read: the key is no longer being read, and its waiters (woken by the sender's drop) look again.
struct Filling<'a, K: Eq + Hash, V> {
    cache: &'a ReadCache<K, V>,
    key: &'a K,
    _done: tokio::sync::watch::Sender<()>,
}

impl<K: Eq + Hash, V> Drop for Filling<'_, K, V> {
    fn drop(&mut self) {
        self.cache
            .entries
            .lock()
            .expect("read cache lock")
            .filling
            .remove(self.key);
    }
}

/// Answers by key, all read under one write count. The lock is held for a lookup or an insert only,
/// never across an await.
pub struct ReadCache<K, V> {
    ttl: Duration,
    entries: Mutex<Entries<K, V>>,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(ttl: Duration) -> ReadCache<K, V> {
        ReadCache {
            ttl,
            entries: Mutex::new(Entries {
                writes: 0,
                map: HashMap::new(),
                filling: HashMap::new(),
            }),
        }
    }

    /// The answer for `key`, when one was read since the last write and within the ttl.
    #[cfg(test)]
    pub fn get<Q>(&self, writes: &Writes, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.ttl.is_zero() {
            return None;
        }
        let now = writes.ticket();
        let entries = self.entries.lock().expect("read cache lock");
        if entries.writes != now {
            return None;
        }
        entries
            .map
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The answer for `key` from memory, or from `fill` — run by one caller at a time per key; the others
    /// wait for it and then look again. No lock is held across an await.
    pub async fn get_or_fill<E, F, Fut>(&self, writes: &Writes, key: &K, fill: F) -> Result<V, E>
    where
        K: Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return fill().await;
        }
        loop {
            let step = {
                let mut entries = self.entries.lock().expect("read cache lock");
                let fresh = entries.writes == writes.ticket();
                match entries.map.get(key).filter(|(at, _)| fresh && at.elapsed() < self.ttl) {
                    Some((_, v)) => Step::Hit(v.clone()),
                    None => match entries.filling.get(key) {
                        Some(rx) => Step::Wait(rx.clone()),
                        None => {
                            let (tx, rx) = tokio::sync::watch::channel(());
                            entries.filling.insert(key.clone(), rx);
                            Step::Fill(tx)
                        }
                    },
                }
            };
            match step {
                Step::Hit(v) => return Ok(v),
                // Ends when the read does (its sender dropped), even if that was before this wait.
                Step::Wait(mut rx) => while rx.changed().await.is_ok() {},
                Step::Fill(done) => {
                    let _filling = Filling {
                        cache: self,
                        key,
                        _done: done,
                    };
                    let ticket = writes.ticket();
                    let value = fill().await?;
                    self.put(writes, ticket, key.clone(), value.clone());
                    return Ok(value);
                }
            }
        }
    }

    /// Keep an answer read under `ticket`; one read while a write was going on is not kept.
    pub fn put(&self, writes: &Writes, ticket: u64, key: K, value: V) {
        if self.ttl.is_zero() || writes.ticket() != ticket {
            return;
        }
        let mut entries = self.entries.lock().expect("read cache lock");
        if entries.writes != ticket || entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
            entries.writes = ticket;
        }
        entries.map.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_since_the_read_invalidates_and_a_read_during_a_write_is_not_kept() {
        let w = Writes::default();
        let c: ReadCache<Option<String>, &str> = ReadCache::new(Duration::from_secs(60));
        c.put(&w, w.ticket(), None, "[1]");
        assert_eq!(c.get(&w, &None), Some("[1]"));
        assert!(c.get(&w, &Some("s".to_owned())).is_none());
        drop(w.writing());
        assert!(c.get(&w, &None).is_none(), "written since");
        // A list read while a write was going on carries the older ticket: never served.
        let before = w.ticket();
        let guard = w.writing();
        c.put(&w, before, None, "[2]");
        drop(guard);
        assert!(c.get(&w, &None).is_none());
        // An answer read before a write that ended before the put is not kept either.
        let before = w.ticket();
        drop(w.writing());
        c.put(&w, before, None, "[3]");
        assert!(c.get(&w, &None).is_none());
    }

    #[test]
    fn ttl_bounds_an_entry_and_zero_turns_it_off() {
        let w = Writes::default();
        let c: ReadCache<u8, u8> = ReadCache::new(Duration::ZERO);
        c.put(&w, w.ticket(), 1, 1);
        assert!(c.get(&w, &1).is_none());
        let c: ReadCache<u8, u8> = ReadCache::new(Duration::from_millis(20));
        c.put(&w, w.ticket(), 1, 1);
        assert_eq!(c.get(&w, &1), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get(&w, &1).is_none());
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_read_it_once() {
        let w = Writes::default();
        let c: ReadCache<u8, u32> = ReadCache::new(Duration::from_secs(60));
        let reads = std::sync::atomic::AtomicU32::new(0);
        let fill = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(7)
        };
        let all = futures_util::future::join_all((0..50).map(|_| c.get_or_fill(&w, &1, fill))).await;
        assert!(all.iter().all(|r| *r == Ok(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for 50 concurrent misses");
        // A failed read lets the next caller read again.
        let failed: Result<u32, &str> = c.get_or_fill(&w, &2, || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(c.get_or_fill(&w, &2, || async { Ok::<_, &str>(9) }).await, Ok(9));
    }

    #[test]
    fn the_cache_is_bounded() {
        let w = Writes::default();
        let c: ReadCache<usize, ()> = ReadCache::new(Duration::from_secs(60));
        for k in 0..MAX_ENTRIES + 10 {
            c.put(&w, w.ticket(), k, ());
        }
        assert!(c.entries.lock().unwrap().map.len() <= MAX_ENTRIES);
    }
}
