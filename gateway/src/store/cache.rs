//! The `tools/list` answer, cached between writes. Every write the store makes bumps a counter when it
//! is over (committed or not); a cached list remembers the counter it was read under and is used only
//! while nothing was written since, and never after `ttl` (for writers in other processes sharing the
//! database). The bench found the list built per call to be most of the gateway's CPU per `tools/list`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

/// More keys than this (the whole list, and one per server asked about) and the cache starts over.
const MAX_ENTRIES: usize = 256;

struct Entry {
    server: Option<String>,
    writes: u64,
    at: Instant,
    json: Box<RawValue>,
}

pub struct ToolsCache {
    writes: AtomicU64,
    ttl: Duration,
    entries: Mutex<Vec<Entry>>,
}

/// Bumps the write counter when dropped: at the end of a write, whichever way it ends.
pub struct WriteGuard<'a>(&'a AtomicU64);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl ToolsCache {
    pub fn new(ttl: Duration) -> ToolsCache {
        ToolsCache {
            writes: AtomicU64::new(0),
            ttl,
            entries: Mutex::new(Vec::new()),
        }
    }

    pub fn writing(&self) -> WriteGuard<'_> {
        WriteGuard(&self.writes)
    }

    /// The counter to read a list under; read it before the query.
    pub fn ticket(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn get(&self, server: Option<&str>) -> Option<Box<RawValue>> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = self.ticket();
        let entries = self.entries.lock().expect("tools cache lock");
        entries
            .iter()
            .find(|e| e.server.as_deref() == server)
            .filter(|e| e.writes == now && e.at.elapsed() < self.ttl)
            .map(|e| e.json.clone())
    }

    pub fn put(&self, server: Option<&str>, ticket: u64, json: &RawValue) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("tools cache lock");
        entries.retain(|e| e.server.as_deref() != server);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.push(Entry {
            server: server.map(str::to_owned),
            writes: ticket,
            at: Instant::now(),
            json: json.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn a_write_since_the_read_invalidates_and_a_read_during_a_write_is_not_kept() {
        let c = ToolsCache::new(Duration::from_secs(60));
        let t = c.ticket();
        c.put(None, t, &json("[1]"));
        assert_eq!(c.get(None).unwrap().get(), "[1]");
        assert!(c.get(Some("s")).is_none());
        drop(c.writing());
        assert!(c.get(None).is_none(), "written since");
        // A list read while a write was going on carries the older ticket: never served.
        let before = c.ticket();
        let w = c.writing();
        c.put(None, before, &json("[2]"));
        drop(w);
        assert!(c.get(None).is_none());
    }

    #[test]
    fn ttl_zero_turns_it_off() {
        let c = ToolsCache::new(Duration::ZERO);
        c.put(None, c.ticket(), &json("[]"));
        assert!(c.get(None).is_none());
    }
}
