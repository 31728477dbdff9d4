//! Time, without a calendar dependency: [`Timestamp`], the one type a
//! time has once it is read (from the database, a listing or the system
//! clock), with the civil-date arithmetic in one place.
//!
//! Scheduling decisions use the database's clock (`NOW()`), so all hosts
//! sharing one database agree; a `Timestamp` carries no zone: it is the
//! clock it was read from (the server's, or UTC for copies and logs).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A civil date and time to the second, `YYYY-MM-DD HH:MM:SS` as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From seconds since 1970-01-01 00:00:00 of its clock.
    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp(secs)
    }

    /// `YYYY-MM-DD HH:MM:SS` (or `YYYY-MM-DD`, at midnight); `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let days = days_since_epoch(text)?;
        let secs = match text.len() {
            10 => 0,
            19 if text.as_bytes()[10] == b' ' => {
                let part = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
                let (h, m, s) = (part(11..13)?, part(14..16)?, part(17..19)?);
                if h > 23 || m > 59 || s > 59 {
                    return None;
                }
                h * 3600 + m * 60 + s
            }
            _ => return None,
        };
        Some(Timestamp(days * 86_400 + secs))
    }

    /// Seconds since 1970-01-01 00:00:00 of its clock.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// The same day at `hour:minute:00`.
    pub fn at(self, hour: u32, minute: u32) -> Timestamp {
        Timestamp(
            self.0.div_euclid(86_400) * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60,
        )
    }

    /// `days` later (or earlier).
    pub fn add_days(self, days: i64) -> Timestamp {
        Timestamp(self.0 + days * 86_400)
    }

    /// Seconds from `self` to `later` (negative when it is earlier).
    pub fn seconds_until(self, later: Timestamp) -> i64 {
        later.0 - self.0
    }

    /// 1 = Monday ... 7 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday.
        ((self.0.div_euclid(86_400) + 3).rem_euclid(7) + 1) as u32
    }

    /// `YYYY-MM-DD`.
    pub fn date(self) -> String {
        let (y, m, d) = civil_from_days(self.0.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// `YYYYMMDD-HHMMSS`, for names.
    pub fn compact(self) -> String {
        self.to_string().replace(['-', ':'], "").replace(' ', "-")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.rem_euclid(86_400);
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            self.date(),
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn utc_datetime(unix: i64) -> String {
    Timestamp::from_unix(unix).to_string()
}

/// Days from 1970-01-01 to the date a `YYYY-MM-DD[ ...]` text starts with.
pub fn days_since_epoch(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// A proleptic Gregorian date to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_datetime(1_795_441_445), "2026-11-23 13:44:05");
        assert_eq!(utc_datetime(-1), "1969-12-31 23:59:59");
        let t = |s: &str| Timestamp::parse(s).unwrap();
        assert_eq!(t("2026-11-23").add_days(1).date(), "2026-11-24");
        assert_eq!(t("2028-02-28").add_days(1).date(), "2028-02-29");
        assert_eq!(
            t("2026-12-31 10:00:00").add_days(1).to_string(),
            "2027-01-01 10:00:00"
        );
        assert_eq!(t("2026-03-01").add_days(-1).date(), "2026-02-28");
        assert_eq!(Timestamp::parse("bad"), None);
        assert_eq!(Timestamp::parse("2026-11-23 24:00:00"), None);
        assert_eq!(t("2026-11-23 13:44:05").unix(), 1_795_441_445);
        assert_eq!(
            t("2026-11-23 13:44:05").at(3, 0).to_string(),
            "2026-11-23 03:00:00"
        );
        assert_eq!(t("2026-11-23 13:44:05").compact(), "20261123-134405");
        assert_eq!(t("2026-11-23").weekday(), 1, "a Monday");
        assert_eq!(t("2026-11-29").weekday(), 7);
        assert_eq!(
            t("2026-11-23 00:00:10").seconds_until(t("2026-11-23 00:01:00")),
            50
        );
    }
}
