//! Several load hosts: `loadgen run FILE --shard i/k --start-at TIME`.
//!
//! A [`Shard`] names one of `k` loadgen processes that share one workload: each drives `1/k` of
//! the load with its own operation stream, and all of them begin warm-up at the same wall-clock
//! time ([`parse_start_at`]). `loadgen merge` puts their results folders back together.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The most loadgen processes one workload may be split into.
pub const MAX_SHARDS: u32 = 1024;
/// `--start-at` may lie this far in the past (a few seconds of clock skew or a slow shell);
/// further back is a mistake.
pub const START_AT_MAX_PAST: Duration = Duration::from_secs(5);
/// `--start-at` may lie at most this far ahead.
pub const START_AT_MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// One of `count` loadgen processes sharing a workload (`--shard index/count`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which share this process drives, `1..=count`.
    pub index: u32,
    /// How many processes share the workload.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Mixes the shard number into a seed (SplitMix64's finaliser), so neighbouring shards get
/// unrelated generator streams.
fn mix_seed(seed: u64, index: u32) -> u64 {
    let mut z = seed ^ u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Shard {
    /// The whole workload in one process (what `run` does without `--shard`).
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Parses `i/k` with `1 <= i <= k <= MAX_SHARDS`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let usage = || {
            format!(
                "`{text}` is not a shard: write `i/k`, this process's share i of k loadgens, \
                 with 1 <= i <= k <= {MAX_SHARDS} (e.g. `--shard 1/2` and `--shard 2/2`)"
            )
        };
        let (i, k) = text.trim().split_once('/').ok_or_else(usage)?;
        let index: u32 = i.trim().parse().map_err(|_| usage())?;
        let count: u32 = k.trim().parse().map_err(|_| usage())?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "--shard {text}: the number of loadgens must be 1..={MAX_SHARDS}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "--shard {text}: the share must be 1..={count} (shards count from 1)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether this is the whole workload (`1/1`).
    pub fn is_whole(self) -> bool {
        self.count <= 1
    }

    /// 0-based position of this shard among the `count`.
    pub fn offset(self) -> u64 {
        u64::from(self.index.saturating_sub(1))
    }

    /// This shard's part of `total` indivisible things (workers, operations): `total / count`,
    /// plus one for the first `total % count` shards, so the parts add up to `total`.
    pub fn share_of(self, total: u64) -> u64 {
        let count = u64::from(self.count.max(1));
        total / count + u64::from(self.offset() < total % count)
    }

    /// The seed of this shard's generators. The whole workload keeps `seed` itself, so a run
    /// without `--shard` is unchanged.
    pub fn seed(self, seed: u64) -> u64 {
        if self.is_whole() {
            seed
        } else {
            mix_seed(seed, self.index)
        }
    }
}

/// Parses `--start-at`: an RFC 3339 timestamp (`2026-11-28T20:00:00Z`, an offset instead of `Z`
/// works too) or Unix seconds (`1795896000`, a fraction allowed). Refuses a time more than
/// [`START_AT_MAX_PAST`] before `now` or more than [`START_AT_MAX_AHEAD`] after it.
pub fn parse_start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let numeric = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|c| *c == '.').count() <= 1;
    let at = if numeric {
        let secs: f64 = text.parse().map_err(|_| bad_time(text))?;
        let since_epoch = Duration::try_from_secs_f64(secs).map_err(|_| bad_time(text))?;
        UNIX_EPOCH
            .checked_add(since_epoch)
            .ok_or_else(|| bad_time(text))?
    } else {
        let parsed =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("{} ({e})", bad_time(text)))?;
        SystemTime::from(parsed)
    };
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AT_MAX_AHEAD => Err(format!(
            "--start-at {text} is {:.1} h from now; give a time within the next 24 h",
            ahead.as_secs_f64() / 3600.0
        )),
        Ok(_) => Ok(at),
        Err(e) if e.duration() > START_AT_MAX_PAST => Err(format!(
            "--start-at {text} was {:.0} s ago; give a time a little ahead, the same on every \
             host (e.g. `date -u -d '+2 min' +%FT%TZ`)",
            e.duration().as_secs_f64()
        )),
        Err(_) => Ok(at),
    }
}

