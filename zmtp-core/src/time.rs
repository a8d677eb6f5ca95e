//! Time as a value. The core has no clock: the caller passes `now` in.

use core::time::Duration;

/// A point in time on the caller's monotonic clock, in microseconds since an epoch the caller
/// chooses (boot, process start, anything that never goes backwards).
///
/// `std::time::Instant`, `embassy_time::Instant` and a hardware tick counter all convert to it
/// with one subtraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the epoch (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1000
    }

    /// `self + d`, saturating at the end of time.
    // Out of line: 64-bit saturating arithmetic is large on 32-bit targets, and timers are
    // not a hot path.
    #[inline(never)]
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(duration_micros(d)),
        }
    }

    /// `self` + `us` microseconds, saturating at the end of time.
    #[inline(never)]
    pub(crate) fn plus_micros(self, us: u64) -> Instant {
        Instant {
            micros: self.micros.saturating_add(us),
        }
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// `d` in whole microseconds, saturating at `u64::MAX`. The same as
/// `u64::try_from(d.as_micros()).unwrap_or(u64::MAX)` without 128-bit arithmetic, which costs
/// about half a kilobyte of code on a 32-bit microcontroller. Out of line for the same reason.
#[inline(never)]
pub(crate) fn duration_micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating.
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}
