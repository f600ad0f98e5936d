//! How fast each tenant may create Keeps: one token bucket per tenant, so that one
//! tenant's burst of creations cannot crowd out the others (the number of Keeps a
//! tenant may hold at once is `max_keeps`, checked by the registry).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token buckets, one per tenant (by index in the config).
pub struct CreateRate {
    per_minute: u32,
    burst: u32,
    buckets: Mutex<Vec<Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl CreateRate {
    pub fn new(tenants: usize, per_minute: u32, burst: u32) -> Self {
        let full = Bucket {
            tokens: f64::from(burst),
            at: Instant::now(),
        };
        CreateRate {
            per_minute,
            burst,
            buckets: Mutex::new(vec![full; tenants]),
        }
    }

    /// Takes one creation for `tenant`, or says how long until one is free.
    pub fn take(&self, tenant: usize, now: Instant) -> Result<(), Duration> {
        let per_second = f64::from(self.per_minute) / 60.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(Duration::from_secs(1));
        };
        let Some(b) = buckets.get_mut(tenant) else {
            return Err(Duration::from_secs(1));
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(f64::from(self.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_per_tenant() {
        let rate = CreateRate::new(2, 60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rate.take(0, t0).is_ok());
        }
        let wait = rate.take(0, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // The other tenant has its own bucket.
        assert!(rate.take(1, t0).is_ok());
        // One a second comes back (60 a minute), never more than the burst.
        assert!(rate.take(0, t0 + Duration::from_millis(1001)).is_ok());
        assert!(rate.take(0, t0 + Duration::from_millis(1002)).is_err());
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(rate.take(0, later).is_ok());
        }
        assert!(rate.take(0, later).is_err());
        assert!(rate.take(7, later).is_err(), "unknown tenant");
    }
}
