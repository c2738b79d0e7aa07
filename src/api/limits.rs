//! Limits that keep one client from starving the others: rate limits on writes (per client
//! address and per publisher, answered 429 with `Retry-After`), a cap on concurrent
//! expensive reads, and the timeouts of the HTTP server. All configurable; the defaults are
//! generous (spec section 3: a registered publisher loading its history in bulk is never
//! throttled below 100,000 statements per minute).

use crate::problem::Problem;
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Write requests per second from one client address (0: no limit).
    pub ip_per_second: u32,
    /// Statements per minute from one publisher (0: no limit).
    pub publisher_per_minute: u32,
    /// Expensive reads (tiles, proofs, entry pages, statistics, exports) served at once;
    /// more wait their turn.
    pub max_expensive_reads: usize,
    /// Longest time to handle one request, body included (answered 408 past it).
    pub request_timeout: Duration,
    /// Longest time a client may take to send its request headers.
    pub header_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            ip_per_second: 2_000,
            publisher_per_minute: 200_000,
            max_expensive_reads: 256,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
        }
    }
}

pub struct Limits {
    pub config: LimitsConfig,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    publisher: Option<DefaultKeyedRateLimiter<String>>,
}

fn limited(kind: &'static str, what: String, wait: Duration) -> Problem {
    crate::metrics::get()
        .rate_limited
        .get_or_create(&crate::metrics::Kind { kind })
        .inc();
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut p = Problem::new(
        429,
        "rate-limited",
        "Too many requests",
        format!("{what}; retry in {secs} s"),
    );
    p.retry_after = Some(secs);
    p
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        let ip = NonZeroU32::new(config.ip_per_second).map(|n| {
            DefaultKeyedRateLimiter::keyed(
                Quota::per_second(n)
                    .allow_burst(n.saturating_mul(NonZeroU32::MIN.saturating_add(1))),
            )
        });
        let publisher = NonZeroU32::new(config.publisher_per_minute)
            .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        Limits {
            config,
            ip,
            publisher,
        }
    }

    /// One write request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Problem> {
        let Some(l) = &self.ip else { return Ok(()) };
        l.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            limited(
                "ip",
                format!(
                    "more than {} write requests per second from {ip}",
                    self.config.ip_per_second
                ),
                wait,
            )
        })
    }

    /// One statement from `publisher`.
    pub fn check_publisher(&self, publisher: &str) -> Result<(), Problem> {
        let Some(l) = &self.publisher else {
            return Ok(());
        };
        l.check_key(&publisher.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            limited(
                "publisher",
                format!(
                    "more than {} statements per minute from {publisher}",
                    self.config.publisher_per_minute
                ),
                wait,
            )
        })
    }

    /// Forgets idle keys, so that many client addresses cannot grow memory for ever.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.ip {
            l.retain_recent();
        }
        if let Some(l) = &self.publisher {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_past_the_quota_with_a_retry_time() {
        let l = Limits::new(LimitsConfig {
            ip_per_second: 2,
            publisher_per_minute: 3,
            ..Default::default()
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap(); // ok: test
        let results: Vec<bool> = (0..10).map(|_| l.check_ip(ip).is_ok()).collect();
        assert!(results.iter().filter(|ok| **ok).count() <= 4);
        let p = (0..10)
            .filter_map(|_| l.check_publisher("acme.example").err())
            .next()
            .unwrap(); // ok: test
        assert_eq!(p.status, 429);
        assert!(p.retry_after.unwrap() >= 1); // ok: test
                                              // Another publisher has its own budget.
        assert!(l.check_publisher("globex.example").is_ok());
        let off = Limits::new(LimitsConfig {
            ip_per_second: 0,
            publisher_per_minute: 0,
            ..Default::default()
        });
        assert!((0..1000).all(|_| off.check_ip(ip).is_ok() && off.check_publisher("x").is_ok()));
    }
}
