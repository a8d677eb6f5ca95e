//! Divide and conquer: a ventilator, workers and a sink over PUSH/PULL (Guide chapter 1,
//! "Divide and Conquer": `taskvent`, `taskwork`, `tasksink`).
//!
//! The ventilator PUSHes tasks, which the workers' PULL sockets share out (round robin
//! over the connected workers); each worker PUSHes its result to the sink's PULL, which
//! fair-queues them. The ventilator first tells the sink a batch starts.
//!
//! A task is `"id workload"` (the Guide sends only the workload, in milliseconds); a result
//! is `"worker id"`, so the sink can tell who did what.

use std::time::{Duration, Instant};

use zmtp_std::{Error, Result, Socket};

use crate::{Rng, Stop, STOP_CHECK};

/// The ventilator (`taskvent`): tells the sink a batch starts (a "0" on `sink`, a PUSH
/// connected to it), then sends `tasks` tasks with workloads of 1-100 units on `sender`
/// (a bound PUSH). Returns the total workload. Connect the workers first: a PUSH gives
/// its messages to the peers it has, so the first worker to connect would get them all.
pub fn taskvent(sender: &Socket, sink: &Socket, tasks: usize, seed: u64) -> Result<u64> {
    sink.send("0")?;
    let mut rng = Rng::new(seed);
    let mut total = 0;
    for id in 0..tasks {
        let workload = rng.within(1, 100);
        total += workload;
        sender.send(format!("{id} {workload}"))?;
    }
    Ok(total)
}

/// A worker (`taskwork`): takes tasks from `receiver` (a PULL connected to the
/// ventilator), "works" `workload × unit` (the Guide: 1 ms), sends `"name id"` on `sender`
/// (a PUSH connected to the sink), until `stop`. Returns how many tasks it did.
pub fn taskwork(
    name: &str,
    receiver: &Socket,
    sender: &Socket,
    unit: Duration,
    stop: &Stop,
) -> Result<usize> {
    let mut done = 0;
    while !stop.is_stopped() {
        let task = match receiver.recv_timeout(STOP_CHECK) {
            Ok(t) => t,
            Err(Error::Timeout) => continue,
            Err(e) => return Err(e),
        };
        let task = String::from_utf8_lossy(&task).into_owned();
        let (id, workload) = task.split_once(' ').unwrap_or((&task, "0"));
        let workload: u32 = workload.parse().unwrap_or(0);
        if !unit.is_zero() {
            std::thread::sleep(unit * workload);
        }
        sender.send(format!("{name} {id}"))?;
        done += 1;
    }
    Ok(done)
}

/// What the sink saw.
#[derive(Debug)]
pub struct Batch {
    /// `(worker, task id)` for each result, in arrival order.
    pub results: Vec<(String, usize)>,
    /// From the start signal to the last result.
    pub elapsed: Duration,
}

/// The sink (`tasksink`): on a bound PULL, waits for the start signal, then collects
/// `tasks` results.
pub fn tasksink(receiver: &Socket, tasks: usize) -> Result<Batch> {
    let _start = receiver.recv()?;
    let t0 = Instant::now();
    let mut results = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let r = receiver.recv()?;
        let r = String::from_utf8_lossy(&r).into_owned();
        let (worker, id) = r.split_once(' ').unwrap_or((&r, ""));
        results.push((worker.to_owned(), id.parse().unwrap_or(usize::MAX)));
    }
    Ok(Batch {
        results,
        elapsed: t0.elapsed(),
    })
}
