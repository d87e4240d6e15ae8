//! Kubernetes quantities (`"8Gi"`, `"500M"`) and Go durations (`"1m30s"`).
//!
//! Both are parsed as the API server does and printed in the canonical form
//! the server and `hcp` use (`16384Mi` → `16Gi`, `10m` → `10m0s`), so that
//! rendered objects compare equal to what is stored live.

#![deny(clippy::disallowed_methods)]

use std::fmt;

/// A non-negative quantity in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    canonical: String,
    /// Value in base units (bytes), rounded down; enough for range checks.
    whole: u128,
    /// Value in thousandths of base units, rounded up (CPU in millicores,
    /// as the scheduler counts it).
    millis: u128,
}

impl Quantity {
    /// `n` gibibytes, the meaning of a bare integer size.
    pub fn gibibytes(n: u64) -> Quantity {
        Quantity::parse(&format!("{n}Gi")).unwrap_or(Quantity { canonical: format!("{n}Gi"), whole: 0, millis: 0 })
    }

    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Value in base units, rounded down.
    pub fn whole(&self) -> u128 {
        self.whole
    }

    /// Value in thousandths of base units, rounded up: `"63500m"` is 63500,
    /// `"64"` is 64000.
    pub fn millis(&self) -> u128 {
        self.millis
    }

    /// Whether `s` is a number with no unit at all (`"16"`, `"1.5"`): for a
    /// size that means bytes, which is never what anyone writing memory or
    /// a volume size meant.
    pub fn is_unitless(s: &str) -> bool {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') && s.chars().any(|c| c.is_ascii_digit())
    }

    /// Parses a quantity as `resource.ParseQuantity` does, rejecting negative values.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let bad = || {
            format!(
                "\"{s}\" is not a Kubernetes quantity: a number followed by an optional suffix \
                 (Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent e3)"
            )
        };
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let digits: String = format!("{int_part}{frac_part}");
        let mut mantissa: u128 = 0;
        for c in digits.chars() {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(c as u8 - b'0')))
                .ok_or_else(|| format!("\"{s}\" is too large"))?;
        }
        let mut exp10: i32 = -(frac_part.len() as i32);
        let (base2, exp, format) = match suffix {
            "" => (false, 0, Format::DecimalSi),
            "Ki" => (true, 10, Format::BinarySi),
            "Mi" => (true, 20, Format::BinarySi),
            "Gi" => (true, 30, Format::BinarySi),
            "Ti" => (true, 40, Format::BinarySi),
            "Pi" => (true, 50, Format::BinarySi),
            "Ei" => (true, 60, Format::BinarySi),
            "n" => (false, -9, Format::DecimalSi),
            "u" => (false, -6, Format::DecimalSi),
            "m" => (false, -3, Format::DecimalSi),
            "k" => (false, 3, Format::DecimalSi),
            "M" => (false, 6, Format::DecimalSi),
            "G" => (false, 9, Format::DecimalSi),
            "T" => (false, 12, Format::DecimalSi),
            "P" => (false, 15, Format::DecimalSi),
            "E" => (false, 18, Format::DecimalSi),
            e if e.starts_with(['e', 'E']) => {
                let n: i32 = e[1..].parse().map_err(|_| bad())?;
                if !(-30..=30).contains(&n) {
                    return Err(format!("\"{s}\" is out of range"));
                }
                (false, n, Format::DecimalExponent)
            }
            _ => return Err(bad()),
        };
        if negative && mantissa != 0 {
            return Err(format!("\"{s}\" is negative; a size must be zero or more"));
        }
        // Exact value = mantissa * 10^exp10 * (2^exp or 10^exp).
        let mut value = Exact { mantissa, exp10 };
        if base2 {
            value = value.mul_pow2(exp).ok_or_else(|| format!("\"{s}\" is too large"))?;
        } else {
            exp10 += exp;
            value.exp10 = exp10;
        }
        value.normalize();
        if value.exp10 < -9 {
            return Err(format!("\"{s}\" is more precise than Kubernetes allows (nano units)"));
        }
        let whole = value.whole().ok_or_else(|| format!("\"{s}\" is too large"))?;
        let millis = value.millis_rounded_up().ok_or_else(|| format!("\"{s}\" is too large"))?;
        Ok(Quantity { canonical: value.canonical(format), whole, millis })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// mantissa × 10^exp10, exactly.
