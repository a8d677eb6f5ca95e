//! ROUTER broker and DEALER workers (Guide chapter 3, "ROUTER Broker and DEALER Workers":
//! `rtdealer`).
//!
//! The same dialogue as [`rtreq`](crate::rtreq), with DEALER workers: a DEALER adds no
//! envelope, so the worker sends the empty delimiter frame a REQ would add and strips it
//! from the answer. The broker is [`rtreq::broker`](crate::rtreq::broker), unchanged: it
//! cannot tell the two kinds of worker apart.

use std::time::Duration;

use zmtp_std::{Result, Socket};

use crate::Rng;

pub use crate::rtreq::broker;

/// A worker on a DEALER socket (connected, with its routing id set): asks for work until
/// fired, "working" a random 1-500 × `unit` per task. Returns the tasks it did.
pub fn worker(dealer: &Socket, unit: Duration, seed: u64) -> Result<usize> {
    let mut rng = Rng::new(seed);
    let mut total = 0;
    loop {
        dealer.send_multipart([&b""[..], b"Hi Boss"])?;
        // ["", workload]
        let msg = dealer.recv_multipart()?;
        if msg.last().map(Vec::as_slice) == Some(b"Fired!") {
            return Ok(total);
        }
        if !unit.is_zero() {
            std::thread::sleep(unit * rng.within(1, 500) as u32);
        }
        total += 1;
    }
}