fn bad_time(text: &str) -> String {
    format!(
        "--start-at `{text}` is not a time: give an RFC 3339 UTC timestamp such as \
         2026-11-28T20:00:00Z, or Unix seconds"
    )
}

/// `2026-11-28T20:00:00Z`, with milliseconds when the time has any (`…:00.250Z`).
pub fn start_at_text(t: SystemTime) -> String {
    let text = super::units::utc_iso8601(t);
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    match text.strip_suffix('Z') {
        Some(head) if millis > 0 => format!("{head}.{millis:03}Z"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_as_i_of_k() {
        assert_eq!(Shard::parse("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert_eq!(Shard::parse(" 3 / 3 "), Ok(Shard { index: 3, count: 3 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard::WHOLE));
        assert_eq!(Shard::parse("1024/1024").map(|s| s.count), Ok(1024));
        for bad in [
            "", "2", "0/2", "3/2", "1/0", "1/1025", "a/b", "-1/2", "1/2/3", "1.5/2",
        ] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("shard") || e.contains("share"), "{bad}: {e}");
        }
        assert_eq!(Shard { index: 2, count: 5 }.to_string(), "2/5");
    }

    #[test]
    fn shares_add_up_to_the_whole() {
        for (total, count) in [(10u64, 3u32), (7, 7), (5, 2), (1_000_003, 1024), (0, 4)] {
            let parts: Vec<u64> = (1..=count)
                .map(|index| Shard { index, count }.share_of(total))
                .collect();
            assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {count}");
            let (min, max) = (parts.iter().min(), parts.iter().max());
            assert!(max.unwrap() - min.unwrap() <= 1, "{parts:?}");
        }
        assert_eq!(Shard::WHOLE.share_of(9), 9);
    }

    #[test]
    fn shard_seeds_differ_and_the_whole_keeps_its_seed() {
        assert_eq!(Shard::WHOLE.seed(7), 7);
        let seeds: std::collections::BTreeSet<u64> = (1..=64)
            .map(|index| Shard { index, count: 64 }.seed(7))
            .collect();
        assert_eq!(seeds.len(), 64);
        assert!(!seeds.contains(&7));
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds_within_bounds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_896_000); // 2026-11-28T20:00:00Z
        let at = |s: &str| parse_start_at(s, now);
        assert_eq!(
            at("2026-11-28T20:01:00Z"),
            Ok(now + Duration::from_secs(60))
        );
        assert_eq!(
            at("2026-11-28T21:01:00+01:00"),
            Ok(now + Duration::from_secs(60))
        );
        assert_eq!(at("1795896030"), Ok(now + Duration::from_secs(30)));
        assert_eq!(at("1795896030.5"), Ok(now + Duration::from_millis(30_500)));
        // A few seconds late is clock skew, not a mistake.
        assert_eq!(at("1795895998"), Ok(now - Duration::from_secs(2)));
        assert!(at("2026-11-28T19:59:00Z").unwrap_err().contains("ago"));
        assert!(at("2026-11-30T20:00:00Z").unwrap_err().contains("24 h"));
        for bad in [
            "soon",
            "",
            "2026-11-28 20:00",
            "1e9",
            "12.3.4",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(at(bad).unwrap_err().contains("not a time"), "{bad}");
        }
    }

    #[test]
    fn start_times_print_with_milliseconds_only_when_they_have_them() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_896_000);
        assert_eq!(start_at_text(t), "2026-11-28T20:00:00Z");
        assert_eq!(
            start_at_text(t + Duration::from_millis(250)),
            "2026-11-28T20:00:00.250Z"
        );
    }
}
