//! Recording: per action, the current one-second window (an HDR histogram of latencies in µs and
//! counters) behind a short lock that is never held across an await; once a second the windows are
//! swapped out, summarized into the time series and merged into the run totals. Memory does not grow
//! with the number of requests: only with the number of windows, a few numbers each.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::data::{FailureKind, LatencyBuckets, StreamFigures, Summary};

/// Highest latency a histogram holds (µs): one hour. Longer ones are clamped.
const MAX_MICROS: u64 = 3_600_000_000;
/// Cap on distinct error messages kept per action.
const MAX_ERROR_MESSAGES: usize = 20;
/// Cap on distinct replicas counted per action; answers of any further one are counted together.
const MAX_REPLICAS: usize = 32;
const OTHER_REPLICAS: &str = "(others)";

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds")
}

/// A histogram as results files carry it: an HdrHistogram V2 (deflate) serialization, base64.
pub fn encode_histogram(stats: &Stats) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2DeflateSerializer::new()
        .serialize(&stats.latency, &mut buf)
        .expect("serializing a histogram into memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    check_histogram_header(&bytes)?;
    Ok(hdrhistogram::serialization::Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

/// The HdrHistogram V2 cookies (with the word size, 0x10): plain, and deflated (its header inside the
/// zlib stream).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// Larger than any histogram of ours encodes to (a counts array of tens of thousands, a few bytes each).
const MAX_HISTOGRAM_PAYLOAD: u32 = 1 << 20;

/// Refuse a histogram whose header claims more than a histogram of ours can be, before the decoder
/// allocates what it claims (a crafted file said 4 GiB).
fn check_histogram_header(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Read as _;
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|w| u32::from_be_bytes(w.try_into().expect("4 bytes")))
    };
    let long = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .map(|w| u64::from_be_bytes(w.try_into().expect("8 bytes")))
    };
    let mut header = [0u8; 40];
    let header: &[u8] = match word(bytes, 0) {
        Some(V2_COOKIE) => bytes,
        Some(V2_DEFLATE_COOKIE) => {
            let compressed = bytes.get(8..).ok_or_else(|| anyhow::anyhow!("a histogram cut short"))?;
            flate2::read::ZlibDecoder::new(compressed)
                .read_exact(&mut header)
                .map_err(|e| anyhow::anyhow!("a histogram whose header does not inflate: {e}"))?;
            &header
        }
        _ => anyhow::bail!("not an HdrHistogram V2 histogram"),
    };
    let (Some(V2_COOKIE), Some(payload), Some(digits), Some(low), Some(high)) = (
        word(header, 0),
        word(header, 4),
        word(header, 12),
        long(header, 16),
        long(header, 24),
    ) else {
        anyhow::bail!("a histogram with a malformed header");
    };
    anyhow::ensure!(
        payload <= MAX_HISTOGRAM_PAYLOAD && digits <= 5 && low >= 1 && high <= MAX_MICROS && low <= high,
        "a histogram beyond any stampede writes (payload {payload} bytes, {digits} digits, range {low}..{high})"
    );
    Ok(())
}

/// What one action came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A declared status or error, e.g. 409 on a contended toggle: neither ok nor a failure.
    Expected,
    Failed(FailureKind),
}

/// One finished action, as the engine reports it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub latency: Duration,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub rpc_error: Option<i64>,
    pub error: Option<&'a str>,
    /// Bytes of the answer read (head and body), when the action counts them (`http`, `rpc`).
    pub bytes: Option<u64>,
    /// The replica that served it, when the target names one (`[target] served_by_header`).
    pub served_by: Option<&'a [u8]>,
}

