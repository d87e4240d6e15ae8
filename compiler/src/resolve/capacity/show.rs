//! Amounts as people read them in diagnostics and capacity tables.

/// Millicores as vCPU: `200` → `0.2`, `5000` → `5`, `334` → `0.334`.
pub fn cpu(millis: u128) -> String {
    let whole = millis / 1000;
    let frac = millis % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Bytes in binary units with at most one decimal: `8Gi`, `8.3Gi`, `292Mi`.
pub fn bytes(b: u128) -> String {
    const UNITS: [(&str, u32); 6] = [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    for (suffix, shift) in UNITS {
        let unit = 1u128 << shift;
        if b >= unit {
            // Tenths, rounded half up.
            let tenths = (b * 10 + unit / 2) / unit;
            return if tenths.is_multiple_of(10) {
                format!("{}{suffix}", tenths / 10)
            } else {
                format!("{}.{}{suffix}", tenths / 10, tenths % 10)
            };
        }
    }
    b.to_string()
}

/// `part` as a whole percentage of `whole`, rounded up so that anything
/// over the whole never reads as 100%.
pub fn percent(part: u128, whole: u128) -> u128 {
    if whole == 0 {
        return 0;
    }
    (part * 100).div_ceil(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_naturally() {
        assert_eq!(cpu(200), "0.2");
        assert_eq!(cpu(5000), "5");
        assert_eq!(cpu(1250), "1.25");
        assert_eq!(bytes(8 << 30), "8Gi");
        assert_eq!(bytes((8 << 30) + (292 << 20)), "8.3Gi");
        assert_eq!(bytes(292 << 20), "292Mi");
        assert_eq!(bytes(512), "512");
        assert_eq!(percent(101, 100), 101);
        assert_eq!(percent(1, 3), 34);
    }
}
