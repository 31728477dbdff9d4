//! When a failed operation is tried again: a pure function of the attempt
//! count and the configuration, so tests are exact and never sleep.

use std::time::Duration;

/// The wait after the `attempts`-th failed attempt: `base`, doubling after
/// each failure, never more than `max`.
pub fn retry_delay(attempts: u32, base: Duration, max: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(32);
    base.saturating_mul(1u32 << doublings.min(31)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_five_minutes_up_to_six_hours() {
        let (base, max) = (Duration::from_secs(300), Duration::from_secs(21_600));
        let minutes: Vec<u64> = (1..=10)
            .map(|n| retry_delay(n, base, max).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 320, 360, 360, 360]);
        assert_eq!(retry_delay(0, base, max), base);
        assert_eq!(retry_delay(u32::MAX, base, max), max);
    }
}