#[derive(Clone, Copy)]
struct Exact {
    mantissa: u128,
    exp10: i32,
}

impl Exact {
    fn mul_pow2(mut self, mut n: i32) -> Option<Exact> {
        while n > 0 {
            self.mantissa = self.mantissa.checked_mul(2)?;
            n -= 1;
        }
        Some(self)
    }

    /// Removes trailing zeros of the mantissa into the exponent.
    fn normalize(&mut self) {
        if self.mantissa == 0 {
            self.exp10 = 0;
            return;
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.exp10 += 1;
        }
    }

    fn whole(&self) -> Option<u128> {
        if self.exp10 >= 0 {
            self.mantissa.checked_mul(10u128.checked_pow(self.exp10 as u32)?)
        } else {
            Some(self.mantissa / 10u128.checked_pow((-self.exp10) as u32)?)
        }
    }

    /// mantissa × 10^(exp10 + 3), rounded up.
    fn millis_rounded_up(&self) -> Option<u128> {
        let exp = self.exp10 + 3;
        if exp >= 0 {
            self.mantissa.checked_mul(10u128.checked_pow(exp as u32)?)
        } else {
            let div = 10u128.checked_pow((-exp) as u32)?;
            Some(self.mantissa.div_ceil(div))
        }
    }

    fn is_integer(&self) -> bool {
        self.exp10 >= 0
    }

    /// The canonical string, following `Quantity.CanonicalizeBytes`.
    fn canonical(&self, format: Format) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = format;
        if format == Format::BinarySi
            && let Some(w) = self.whole()
            && w < 1024
        {
            format = Format::DecimalSi;
        }
        if format == Format::BinarySi
            && self.is_integer()
            && let Some(mut n) = self.whole()
        {
            let mut exp = 0;
            while n % 1024 == 0 && exp < 60 {
                n /= 1024;
                exp += 10;
            }
            let suffix = match exp {
                0 => "",
                10 => "Ki",
                20 => "Mi",
                30 => "Gi",
                40 => "Ti",
                50 => "Pi",
                _ => "Ei",
            };
            return format!("{n}{suffix}");
        }
        // Decimal: shift to an exponent that is a multiple of 3.
        let mut mantissa = self.mantissa;
        let mut exp = self.exp10;
        while exp.rem_euclid(3) != 0 {
            mantissa = mantissa.saturating_mul(10);
            exp -= 1;
        }
        if format == Format::DecimalExponent {
            return if exp == 0 { mantissa.to_string() } else { format!("{mantissa}e{exp}") };
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => return format!("{mantissa}e{exp}"),
        };
        format!("{mantissa}{suffix}")
    }
}

/// A Go `time.Duration`, non-negative, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub u64);

impl Duration {
    /// Parses Go duration syntax (`"300ms"`, `"1.5h"`, `"2h45m"`); negative durations are rejected.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let bad = || format!("\"{s}\" is not a duration: write a number and a unit, e.g. \"90s\", \"1m30s\", \"2h\"");
        if s.starts_with('-') {
            return Err(format!("\"{s}\" is negative; a timeout must be zero or more"));
        }
        let s2 = s.strip_prefix('+').unwrap_or(s);
        if s2 == "0" {
            return Ok(Duration(0));
        }
        if s2.is_empty() {
            return Err(bad());
        }
        let mut rest = s2;
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let (num, tail) = rest.split_at(n_end);
            if num.is_empty() || num == "." {
                return Err(bad());
            }
            let value: f64 = num.parse().map_err(|_| bad())?;
            let u_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
            let (unit, next) = tail.split_at(u_end);
            let scale = match unit {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(bad()),
            };
            total += value * scale;
            rest = next;
        }
        if total > 9.2e18 {
            return Err(format!("\"{s}\" is too long"));
        }
        Ok(Duration(total.round() as u64))
    }
}

