//! Memory pressure stall information from `proc/pressure/memory`.

use std::path::Path;

use gamesa_proto::PressureTelemetry;

use crate::{HwError, sysfs};

const EXPECTED: &str = "`some`/`full` lines of avg10=, avg60=, avg300=, total=";

/// Reads and parses the PSI file.
pub(crate) fn read(path: &Path) -> Result<PressureTelemetry, HwError> {
    sysfs::with_text(path, |text| parse(path, text))
}

/// Parses the two lines of a PSI file:
/// `some avg10=0.12 avg60=0.05 avg300=0.00 total=12345`, then the same for `full`.
/// Percentages become hundredths of a percent without going through a float.
pub(crate) fn parse(path: &Path, text: &str) -> Result<PressureTelemetry, HwError> {
    let bad = || sysfs::parse_error(path, text, EXPECTED);
    let mut some = None;
    let mut full = None;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => return Err(bad()),
        };
        let (mut avg10, mut avg60, mut total) = (None, None, None);
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(bad)?;
            match key {
                "avg10" => avg10 = Some(centipercent(value).ok_or_else(bad)?),
                "avg60" => avg60 = Some(centipercent(value).ok_or_else(bad)?),
                "avg300" => {
                    centipercent(value).ok_or_else(bad)?;
                }
                "total" => total = Some(value.parse::<u64>().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        *slot = Some((
            avg10.ok_or_else(bad)?,
            avg60.ok_or_else(bad)?,
            total.ok_or_else(bad)?,
        ));
    }
    let (some_avg10, some_avg60, some_total) = some.ok_or_else(bad)?;
    // The memory file always has a `full` line; the same format without one (the cpu
    // file before Linux 5.13) reads as no full stall.
    let (full_avg10, full_avg60, full_total) = full.unwrap_or((0, 0, 0));
    Ok(PressureTelemetry {
        some_avg10_centipct: some_avg10,
        some_avg60_centipct: some_avg60,
        full_avg10_centipct: full_avg10,
        full_avg60_centipct: full_avg60,
        some_total_us: some_total,
        full_total_us: full_total,
    })
}

/// `12.34` as 1234. The kernel prints exactly two decimals; fewer are accepted.
fn centipercent(text: &str) -> Option<u32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || fraction.len() > 2 || !sysfs::is_number(whole) {
        return None;
    }
    if !fraction.is_empty() && !sysfs::is_number(fraction) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let fraction: u32 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lines() {
        let text = "some avg10=1.23 avg60=0.50 avg300=0.10 total=123456\n\
                    full avg10=0.07 avg60=100.00 avg300=0.00 total=789\n";
        assert_eq!(
            parse(Path::new("memory"), text),
            Ok(PressureTelemetry {
                some_avg10_centipct: 123,
                some_avg60_centipct: 50,
                full_avg10_centipct: 7,
                full_avg60_centipct: 10_000,
                some_total_us: 123_456,
                full_total_us: 789,
            })
        );
    }

    #[test]
    fn malformed_psi_names_the_file_and_content() {
        for text in [
            "",
            "some avg10=abc avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=0.00 avg60=0.00 total=0\nfull avg10=1.234 avg60=0 avg300=0 total=0\n",
            "some avg60=0.00 avg300=0.00 total=0\n",
            "sometimes avg10=0.00\n",
        ] {
            assert_eq!(
                parse(Path::new("/p/memory"), text),
                Err(HwError::Parse {
                    path: "/p/memory".into(),
                    content: text.trim().into(),
                    expected: EXPECTED,
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn centipercent_without_floats() {
        assert_eq!(centipercent("0.00"), Some(0));
        assert_eq!(centipercent("12.3"), Some(1230));
        assert_eq!(centipercent("7"), Some(700));
        assert_eq!(centipercent("-1.00"), None);
        assert_eq!(centipercent(".5"), None);
    }
}
