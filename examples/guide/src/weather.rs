//! Weather updates, PUB/SUB with a filter (Guide chapter 1, "Getting the Message Out":
//! `wuserver`, `wuclient`).
//!
//! The server publishes "zipcode temperature humidity" for random zip codes; the client
//! subscribes to one zip code (the filter is a prefix of the message, "10001 ") and
//! averages the temperature it reports. The Guide draws zip codes from 0-99999; here the
//! range is a parameter, so that a test gets its 10001s in a few thousand messages.

use std::ops::RangeInclusive;

use zmtp_std::{Result, Socket};

use crate::{Rng, Stop};

/// One weather update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// Zip code.
    pub zipcode: u32,
    /// Temperature, -80 to 134.
    pub temperature: i32,
    /// Relative humidity, 10 to 59.
    pub relhumidity: u32,
}

impl Update {
    /// The update as the Guide formats it: `"%05d %d %d"`.
    pub fn encode(&self) -> String {
        format!(
            "{:05} {} {}",
            self.zipcode, self.temperature, self.relhumidity
        )
    }

    /// Parses [`encode`](Self::encode)'s format.
    pub fn parse(frame: &[u8]) -> Option<Update> {
        let s = std::str::from_utf8(frame).ok()?;
        let mut it = s.split(' ');
        let u = Update {
            zipcode: it.next()?.parse().ok()?,
            temperature: it.next()?.parse().ok()?,
            relhumidity: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(u)
    }
}

/// The Guide's filter for a zip code: its five digits and a space.
pub fn filter(zipcode: u32) -> String {
    format!("{zipcode:05} ")
}

/// The server (`wuserver`): publishes random updates for zip codes in `zipcodes` on a PUB
/// socket until `stop`; returns how many it published.
pub fn wuserver(
    publisher: &Socket,
    zipcodes: RangeInclusive<u32>,
    seed: u64,
    stop: &Stop,
) -> Result<u64> {
    let mut rng = Rng::new(seed);
    let (lo, hi) = (u64::from(*zipcodes.start()), u64::from(*zipcodes.end()));
    let mut sent = 0u64;
    while !stop.is_stopped() {
        let update = Update {
            zipcode: rng.within(lo, hi) as u32,
            temperature: rng.below(215) as i32 - 80,
            relhumidity: rng.below(50) as u32 + 10,
        };
        publisher.send(update.encode())?;
        sent += 1;
        if sent.is_multiple_of(64) {
            // Let the I/O thread and the subscribers run on a busy machine.
            std::thread::yield_now();
        }
    }
    Ok(sent)
}

/// The client (`wuclient`): subscribes a SUB socket to `zipcode` and collects `updates`
/// updates. Anything that does not parse is an error of the test, so it is returned as is
/// in `Err`.
pub fn wuclient(
    subscriber: &Socket,
    zipcode: u32,
    updates: usize,
) -> Result<std::result::Result<Vec<Update>, Vec<u8>>> {
    subscriber.subscribe(filter(zipcode))?;
    let mut got = Vec::with_capacity(updates);
    while got.len() < updates {
        let frame = subscriber.recv()?;
        match Update::parse(&frame) {
            Some(u) => got.push(u),
            None => return Ok(Err(frame)),
        }
    }
    Ok(Ok(got))
}

/// The average temperature of `updates`, as the Guide's client prints it.
pub fn average_temperature(updates: &[Update]) -> f64 {
    if updates.is_empty() {
        return 0.0;
    }
    updates
        .iter()
        .map(|u| f64::from(u.temperature))
        .sum::<f64>()
        / updates.len() as f64
}