impl fmt::Display for Duration {
    /// Formats as Go's `Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < 1_000_000_000 {
            let (unit, div) = if ns < 1_000 {
                ("ns", 1)
            } else if ns < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{}{unit}", frac(ns, div));
        }
        let hours = ns / 3_600_000_000_000;
        let minutes = (ns / 60_000_000_000) % 60;
        let secs_ns = ns % 60_000_000_000;
        let secs = frac(secs_ns, 1_000_000_000);
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{secs}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{secs}s")
        } else {
            write!(f, "{secs}s")
        }
    }
}

/// `n / div` as a decimal without trailing zeros.
fn frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let rem = n % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A count or a percentage: what Kubernetes' int-or-string fields such as
/// a NodePool's `maxSurge` hold, and what `max-parallel=` takes. The one
/// reader of both spellings, so they cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Count(u64),
    /// Whole percent, as Kubernetes writes them (`"25%"`).
    Percent(u64),
}

impl IntOrPercent {
    /// `"25%"`: digits and `%`, as `intstr` reads a percentage.
    pub fn percent(s: &str) -> Option<u64> {
        let digits = s.strip_suffix('%')?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// A JSON int-or-string: a number is a count, a string a percentage.
    pub fn from_json(v: &serde_json::Value) -> Option<IntOrPercent> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().map(IntOrPercent::Count),
            serde_json::Value::String(s) => IntOrPercent::percent(s).map(IntOrPercent::Percent),
            _ => None,
        }
    }

    /// The count it comes to out of `total`, a percentage rounded up (as
    /// the NodePool controller rounds `maxSurge`).
    pub fn of(self, total: u64) -> u64 {
        match self {
            IntOrPercent::Count(n) => n,
            IntOrPercent::Percent(p) => total.saturating_mul(p).div_ceil(100),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn counts_and_percentages_read_one_way() {
        use serde_json::json;
        assert_eq!(IntOrPercent::from_json(&json!(2)), Some(IntOrPercent::Count(2)));
        assert_eq!(IntOrPercent::from_json(&json!("25%")), Some(IntOrPercent::Percent(25)));
        for bad in [json!("25"), json!("%"), json!("-5%"), json!("2.5%"), json!(-1), json!(null)] {
            assert_eq!(IntOrPercent::from_json(&bad), None, "{bad}");
        }
        assert_eq!(IntOrPercent::Percent(25).of(10), 3, "rounded up");
        assert_eq!(IntOrPercent::Count(4).of(10), 4);
    }

    use super::*;

    #[test]
    fn quantities_canonicalise_like_kubernetes() {
        for (input, canonical) in [
            ("8Gi", "8Gi"),
            ("16384Mi", "16Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ti", "512Gi"),
            ("8G", "8G"),
            ("1500M", "1500M"),
            ("8589934592", "8589934592"),
            ("1000", "1k"),
            ("0.5", "500m"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("0", "0"),
        ] {
            assert_eq!(Quantity::parse(input).map(|q| q.to_string()), Ok(canonical.to_string()), "{input}");
        }
    }

    #[test]
    fn millis_round_up_like_the_scheduler() {
        for (input, millis) in [("64", 64_000), ("63500m", 63_500), ("0.1", 100), ("1n", 1), ("2Ki", 2_048_000)] {
            assert_eq!(Quantity::parse(input).map(|q| q.millis()), Ok(millis), "{input}");
        }
        assert!(Quantity::is_unitless("16") && Quantity::is_unitless("1.5"));
        assert!(!Quantity::is_unitless("16Gi") && !Quantity::is_unitless("1e9") && !Quantity::is_unitless("."));
    }

    #[test]
    fn bad_quantities_are_rejected() {
        for input in ["8GB", "abc", "8gi", "-1Gi", "", "1.2.3Gi", "Gi"] {
            assert!(Quantity::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn durations_format_like_go() {
        for (input, canonical) in [
            ("10m", "10m0s"),
            ("5m", "5m0s"),
            ("90s", "1m30s"),
            ("0s", "0s"),
            ("0", "0s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("2h45m", "2h45m0s"),
        ] {
            assert_eq!(Duration::parse(input).map(|d| d.to_string()), Ok(canonical.to_string()), "{input}");
        }
        for input in ["", "10", "-1s", "1d", "s"] {
            assert!(Duration::parse(input).is_err(), "{input}");
        }
    }
}
