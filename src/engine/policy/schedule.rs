//! When a plan is due: a pure function of the plan's schedule, its last run
//! and the database server's clock (so every host agrees).

use crate::clock::Timestamp;

/// A plan's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at `HH:MM`.
    Daily { at: (u32, u32) },
    /// On the given days (1 = Monday ... 7 = Sunday) at `HH:MM`.
    Weekly { at: (u32, u32), days: Vec<u32> },
    /// Only when started by hand.
    Off,
}

/// `HH:MM` with a valid hour and minute.
pub fn parse_time(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (h < 24 && m < 60 && s.trim().len() == 5).then_some((h, m))
}

/// `1,3,5` into days; `None` when a day is not 1..7 or none is given.
pub fn parse_days(s: &str) -> Option<Vec<u32>> {
    let mut days: Vec<u32> = s
        .split(',')
        .map(|d| d.trim().parse::<u32>().ok().filter(|d| (1..=7).contains(d)))
        .collect::<Option<_>>()?;
    days.sort_unstable();
    days.dedup();
    (!days.is_empty()).then_some(days)
}

impl Schedule {
    /// From a plan's stored fields.
    pub fn from_plan(kind: &str, at: &str, days: &str) -> Option<Schedule> {
        match kind {
            "off" => Some(Schedule::Off),
            "daily" => Some(Schedule::Daily {
                at: parse_time(at)?,
            }),
            "weekly" => Some(Schedule::Weekly {
                at: parse_time(at)?,
                days: parse_days(days)?,
            }),
            _ => None,
        }
    }

    /// Is a run due? `now` and `last_run` are read off the server's clock.
    pub fn is_due(&self, last_run: Option<Timestamp>, now: Timestamp) -> bool {
        let (at, allowed) = match self {
            Schedule::Off => return false,
            Schedule::Daily { at } => (*at, true),
            Schedule::Weekly { at, days } => (*at, days.contains(&now.weekday())),
        };
        let slot = now.at(at.0, at.1);
        allowed && now >= slot && last_run.is_none_or(|l| l < slot)
    }

    /// When the next run is due: `now` itself when a run is due now (or
    /// overdue), else the next slot; `None` for a plan that runs only by
    /// hand. Same clock as [`Schedule::is_due`].
    pub fn next_run(&self, last_run: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        if self.is_due(last_run, now) {
            return Some(now);
        }
        let (at, days) = match self {
            Schedule::Off => return None,
            Schedule::Daily { at } => (*at, None),
            Schedule::Weekly { at, days } => (*at, Some(days)),
        };
        (0..8).find_map(|ahead: i64| {
            let slot = now.add_days(ahead).at(at.0, at.1);
            if days.is_some_and(|d| !d.contains(&slot.weekday())) {
                return None;
            }
            (slot > now).then_some(slot)
        })
    }

    /// The slot of today a due run is due for (for "overdue by").
    pub fn slot_of(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Off => None,
            Schedule::Daily { at } | Schedule::Weekly { at, .. } => Some(now.at(at.0, at.1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn some(s: &str) -> Option<Timestamp> {
        Some(t(s))
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_time("03:30"), Some((3, 30)));
        for bad in ["3:30", "24:00", "12:60", "ab:cd", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(parse_days("5,1, 3,1"), Some(vec![1, 3, 5]));
        assert_eq!(parse_days("0"), None);
        assert_eq!(parse_days(""), None);
        assert_eq!(Schedule::from_plan("weekly", "03:00", ""), None);
    }

    #[test]
    fn daily_runs_once_after_its_time() {
        let s = Schedule::from_plan("daily", "03:00", "").unwrap();
        let now = t("2026-11-23 03:00:05");
        assert!(!s.is_due(None, t("2026-11-23 02:59:59")));
        assert!(s.is_due(None, now));
        assert!(s.is_due(some("2026-11-22 03:00:10"), now));
        assert!(!s.is_due(some("2026-11-23 03:00:01"), t("2026-11-23 23:00:00")));
        // Missed while the server was down: runs at the next tick.
        assert!(s.is_due(some("2026-11-20 03:00:00"), t("2026-11-23 17:00:00")));
    }

    #[test]
    fn next_runs() {
        let daily = Schedule::from_plan("daily", "03:00", "").unwrap();
        let done_today = some("2026-11-23 03:00:04");
        assert_eq!(
            daily
                .next_run(done_today, t("2026-11-23 10:00:00"))
                .map(|x| x.to_string())
                .as_deref(),
            Some("2026-11-24 03:00:00")
        );
        assert_eq!(
            daily
                .next_run(done_today, t("2026-11-23 02:00:00"))
                .map(|x| x.to_string())
                .as_deref(),
            Some("2026-11-23 03:00:00")
        );
        // Due now (missed): now.
        assert_eq!(
            daily
                .next_run(some("2026-11-20 03:00:00"), t("2026-11-23 10:00:00"))
                .map(|x| x.to_string())
                .as_deref(),
            Some("2026-11-23 10:00:00")
        );
        // Mondays and Thursdays at 01:15, asked on Monday after the run.
        let weekly = Schedule::from_plan("weekly", "01:15", "1,4").unwrap();
        assert_eq!(
            weekly
                .next_run(some("2026-11-23 01:15:00"), t("2026-11-23 09:00:00"))
                .map(|x| x.to_string())
                .as_deref(),
            Some("2026-11-26 01:15:00")
        );
        // Asked on Friday: next Monday.
        assert_eq!(
            weekly
                .next_run(some("2026-11-26 01:15:00"), t("2026-11-27 09:00:00"))
                .map(|x| x.to_string())
                .as_deref(),
            Some("2026-11-30 01:15:00")
        );
        assert_eq!(Schedule::Off.next_run(None, t("2026-11-23 09:00:00")), None);
    }

    #[test]
    fn weekly_runs_only_on_its_days() {
        let s = Schedule::from_plan("weekly", "01:15", "1,4").unwrap();
        assert!(s.is_due(None, t("2026-11-23 01:15:00")));
        assert!(!s.is_due(None, t("2026-11-24 01:15:00")));
        assert!(s.is_due(some("2026-11-23 01:15:00"), t("2026-11-26 02:00:00")));
        assert!(!Schedule::Off.is_due(None, t("2026-11-23 05:00:00")));
    }
}
