//! The wall clock: a local cluster runs real processes in real time, so
//! this is the one place its harnesses read the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "a local cluster runs real nodes against the wall clock"
    )]
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sleeps until `at_ms` (Unix milliseconds); returns at once if it has passed.
pub async fn sleep_until_ms(at_ms: u64) {
    let now = unix_ms();
    if at_ms > now {
        tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
    }
}

/// A genesis at least `lead_ms` from now, on a whole second (a beacon
/// chain's genesis time is in seconds), in Unix milliseconds.
pub fn genesis_ms_in(lead_ms: u64) -> u64 {
    whole_second_after(unix_ms() + lead_ms)
}

fn whole_second_after(ms: u64) -> u64 {
    ms.div_ceil(1000) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_on_the_next_whole_second() {
        assert_eq!(whole_second_after(12_000), 12_000);
        assert_eq!(whole_second_after(12_001), 13_000);
        assert_eq!(whole_second_after(12_999), 13_000);
        let before = unix_ms();
        let genesis = genesis_ms_in(4_000);
        assert_eq!(genesis % 1000, 0);
        assert!(genesis >= before + 4_000 && genesis < unix_ms() + 5_000);
    }
}
