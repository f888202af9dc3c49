//! The small value types a workload file is written in: byte sizes (`100`, `1KB`, `10KB`),
//! durations (`500ms`, `30s`, `2m`), value-size specs, quorum pairs and the preload switch.
//!
//! Each accepts the friendly YAML spellings and refuses anything else with a message that says
//! what is accepted; none of them panics on input.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A size in bytes. `KB` is 1024 bytes, `MB` is 1024 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `100`, `100B`, `1KB`, `1.5KB`, `10KiB`, `1MB` (case-insensitive units).
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "kib" | "k" => 1024,
            "mb" | "mib" | "m" => 1024 * 1024,
            _ => {
                return Err(format!(
                    "`{text}` is not a size: write e.g. 100, 1KB or 10KB"
                ));
            }
        };
        let n: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a size: write e.g. 100, 1KB or 10KB"))?;
        if !n.is_finite() || n < 0.0 {
            return Err(format!(
                "`{text}` is not a size: it must be zero or more bytes"
            ));
        }
        let bytes = (n * mult as f64).round();
        if bytes > u32::MAX as f64 {
            return Err(format!("`{text}` is too large for a size"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1024 * 1024 && b.is_multiple_of(1024 * 1024) {
            write!(f, "{}MB", b / (1024 * 1024))
        } else if b >= 1024 && b.is_multiple_of(1024) {
            write!(f, "{}KB", b / 1024)
        } else if b >= 1024 && (b * 10).is_multiple_of(1024) {
            write!(f, "{:.1}KB", b as f64 / 1024.0)
        } else {
            write!(f, "{b}B")
        }
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as 100, 1KB or 10KB")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom("a size must be zero or more bytes"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        ByteSize::parse(&v.to_string()).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteSizeVisitor)
    }
}

/// A duration written `500ms`, `30s`, `2m`, `1h`, `100us`, `500ns`, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    /// Parses `500ms`, `30s`, `1.5s`, `2m`, `1h`, `100us`, `500ns`, or `30` (seconds).
    pub fn parse(text: &str) -> Result<DurationSpec, String> {
        let t = text.trim();
        let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let secs_per_unit = match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            "ns" => 1e-9,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration: write e.g. 500ms, 30s or 2m"
                ));
            }
        };
        let n: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a duration: write e.g. 500ms, 30s or 2m"))?;
        Self::from_secs(n * secs_per_unit).ok_or_else(|| format!("`{text}` is out of range"))
    }

    fn from_secs(secs: f64) -> Option<DurationSpec> {
        (secs.is_finite() && (0.0..=86_400.0 * 7.0).contains(&secs))
            .then(|| DurationSpec(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exact, so a service time of `100us` or `500ns` reads back as written.
        let ns = self.0.as_nanos();
        if !ns.is_multiple_of(1000) {
            return write!(f, "{ns}ns");
        }
        let us = ns / 1000;
        if us.is_multiple_of(1_000_000) {
            write!(f, "{}s", us / 1_000_000)
        } else if us.is_multiple_of(1000) {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 500ms, 30s or 2m")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
        DurationSpec::from_secs(v as f64).ok_or_else(|| E::custom("duration out of range"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
        DurationSpec::from_secs(v as f64).ok_or_else(|| E::custom("a duration cannot be negative"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationSpec, E> {
        DurationSpec::from_secs(v).ok_or_else(|| E::custom("duration out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
        DurationSpec::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// Parses a percentage, `10%` or `10`, into a fraction (0.1). Any finite value of 0% or
/// more; callers bound it further.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%').trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage; write e.g. 5%"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{text}`: a percentage must be 0% or more"));
    }
    Ok(v / 100.0)
}

/// A percentage written with its sign, `0.1%` or `5%`; holds the fraction (0.001, 0.05).
///
/// A bare number is refused: `errors: 0.1` could mean 0.1% or 10%.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Round away the binary noise of the division (0.1% is 0.0010000000000000002 * 100).
        let pct = (self.0 * 100.0 * 1e9).round() / 1e9;
        write!(f, "{pct}%")
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct PercentVisitor;

impl PercentVisitor {
    fn bare<E: de::Error>(v: impl fmt::Display) -> E {
        E::custom(format!(
            "`{v}` is a bare number; write a percentage with its sign, e.g. `{v}%`"
        ))
    }
}

impl Visitor<'_> for PercentVisitor {
    type Value = Percent;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a percentage such as 0.1% or 5%")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
        Err(Self::bare(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
        Err(Self::bare(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
        Err(Self::bare(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
        if !v.trim().ends_with('%') {
            return Err(Self::bare(v.trim()));
        }
        parse_percent(v).map(Percent).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PercentVisitor)
    }
}

/// One entry of a weighted value-size list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedSize {
    /// The value size.
    pub size: ByteSize,
    /// Relative weight (any non-negative number; they need not sum to 100).
    pub weight: f64,
}

/// How big the values of writes are.
///
/// YAML: `size: 1KB` (fixed), `size: {min: 100, max: 10KB}` (uniform), or
/// `size: [{size: 100, weight: 9}, {size: 10KB, weight: 1}]` (weighted).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Every value has this size.
    Fixed(ByteSize),
    /// Uniform over `min..=max`.
    Uniform {
        /// Smallest size.
        min: ByteSize,
        /// Largest size.
        max: ByteSize,
    },
    /// Sizes drawn from a weighted list.
    Weighted(Vec<WeightedSize>),
}

impl SizeSpec {
    /// The largest size this spec can produce.
    pub fn max_bytes(&self) -> u64 {
        match self {
            SizeSpec::Fixed(s) => s.0,
            SizeSpec::Uniform { max, .. } => max.0,
            SizeSpec::Weighted(list) => list.iter().map(|w| w.size.0).max().unwrap_or(0),
        }
    }

    /// The smallest size this spec can produce.
    pub fn min_bytes(&self) -> u64 {
        match self {
            SizeSpec::Fixed(s) => s.0,
            SizeSpec::Uniform { min, .. } => min.0,
            SizeSpec::Weighted(list) => list.iter().map(|w| w.size.0).min().unwrap_or(0),
        }
    }

    /// The mean size (what `value_bytes` reports for a non-fixed spec).
    pub fn mean_bytes(&self) -> u64 {
        match self {
            SizeSpec::Fixed(s) => s.0,
            SizeSpec::Uniform { min, max } => (min.0 + max.0) / 2,
            SizeSpec::Weighted(list) => {
                let total: f64 = list.iter().map(|w| w.weight).sum();
                if total <= 0.0 {
                    return 0;
                }
                let mean: f64 = list.iter().map(|w| w.size.0 as f64 * w.weight).sum::<f64>();
                (mean / total).round() as u64
            }
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fixed(s) => write!(f, "{s}"),
            SizeSpec::Uniform { min, max } => write!(f, "uniform {min}..{max}"),
            SizeSpec::Weighted(list) => {
                f.write_str("weighted ")?;
                for (i, w) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", w.size, w.weight)?;
                }
                Ok(())
            }
        }
    }
}

struct SizeSpecVisitor;

impl<'de> Visitor<'de> for SizeSpecVisitor {
    type Value = SizeSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a size (1KB), a range ({min: 100, max: 10KB}) or a weighted list \
             ([{size: 100, weight: 9}, {size: 10KB, weight: 1}])",
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeSpec, E> {
        ByteSizeVisitor.visit_u64(v).map(SizeSpec::Fixed)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeSpec, E> {
        ByteSizeVisitor.visit_i64(v).map(SizeSpec::Fixed)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SizeSpec, E> {
        ByteSizeVisitor.visit_f64(v).map(SizeSpec::Fixed)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeSpec, E> {
        ByteSizeVisitor.visit_str(v).map(SizeSpec::Fixed)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SizeSpec, A::Error> {
        let mut min = None;
        let mut max = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "min" => min = Some(map.next_value::<ByteSize>()?),
                "max" => max = Some(map.next_value::<ByteSize>()?),
                other => return Err(de::Error::unknown_field(other, &["min", "max"])),
            }
        }
        match (min, max) {
            (Some(min), Some(max)) => Ok(SizeSpec::Uniform { min, max }),
            (None, _) => Err(de::Error::missing_field("min")),
            (_, None) => Err(de::Error::missing_field("max")),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SizeSpec, A::Error> {
        let mut list = Vec::new();
        while let Some(entry) = seq.next_element::<WeightedSize>()? {
            list.push(entry);
        }
        Ok(SizeSpec::Weighted(list))
    }
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeSpecVisitor)
    }
}

/// A write/read quorum pair, written `[2, 2]` or `{w: 2, r: 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quorum {
    /// Write quorum W.
    pub w: u32,
    /// Read quorum R.
    pub r: u32,
}

struct QuorumVisitor;

impl<'de> Visitor<'de> for QuorumVisitor {
    type Value = Quorum;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quorum pair [w, r] or {w: 2, r: 2}")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Quorum, A::Error> {
        let w = seq
            .next_element::<u32>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let r = seq
            .next_element::<u32>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Quorum { w, r })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Quorum, A::Error> {
        let (mut w, mut r) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "w" => w = Some(map.next_value::<u32>()?),
                "r" => r = Some(map.next_value::<u32>()?),
                other => return Err(de::Error::unknown_field(other, &["w", "r"])),
            }
        }
        Ok(Quorum {
            w: w.ok_or_else(|| de::Error::missing_field("w"))?,
            r: r.ok_or_else(|| de::Error::missing_field("r"))?,
        })
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QuorumVisitor)
    }
}

/// What to write before warm-up: `true` (every key), `false`, or a number of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preload {
    /// Write every key once.
    #[default]
    All,
    /// Write nothing.
    None,
    /// Write the first `n` keys.
    Keys(u64),
}

impl Serialize for Preload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Preload::All => s.serialize_bool(true),
            Preload::None => s.serialize_bool(false),
            Preload::Keys(n) => s.serialize_u64(*n),
        }
    }
}

struct PreloadVisitor;

impl Visitor<'_> for PreloadVisitor {
    type Value = Preload;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or a number of keys")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Preload, E> {
        Ok(if v { Preload::All } else { Preload::None })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Preload, E> {
        Ok(Preload::Keys(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Preload, E> {
        u64::try_from(v)
            .map(Preload::Keys)
            .map_err(|_| E::custom("preload must be true, false or a number of keys"))
    }
}

impl<'de> Deserialize<'de> for Preload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PreloadVisitor)
    }
}

/// Number of decimal digits of `n` (at least 1).
pub fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Days since 1970-01-01 to a civil (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn utc_parts(t: std::time::SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `2026-11-25T10:36:51Z`.
pub fn utc_iso8601(t: std::time::SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(t);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// `20261125T103651Z`, the default results sub-folder name.
pub fn utc_compact(t: std::time::SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(t);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_the_documented_spellings() {
        assert_eq!(ByteSize::parse("100").unwrap(), ByteSize(100));
        assert_eq!(ByteSize::parse("1KB").unwrap(), ByteSize(1024));
        assert_eq!(ByteSize::parse("10KB").unwrap(), ByteSize(10240));
        assert_eq!(ByteSize::parse("1.5kb").unwrap(), ByteSize(1536));
        assert!(ByteSize::parse("ten").is_err());
        assert!(ByteSize::parse("-1KB").is_err());
        assert_eq!(ByteSize(10240).to_string(), "10KB");
        assert_eq!(ByteSize(100).to_string(), "100B");
    }

    #[test]
    fn durations_parse_in_the_documented_spellings() {
        assert_eq!(
            DurationSpec::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            DurationSpec::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            DurationSpec::parse("30").unwrap().0,
            Duration::from_secs(30)
        );
        assert!(DurationSpec::parse("soon").is_err());
        assert_eq!(DurationSpec::parse("100us").unwrap().to_string(), "100us");
        assert_eq!(DurationSpec::parse("1.5ms").unwrap().to_string(), "1500us");
        assert_eq!(DurationSpec::parse("250ms").unwrap().to_string(), "250ms");
        assert_eq!(DurationSpec::parse("2m").unwrap().to_string(), "120s");
        // Below a microsecond it reads back as written, not as `0s`.
        assert_eq!(DurationSpec::parse("0.5us").unwrap().to_string(), "500ns");
        assert_eq!(DurationSpec::parse("1500ns").unwrap().to_string(), "1500ns");
        assert_eq!(
            DurationSpec::parse("250ns").unwrap().0,
            Duration::from_nanos(250)
        );
    }

    #[test]
    fn percentages_need_their_sign_in_a_workload_file() {
        assert_eq!(parse_percent("5%").unwrap(), 0.05);
        assert_eq!(parse_percent("5").unwrap(), 0.05);
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("lots").is_err());
        let p: Percent = serde_saphyr::from_str("0.1%").unwrap();
        assert!((p.0 - 0.001).abs() < 1e-12);
        assert_eq!(p.to_string(), "0.1%");
        let bare = serde_saphyr::from_str::<Percent>("0.1")
            .unwrap_err()
            .to_string();
        assert!(bare.contains("with its sign"), "{bare}");
    }
}
