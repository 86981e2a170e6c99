//! Shards: the I-th of N deterministic slices of a run's load, as k6's execution segments are, so N
//! generator processes (or pods) together make exactly the load one would. Users are split in whole
//! users at every instant (`part`), arrivals by their place in the whole schedule (`owns`): the N slices
//! add up to the whole, never more, never less.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole load: one slice of one.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// This slice's whole units of `total` (users now, worker slots): the slices' parts of the same
    /// total add up to it exactly, and differ by at most one.
    pub fn part(&self, total: usize) -> usize {
        let (i, n) = (self.index as usize - 1, self.count as usize);
        total * (i + 1) / n - total * i / n
    }

    /// This slice's share of a rate or a level shown beside its figures.
    pub fn share(&self, whole: f64) -> f64 {
        whole / f64::from(self.count)
    }

    /// Whether the `k`-th arrival (from 0) of the whole schedule is this slice's.
    pub fn owns(&self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: give I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    fn shards(n: u32) -> Vec<Shard> {
        (1..=n).map(|index| Shard { index, count: n }).collect()
    }

    #[test]
    fn parts_add_up_to_the_whole_at_every_total() {
        for n in 1..=9 {
            for total in 0..500 {
                let parts: Vec<usize> = shards(n).iter().map(|s| s.part(total)).collect();
                assert_eq!(parts.iter().sum::<usize>(), total, "{n} shards of {total}: {parts:?}");
                let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(hi - lo <= 1, "even slices: {parts:?}");
            }
        }
    }

    #[test]
    fn every_arrival_belongs_to_exactly_one_shard() {
        for n in 1..=7 {
            for k in 0..1000 {
                assert_eq!(shards(n).iter().filter(|s| s.owns(k)).count(), 1);
            }
        }
    }

    #[test]
    fn shards_parse_and_bad_ones_are_refused() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard::WHOLE));
        assert_eq!(Shard { index: 3, count: 8 }.to_string(), "3/8");
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N"), "{bad}: {e}");
        }
    }
}
