//! When a failed delivery is tried again: after about 5 s, 5 min, 30 min, 2 h, 5 h and 10 h
//! (the Standard Webhooks schedule, SPEC §13), each delay varied by up to a fifth either way so
//! that deliveries failed together (a receiver that was down) do not all come back at once; then
//! the delivery has failed for good.
//!
//! Tests cannot wait hours: `LUCENT_TEST_OUTBOX_DELAYS` (durations, comma-separated) replaces the
//! delays and `LUCENT_TEST_OUTBOX_LEASE` the claim's lapse, only in `server.env = "dev"` and with a
//! warning at start. They are not configuration on purpose: nothing in `lucent.toml` can make a
//! production server retry in a tight loop or resend a slow delivery while it is still running.

use std::time::Duration;

use rand::RngExt as _;

/// The delays of the Standard Webhooks schedule.
pub const DELAYS: [Duration; 6] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long a claim lasts: far longer than an attempt may take (a webhook post times out after
/// 10 s, an SMTP exchange after 20 s), so a row is never sent by two workers at once; after a
/// crash, its rows come back this much later (sooner on SQLite, see `table::release_claims`).
pub const LEASE: Duration = Duration::from_secs(120);

/// The environment variables that shorten the schedule for tests.
pub const TEST_DELAYS_VAR: &str = "LUCENT_TEST_OUTBOX_DELAYS";
pub const TEST_LEASE_VAR: &str = "LUCENT_TEST_OUTBOX_LEASE";

/// The retry delays and the claim's lapse a worker uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub delays: Vec<Duration>,
    pub lease: Duration,
    /// Whether delays are varied (not for tests that time them).
    pub jitter: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            delays: DELAYS.to_vec(),
            lease: LEASE,
            jitter: true,
        }
    }
}

impl Schedule {
    /// The schedule, shortened by the test variables when `dev` allows them.
    pub fn from_env(dev: bool, lookup: &dyn Fn(&str) -> Option<String>) -> Schedule {
        let mut schedule = Schedule::default();
        let delays = lookup(TEST_DELAYS_VAR).filter(|v| !v.is_empty());
        let lease = lookup(TEST_LEASE_VAR).filter(|v| !v.is_empty());
        if delays.is_none() && lease.is_none() {
            return schedule;
        }
        if !dev {
            tracing::error!(
                "{TEST_DELAYS_VAR} / {TEST_LEASE_VAR} are set but ignored: they are for tests, and server.env is \"prod\""
            );
            return schedule;
        }
        if let Some(text) = delays {
            let parsed: Result<Vec<Duration>, _> = text
                .split(',')
                .map(|d| humantime::parse_duration(d.trim()))
                .collect();
            match parsed {
                Ok(delays) => {
                    schedule.delays = delays;
                    schedule.jitter = false;
                }
                Err(e) => tracing::error!("{TEST_DELAYS_VAR}: {e}; the standard delays apply"),
            }
        }
        if let Some(text) = lease {
            match humantime::parse_duration(text.trim()) {
                Ok(lease) => schedule.lease = lease,
                Err(e) => tracing::error!("{TEST_LEASE_VAR}: {e}; the standard lease applies"),
            }
        }
        tracing::warn!(
            delays = ?schedule.delays,
            lease = ?schedule.lease,
            "the outbox runs on a test schedule ({TEST_DELAYS_VAR}, {TEST_LEASE_VAR}); never set these in production"
        );
        schedule
    }

    /// The delay after `failed` failed attempts (1 after the first), or `None` when the
    /// delivery has failed for good.
    pub fn retry_after(&self, failed: u32) -> Option<Duration> {
        let index = usize::try_from(failed).ok()?.checked_sub(1)?;
        let delay = *self.delays.get(index)?;
        if !self.jitter {
            return Some(delay);
        }
        Some(delay.mul_f64(rand::rng().random_range(0.8..=1.2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_schedule_then_failed() {
        let schedule = Schedule::default();
        for (failed, nominal) in DELAYS.iter().enumerate() {
            let failed = u32::try_from(failed).unwrap() + 1;
            for _ in 0..20 {
                let delay = schedule.retry_after(failed).unwrap();
                assert!(delay >= nominal.mul_f64(0.8) && delay <= nominal.mul_f64(1.2));
            }
        }
        assert_eq!(schedule.retry_after(7), None, "failed after six retries");
        assert_eq!(schedule.retry_after(0), None);
    }

    #[test]
    fn test_variables_only_in_dev() {
        let env = |name: &str| match name {
            TEST_DELAYS_VAR => Some("100ms, 1s".to_string()),
            TEST_LEASE_VAR => Some("3s".to_string()),
            _ => None,
        };
        let test = Schedule::from_env(true, &env);
        assert_eq!(
            test.delays,
            [Duration::from_millis(100), Duration::from_secs(1)]
        );
        assert_eq!(test.lease, Duration::from_secs(3));
        assert_eq!(test.retry_after(2), Some(Duration::from_secs(1)));
        assert_eq!(test.retry_after(3), None);
        assert_eq!(Schedule::from_env(false, &env), Schedule::default());
        let bad = |name: &str| (name == TEST_DELAYS_VAR).then(|| "soon".to_string());
        assert_eq!(Schedule::from_env(true, &bad), Schedule::default());
        assert_eq!(Schedule::from_env(true, &|_| None), Schedule::default());
    }
}