/// Counters and a latency histogram: of one window, or of a whole run. Mergeable.
#[derive(Debug, Clone)]
pub struct Stats {
    pub count: u64,
    pub ok: u64,
    pub expected: u64,
    pub failed: u64,
    /// Cut unanswered at the hard stop (`Recorder::abort`).
    pub aborted: u64,
    /// Connections that could not be made: no request, so no count and no latency.
    pub connect_errors: u64,
    /// Bytes of answers read, over the samples that counted them (`bytes_counted`).
    pub bytes_read: u64,
    pub bytes_counted: u64,
    pub failures: BTreeMap<FailureKind, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub rpc_errors: BTreeMap<i64, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Answers per replica that served them.
    pub served_by: BTreeMap<String, u64>,
    pub latency: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            count: 0,
            ok: 0,
            expected: 0,
            failed: 0,
            aborted: 0,
            connect_errors: 0,
            bytes_read: 0,
            bytes_counted: 0,
            failures: BTreeMap::new(),
            statuses: BTreeMap::new(),
            rpc_errors: BTreeMap::new(),
            errors: BTreeMap::new(),
            served_by: BTreeMap::new(),
            latency: new_histogram(),
        }
    }
}

impl Stats {
    pub fn record(&mut self, s: &Sample<'_>) {
        self.note_error(s.error);
        if let Some(replica) = s.served_by {
            let name = std::str::from_utf8(replica).unwrap_or("(not UTF-8)");
            self.note_replica(name, 1);
        }
        if s.outcome == Outcome::Failed(FailureKind::Connect) {
            // Not a request: the rate and the latencies are of requests sent.
            self.connect_errors += 1;
            return;
        }
        self.count += 1;
        if let Some(bytes) = s.bytes {
            self.bytes_read += bytes;
            self.bytes_counted += 1;
        }
        match s.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Expected => self.expected += 1,
            Outcome::Failed(kind) => {
                self.failed += 1;
                *self.failures.entry(kind).or_default() += 1;
            }
        }
        if let Some(status) = s.status {
            *self.statuses.entry(status).or_default() += 1;
        }
        if let Some(code) = s.rpc_error {
            *self.rpc_errors.entry(code).or_default() += 1;
        }
        self.latency
            .saturating_record((s.latency.as_micros() as u64).clamp(1, MAX_MICROS));
    }

    fn note_error(&mut self, error: Option<&str>) {
        if let Some(msg) = error {
            // A target's words are kept as a terminal may show them.
            let printable = crate::stdio::printable(msg);
            let msg: &str = &printable;
            if let Some(n) = self.errors.get_mut(msg) {
                *n += 1;
            } else if self.errors.len() < MAX_ERROR_MESSAGES {
                self.errors.insert(msg.to_owned(), 1);
            }
        }
    }

    /// `n` more answers served by `name`; past [`MAX_REPLICAS`] names, counted as others.
    fn note_replica(&mut self, name: &str, n: u64) {
        if let Some(count) = self.served_by.get_mut(name) {
            *count += n;
        } else if self.served_by.len() < MAX_REPLICAS {
            self.served_by.insert(name.to_owned(), n);
        } else {
            *self.served_by.entry(OTHER_REPLICAS.to_owned()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.ok += other.ok;
        self.expected += other.expected;
        self.failed += other.failed;
        self.aborted += other.aborted;
        self.connect_errors += other.connect_errors;
        self.bytes_read += other.bytes_read;
        self.bytes_counted += other.bytes_counted;
        for (k, n) in &other.failures {
            *self.failures.entry(*k).or_default() += n;
        }
        for (k, n) in &other.statuses {
            *self.statuses.entry(*k).or_default() += n;
        }
        for (k, n) in &other.rpc_errors {
            *self.rpc_errors.entry(*k).or_default() += n;
        }
        for (k, n) in &other.errors {
            if let Some(m) = self.errors.get_mut(k) {
                *m += n;
            } else if self.errors.len() < MAX_ERROR_MESSAGES {
                self.errors.insert(k.clone(), *n);
            }
        }
        for (name, n) in &other.served_by {
            self.note_replica(name, *n);
        }
        self.latency
            .add(&other.latency)
            .expect("histograms of one configuration add");
    }

    /// Back to empty, keeping the histogram's memory.
    pub fn reset(&mut self) {
        self.count = 0;
        self.ok = 0;
        self.expected = 0;
        self.failed = 0;
        self.aborted = 0;
        self.connect_errors = 0;
        self.bytes_read = 0;
        self.bytes_counted = 0;
        self.failures.clear();
        self.statuses.clear();
        self.rpc_errors.clear();
        self.errors.clear();
        self.served_by.clear();
        self.latency.reset();
    }

    /// The latency as Prometheus buckets (`LatencyBuckets::BOUNDS_S`), in one pass over the recorded
    /// values.
    pub fn buckets(&self) -> LatencyBuckets {
        let bounds = LatencyBuckets::BOUNDS_S.map(|b| (b * 1e6) as u64);
        let mut cumulative = vec![0u64; bounds.len()];
        for v in self.latency.iter_recorded() {
            let micros = self.latency.median_equivalent(v.value_iterated_to());
            let first = bounds.partition_point(|b| *b < micros);
            if let Some(c) = cumulative.get_mut(first) {
                *c += v.count_at_value();
            }
        }
        for i in 1..cumulative.len() {
            cumulative[i] += cumulative[i - 1];
        }
        let count = self.latency.len();
        LatencyBuckets {
            cumulative,
            count,
            sum_s: if count > 0 {
                self.latency.mean() * count as f64 / 1e6
            } else {
                0.0
            },
        }
    }

    pub fn summary(&self, seconds: f64) -> Summary {
        let q = |p: f64| (self.count > 0).then(|| self.latency.value_at_quantile(p) as f64 / 1000.0);
        Summary {
            count: self.count,
            ok: self.ok,
            expected: self.expected,
            failed: self.failed,
            aborted: self.aborted,
            connect_errors: self.connect_errors,
            bytes_read: (self.bytes_counted > 0).then_some(self.bytes_read),
            rps: if seconds > 0.0 {
                self.count as f64 / seconds
            } else {
                0.0
            },
            mean_ms: (self.count > 0).then(|| self.latency.mean() / 1000.0),
            min_ms: (self.count > 0).then(|| self.latency.min() as f64 / 1000.0),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: (self.count > 0).then(|| self.latency.max() as f64 / 1000.0),
        }
    }
}

/// Live gauges the engine keeps while it runs.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Closed model: users running now.
    pub users: AtomicU64,
    /// Actions started and not finished.
    pub in_flight: SpreadGauge,
    /// HTTP+SSE sessions (client side).
    pub sse: StreamGauges,
    /// Streamable HTTP sessions (client side).
    pub mcp: StreamGauges,
    /// Open model: arrivals dropped because every slot was busy.
    pub dropped: AtomicU64,
}

