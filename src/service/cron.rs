//! Quartz cron, as Kibana writes it: `sec min hour day-of-month month day-of-week [year]`.
//!
//! We follow Quartz exactly, fixing Elastic's evaluator (see README, "Scheduling"): the seconds field
//! counts (`0/5 * * * * ?` fires every 5 seconds), `x/step` means "from x every step", day-of-week is
//! Quartz-numbered (1 = SUN … 7 = SAT) in ranges and lists too, and `L`, `W`, `#` work.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
}

/// A cron expression that cannot be used; its text becomes the connector's `error`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {cause}")]
pub struct CronError {
    pub expr: String,
    pub cause: String,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let err = |cause: String| CronError {
            expr: expr.to_string(),
            cause,
        };
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(err(format!(
                "expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), found {fields}"
            )));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build();
        parser
            .parse(expr.trim())
            .map(|cron| Self { cron })
            .map_err(|e| err(e.to_string()))
    }

    /// The first firing strictly after `t`, or `None` when the schedule never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The firing in `(since, now]`, if any (the latest one when several fell in the window):
    /// a run is due when the schedule fired since the previous poll.
    pub fn due_between(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.next_after(since)?;
        if first > now {
            return None;
        }
        self.cron
            .find_previous_occurrence(&now, true)
            .ok()
            .filter(|latest| *latest > since)
            .or(Some(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(expr: &str, t: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(expr).unwrap().next_after(t).unwrap()
    }

    // Base instant: Friday 2026-11-20 10:14:30 UTC.
    fn base() -> DateTime<Utc> {
        at(2026, 11, 20, 10, 14, 30)
    }

    #[test]
    fn seconds_field_counts() {
        assert_eq!(next("0/5 * * * * ?", base()), at(2026, 11, 20, 10, 14, 35));
        assert_eq!(next("1 * * * * ?", base()), at(2026, 11, 20, 10, 15, 1));
        assert_eq!(next("0 0/5 * * * ?", base()), at(2026, 11, 20, 10, 15, 0));
        assert_eq!(next("0 * * * * ?", base()), at(2026, 11, 20, 10, 15, 0));
    }

    #[test]
    fn quartz_weekdays() {
        // 2 = Monday in Quartz.
        assert_eq!(next("0 0 12 ? * 2", base()), at(2026, 11, 23, 12, 0, 0));
        assert_eq!(
            next("0 15 10 ? * MON-FRI", base()),
            at(2026, 11, 20, 10, 15, 0)
        );
        assert_eq!(
            next("0 15 10 ? * MON-FRI", at(2026, 11, 21, 0, 0, 0)),
            at(2026, 11, 23, 10, 15, 0)
        );
        assert_eq!(
            next("0 0 9 ? * 2-6", at(2026, 11, 21, 0, 0, 0)),
            at(2026, 11, 23, 9, 0, 0)
        );
        assert_eq!(next("0 0 8 ? * SUN", base()), at(2026, 11, 22, 8, 0, 0));
        // Third Friday of the month (2026-11-20 is one), last Friday of the month.
        assert_eq!(next("0 0 12 ? * 6#3", base()), at(2026, 11, 20, 12, 0, 0));
        assert_eq!(next("0 0 12 ? * 6L", base()), at(2026, 11, 27, 12, 0, 0));
    }

    #[test]
    fn day_of_month_specials_and_years() {
        assert_eq!(next("0 0 12 L * ?", base()), at(2026, 11, 30, 12, 0, 0));
        assert_eq!(next("0 0 12 15W * ?", base()), at(2026, 12, 15, 12, 0, 0));
        assert_eq!(next("0 0 0 29 2 ?", base()), at(2028, 2, 29, 0, 0, 0));
        assert_eq!(next("0 0 12 * * ? 2027", base()), at(2027, 1, 1, 12, 0, 0));
        assert!(
            Schedule::parse("0 0 0 31 2 ?")
                .unwrap()
                .next_after(base())
                .is_none()
        );
    }

    #[test]
    fn bad_expressions_are_errors_naming_the_expression() {
        for bad in [
            "* * * *",
            "0 0 12 ? * 9",
            "banana banana banana banana banana banana",
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn due_window_is_half_open() {
        let s = Schedule::parse("0/5 * * * * ?").unwrap();
        let t0 = at(2026, 11, 20, 10, 14, 30);
        assert_eq!(s.due_between(t0, t0), None);
        assert_eq!(s.due_between(t0, at(2026, 11, 20, 10, 14, 34)), None);
        assert_eq!(
            s.due_between(t0, at(2026, 11, 20, 10, 14, 35)),
            Some(at(2026, 11, 20, 10, 14, 35))
        );
        // Several firings in one window: one run, recorded at the latest firing.
        assert_eq!(
            s.due_between(t0, at(2026, 11, 20, 10, 14, 52)),
            Some(at(2026, 11, 20, 10, 14, 50))
        );
    }
}
