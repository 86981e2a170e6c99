//! Numbers as people read them, one way everywhere: the summary, the dashboard, the gate's tables,
//! `compare` and the report. A figure that was not measured says so (or `-` where a cell is narrow).

/// A latency in milliseconds: `850µs` as `0.9ms`, `12ms`, `1.25s`; `-` when not measured.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0}ms"),
        Some(v) => format!("{v:.1}ms"),
    }
}

/// A figure in a table: whole above 100, three significant decimals below, scientific when tiny.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "not measured".into(),
        Some(0.0) => "0".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 0.01 => trimmed(v),
        Some(v) => format!("{v:.2e}"),
    }
}

/// A limit or bound: up to three decimals, trailing zeros dropped; scientific outside 0.01..100000.
pub fn bound(v: f64) -> String {
    if v == 0.0 || (0.01..100_000.0).contains(&v.abs()) {
        trimmed(v)
    } else {
        format!("{v:.3e}")
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Bytes in MiB with one decimal and no unit (`21.5`), for a row of figures in one unit.
pub fn mib(v: f64) -> String {
    format!("{:.1}", v / MIB)
}

/// Bytes with their unit: `21.5 MiB`; below a tenth of a MiB in KiB (`12.0 KiB`), so that a small
/// figure does not read as none.
pub fn bytes(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.1 * MIB {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{} MiB", mib(v))
    }
}

fn trimmed(v: f64) -> String {
    format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_reads_as_intended() {
        assert_eq!(ms(Some(0.85)), "0.8ms");
        assert_eq!(ms(Some(12.4)), "12ms");
        assert_eq!(ms(Some(1250.0)), "1.25s");
        assert_eq!(ms(None), "-");
        assert_eq!(num(None), "not measured");
        assert_eq!(num(Some(1234.5)), "1234");
        assert_eq!(num(Some(0.5)), "0.5");
        assert_eq!(num(Some(0.0001)), "1.00e-4");
        assert_eq!(bound(1234.5), "1234.5");
        assert_eq!(bound(0.001), "1.000e-3");
        assert_eq!(bytes(21.5 * 1024.0 * 1024.0), "21.5 MiB");
        assert_eq!(bytes(12.0 * 1024.0), "12.0 KiB");
        assert_eq!(bytes(0.0), "0.0 MiB");
        assert_eq!(mib(130.25 * 1024.0 * 1024.0), "130.2");
    }
}
