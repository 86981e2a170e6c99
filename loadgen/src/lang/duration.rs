//! Durations as scenarios write them: `"250ms"`, `"10s"`, `"1m30s"`, `"1.5h"` — a number and a unit,
//! repeated, no spaces. Ranges: `"100ms..500ms"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration that serializes back to the text it was written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

/// A duration or a range of them that does not parse; the message says what a good one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "bad duration {0:?}: write a number and a unit (ms, s, m, h) with no spaces, e.g. \"10s\", \"250ms\", \"1m30s\""
    )]
    Malformed(String),
    #[error("range {0:?} ends before it starts")]
    Backwards(String),
}

/// Parse `"1m30s"` and the like.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Malformed(text.to_owned());
    // Counted in whole nanoseconds, not a float: "8308256492ms" is that many milliseconds exactly.
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (whole, fraction) = rest[..num_len].split_once('.').unwrap_or((&rest[..num_len], ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        // Digits past the nanosecond are dropped.
        let mut part = 0u128;
        let mut scale = unit;
        for d in fraction.bytes() {
            scale /= 10;
            part += u128::from(d - b'0') * scale;
        }
        total = whole
            .checked_mul(unit)
            .and_then(|n| n.checked_add(part))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(bad)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        let s = ms / 1000;
        match (s / 3600, (s % 3600) / 60, s % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, 0) => format!("{m}m"),
            (0, m, s) => format!("{m}m{s}s"),
            (h, 0, 0) => format!("{h}h"),
            (h, m, s) => format!("{h}h{m}m{s}s"),
        }
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// A duration drawn uniformly from `[min, max]` each time; a single value is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurRange {
    pub fn fixed(d: Duration) -> Self {
        DurRange { min: d, max: d }
    }

    /// `"250ms"` (fixed) or `"100ms..500ms"` (uniform between).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let range = match text.split_once("..") {
            Some((a, b)) => DurRange {
                min: parse_duration(a)?,
                max: parse_duration(b)?,
            },
            None => DurRange::fixed(parse_duration(text)?),
        };
        if range.max < range.min {
            return Err(DurationError::Backwards(text.to_owned()));
        }
        Ok(range)
    }

    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_micros() as u64;
        self.min + Duration::from_micros(rng.u64(0..=span))
    }
}

impl Serialize for DurRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.min == self.max {
            s.serialize_str(&format_duration(self.min))
        } else {
            s.serialize_str(&format!("{}..{}", format_duration(self.min), format_duration(self.max)))
        }
    }
}

impl<'de> Deserialize<'de> for DurRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DurRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_strictly() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["10 s", "10", "s", "", "10sec", "-1s", "1m 30s"] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err, DurationError::Malformed(bad.to_owned()));
            assert!(err.to_string().contains("bad duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_round_trip_as_text() {
        for text in ["0s", "250ms", "10s", "2m", "1m30s", "1h", "1h0m5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn ranges_sample_inside() {
        let r: DurRange = serde_json::from_str("\"100ms..200ms\"").unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            let d = r.sample(&mut rng);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200));
        }
        assert!(serde_json::from_str::<DurRange>("\"2s..1s\"").is_err());
    }
}