impl Gauges {
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// One transport's sessions as the client sees them: open now, opened, and how each ended.
#[derive(Debug, Default)]
pub struct StreamGauges {
    pub open: AtomicI64,
    pub opened: AtomicU64,
    /// Ended by the client: dropped (FIN), reset (RST), closed in order, or deleted (`DELETE`).
    pub closed_abrupt: AtomicU64,
    pub closed_rst: AtomicU64,
    pub closed_graceful: AtomicU64,
    pub closed_delete: AtomicU64,
    /// Ended by the server before the client closed them (stream ended, session gone).
    pub server_closed: AtomicU64,
    /// Ended by an error on the way (a broken connection, a malformed answer, a timeout).
    pub errored: AtomicU64,
    /// Told their session was not found (404) and started a new one; of those, the ones whose new
    /// session answered, and their time from the 404 to that answer (ms, summed).
    pub reinitialized: AtomicU64,
    pub recovered: AtomicU64,
    pub recovery_ms: AtomicU64,
    /// Left without a delete: the server offers none (405).
    pub closed_undeletable: AtomicU64,
    /// `GET` streams the server offers none of (405).
    pub listen_not_offered: AtomicU64,
    /// Sessions that spoke the stateless era (2026-07-28).
    pub stateless: AtomicU64,
    /// `protocol = "auto"` sessions whose server did not speak the stateless era (`initialize` after
    /// `server/discover`).
    pub fell_back: AtomicU64,
    /// Stateless era: retries of a request that answered `input_required` (MRTR).
    pub mrtr_rounds: AtomicU64,
    /// Stateless era: results carrying caching hints (`ttlMs`), and of those `cacheScope: private`.
    pub cache_hinted: AtomicU64,
    pub cache_private: AtomicU64,
    /// The smallest `ttlMs` seen, plus one (0: none seen).
    pub ttl_ms_min: AtomicU64,
    /// `cache = true`: requests answered from the client's cache, not sent.
    pub cache_hits: AtomicU64,
    /// Messages the server sent on held streams (a listen's acknowledgement, change notifications).
    pub stream_messages: AtomicU64,
}

impl StreamGauges {
    /// A stateless result's caching hints.
    pub fn hinted(&self, ttl_ms: u64, private: bool) {
        self.cache_hinted.fetch_add(1, Ordering::Relaxed);
        if private {
            self.cache_private.fetch_add(1, Ordering::Relaxed);
        }
        let plus_one = ttl_ms.saturating_add(1);
        let _ = self.ttl_ms_min.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            (t == 0 || plus_one < t).then_some(plus_one)
        });
    }

    pub fn figures(&self, peak_open: i64) -> StreamFigures {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StreamFigures {
            open: self.open.load(Ordering::Relaxed),
            opened: get(&self.opened),
            closed_abrupt: get(&self.closed_abrupt),
            closed_rst: get(&self.closed_rst),
            closed_graceful: get(&self.closed_graceful),
            closed_delete: get(&self.closed_delete),
            server_closed: get(&self.server_closed),
            errored: get(&self.errored),
            reinitialized: get(&self.reinitialized),
            recovered: get(&self.recovered),
            recovery_ms: get(&self.recovery_ms),
            closed_undeletable: get(&self.closed_undeletable),
            listen_not_offered: get(&self.listen_not_offered),
            stateless: get(&self.stateless),
            fell_back: get(&self.fell_back),
            mrtr_rounds: get(&self.mrtr_rounds),
            cache_hinted: get(&self.cache_hinted),
            cache_private: get(&self.cache_private),
            ttl_ms_min: get(&self.ttl_ms_min).checked_sub(1),
            cache_hits: get(&self.cache_hits),
            stream_messages: get(&self.stream_messages),
            peak_open,
        }
    }
}

