//! Timestamps as Elastic's service writes and reads them.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Now, as the service writes it: ISO-8601, microseconds, explicit `+00:00`.
pub fn now_iso() -> String {
    iso(Utc::now())
}

/// `2024-05-31T12:55:30.301795+00:00`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// Parses what ES, Kibana or the service wrote: `Z`, `+00:00` or any offset, or a naive timestamp
/// (taken as UTC).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn writes_micros_with_offset_and_reads_every_form() {
        let t = Utc.with_ymd_and_hms(2024, 5, 31, 12, 55, 30).unwrap()
            + chrono::Duration::microseconds(301795);
        assert_eq!(iso(t), "2024-05-31T12:55:30.301795+00:00");
        for s in [
            "2024-05-31T12:55:30.301795+00:00",
            "2024-05-31T12:55:30.301795Z",
            "2024-05-31T12:55:30.301795",
            "2024-05-31T14:55:30.301795+02:00",
        ] {
            assert_eq!(parse(s), Some(t), "{s}");
        }
        assert_eq!(parse("yesterday"), None);
    }
}
