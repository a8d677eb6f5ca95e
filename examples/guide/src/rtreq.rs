//! ROUTER broker and REQ workers (Guide chapter 3, "ROUTER Broker and REQ Workers":
//! `rtreq`).
//!
//! Workers ask "Hi Boss"; the broker answers whoever asked "Work harder" while it has work
//! and then "Fired!". The ROUTER gets each request as `[worker id, "", body]` and routes the
//! answer by that first frame, so the least busy worker asks most often and gets most.
//! The Guide hands out work for five seconds; here it is a number of tasks.

use std::collections::BTreeMap;
use std::time::Duration;

use zmtp_std::{Result, Socket};

use crate::Rng;

/// The broker: on a bound ROUTER, hands out `tasks` tasks, then fires `workers` workers.
/// Returns the tasks given to each worker, by routing id.
pub fn broker(router: &Socket, tasks: usize, workers: usize) -> Result<BTreeMap<Vec<u8>, usize>> {
    let mut given: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut handed_out = 0;
    let mut fired = 0;
    while fired < workers {
        // [identity, "", "Hi Boss"]
        let msg = router.recv_multipart()?;
        let Some(identity) = msg.first().cloned() else {
            continue;
        };
        if handed_out < tasks {
            handed_out += 1;
            *given.entry(identity.clone()).or_default() += 1;
            router.send_multipart([identity, Vec::new(), b"Work harder".to_vec()])?;
        } else {
            router.send_multipart([identity, Vec::new(), b"Fired!".to_vec()])?;
            fired += 1;
        }
    }
    Ok(given)
}

/// A worker on a REQ socket (connected, with its routing id set): asks for work until
/// fired, "working" a random 1-500 × `unit` per task (the Guide: 1 ms). Returns the tasks
/// it did.
pub fn worker(req: &Socket, unit: Duration, seed: u64) -> Result<usize> {
    let mut rng = Rng::new(seed);
    let mut total = 0;
    loop {
        req.send("Hi Boss")?;
        let workload = req.recv()?;
        if workload == b"Fired!" {
            return Ok(total);
        }
        if !unit.is_zero() {
            std::thread::sleep(unit * rng.within(1, 500) as u32);
        }
        total += 1;
    }
}