thread_local! {
    /// Which of the recorder's shards this thread writes to (`bind_thread`; 0 for any other thread).
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Make the calling thread record into shard `index` (modulo the shards there are): each load thread
/// gets its own, so two cores never write the same window or counter.
pub fn bind_thread(index: usize) {
    SHARD.with(|s| s.set(index));
}

fn shard_of(shards: usize) -> usize {
    SHARD.with(|s| s.get()) % shards
}

/// How many shards: one per core the process may use.
fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A value on a cache line of its own, so the cores' shards do not share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A gauge counted per thread and summed when read: updating it costs no cache line another core writes.
#[derive(Debug)]
pub struct SpreadGauge {
    cells: Box<[Padded<AtomicI64>]>,
}

impl Default for SpreadGauge {
    fn default() -> SpreadGauge {
        SpreadGauge {
            cells: (0..shard_count()).map(|_| Padded::default()).collect(),
        }
    }
}

impl SpreadGauge {
    pub fn add(&self, n: i64) {
        self.cells[shard_of(self.cells.len())].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn load(&self) -> i64 {
        self.cells.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }
}

/// The per-action windows being filled now, one set per shard (`bind_thread`).
pub struct Recorder {
    /// `windows[shard][slot]`
    windows: Vec<Vec<Padded<Mutex<Stats>>>>,
    slots: usize,
    pub gauges: Gauges,
}

impl Recorder {
    /// One recording slot per name (actions, then their sub-measurements such as SSE replies).
    pub fn new(slots: usize) -> Recorder {
        Recorder {
            windows: (0..shard_count())
                .map(|_| (0..slots).map(|_| Padded(Mutex::new(Stats::default()))).collect())
                .collect(),
            slots,
            gauges: Gauges::default(),
        }
    }

    /// The lock is the calling thread's shard's: uncontended unless a non-load thread records too.
    pub fn record(&self, slot: usize, sample: &Sample<'_>) {
        self.windows[shard_of(self.windows.len())][slot]
            .0
            .lock()
            .expect("window lock")
            .record(sample);
    }

    /// An action of `slot` was cut unanswered at the hard stop: counted, as every request started is.
    pub fn abort(&self, slot: usize) {
        self.windows[shard_of(self.windows.len())][slot]
            .0
            .lock()
            .expect("window lock")
            .aborted += 1;
    }

    /// Fill `spare[slot]` with each slot's finished window (the shards merged) and empty the shards:
    /// no histogram is allocated per second.
    pub fn swap_windows(&self, spare: &mut [Stats]) {
        for (slot, spare) in spare.iter_mut().enumerate() {
            spare.reset();
            for shard in &self.windows {
                let mut window = shard[slot].0.lock().expect("window lock");
                spare.merge(&window);
                window.reset();
            }
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, outcome: Outcome, status: u16) -> Sample<'static> {
        Sample {
            latency: Duration::from_millis(ms),
            outcome,
            status: Some(status),
            rpc_error: None,
            error: None,
            bytes: None,
            served_by: None,
        }
    }

    #[test]
    fn a_histogram_claiming_more_than_ours_is_refused_before_it_is_decoded() {
        use base64::Engine as _;
        use std::io::Write as _;
        let mut stats = Stats::default();
        stats.latency.record(1234).unwrap();
        let ours = encode_histogram(&stats);
        assert_eq!(decode_histogram(&ours).unwrap().len(), 1);
        // A plain V2 header claiming a 4 GiB payload, and the same deflated.
        let mut header = Vec::new();
        for word in [V2_COOKIE, u32::MAX, 0, 3] {
            header.extend_from_slice(&word.to_be_bytes());
        }
        for long in [1u64, MAX_MICROS, 1f64.to_bits()] {
            header.extend_from_slice(&long.to_be_bytes());
        }
        let mut deflated = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflated.write_all(&header).unwrap();
        let deflated = deflated.finish().unwrap();
        let mut wrapped = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        wrapped.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
        wrapped.extend_from_slice(&deflated);
        for crafted in [header, wrapped] {
            let text = base64::engine::general_purpose::STANDARD.encode(crafted);
            let e = decode_histogram(&text).unwrap_err().to_string();
            assert!(e.contains("beyond any stampede writes"), "{e}");
        }
    }

    #[test]
    fn windows_swap_and_merge_into_totals() {
        let rec = Recorder::new(1);
        for ms in 1..=100 {
            rec.record(0, &sample(ms, Outcome::Ok, 200));
        }
        rec.record(0, &sample(5, Outcome::Expected, 409));
        rec.record(0, &sample(5, Outcome::Failed(FailureKind::Status), 500));
        let mut spare = vec![Stats::default()];
        rec.swap_windows(&mut spare);
        let window = &spare[0];
        assert_eq!(
            (window.count, window.ok, window.expected, window.failed),
            (102, 100, 1, 1)
        );
        assert_eq!(window.statuses[&409], 1);
        assert_eq!(window.failures[&FailureKind::Status], 1);
        let s = window.summary(1.0);
        assert_eq!(s.rps, 102.0);
        let p50 = s.p50_ms.unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        assert!((99.0..=100.5).contains(&s.max_ms.unwrap()));

        let mut totals = Stats::default();
        totals.merge(window);
        totals.merge(window);
        assert_eq!(totals.count, 204);
        assert_eq!(totals.statuses[&200], 200);

        // The next window starts empty.
        rec.swap_windows(&mut spare);
        assert_eq!(spare[0].count, 0);
        assert_eq!(spare[0].summary(1.0).p99_ms, None, "no samples: no latency, not 0");
    }

    #[test]
    fn error_messages_are_bounded() {
        let mut s = Stats::default();
        for i in 0..100 {
            let msg = format!("error {i}");
            s.record(&Sample {
                latency: Duration::from_millis(1),
                outcome: Outcome::Failed(FailureKind::Connect),
                status: None,
                rpc_error: None,
                error: Some(&msg),
                bytes: None,
                served_by: None,
            });
        }
        assert_eq!(s.errors.len(), MAX_ERROR_MESSAGES);
        assert_eq!(
            (s.connect_errors, s.count, s.failed),
            (100, 0, 0),
            "a failed connect is no request"
        );
        assert_eq!(s.summary(1.0).rps, 0.0);
        assert_eq!(s.summary(1.0).p50_ms, None, "and has no latency");
        assert_eq!(s.summary(1.0).failure_rate(), Some(1.0), "but fails the attempt");
    }
}
