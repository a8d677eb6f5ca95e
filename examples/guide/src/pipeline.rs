//! Divide and conquer: a ventilator, workers and a sink over PUSH/PULL (Guide chapter 1,
//! "Divide and Conquer": `taskvent`, `taskwork`, `tasksink`).
//!
//! The ventilator PUSHes tasks, which the workers' PULL sockets share out (round robin
//! over the connected workers); each worker PUSHes its result to the sink's PULL, which
//! fair-queues them. The ventilator first tells the sink a batch starts.
//!
//! A task is `"id workload"` (the Guide sends only the workload, in milliseconds); a result
//! is `"worker id"`, so the sink can tell who did what.
//!
//! With a kill signal (Guide chapter 2, "Handling Errors and ETERM": `taskwork2`,
//! `tasksink2`): the sink also binds a PUB, and once the batch is in it publishes
//! [`KILL`]; each worker also has a SUB connected to it, subscribed to everything, and
//! polls it next to its PULL ([`taskwork2`]): the first message there ends the worker.

use std::time::{Duration, Instant};

use zmtp_std::{poll, Error, PollEvents, Result, Socket};

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
        work(name, &task, sender, unit)?;
        done += 1;
    }
    Ok(done)
}

/// Does one task and sends its result.
fn work(name: &str, task: &[u8], sender: &Socket, unit: Duration) -> Result<()> {
    let task = String::from_utf8_lossy(task);
    let (id, workload) = task.split_once(' ').unwrap_or((&task, "0"));
    let workload: u32 = workload.parse().unwrap_or(0);
    if !unit.is_zero() {
        std::thread::sleep(unit * workload);
    }
    sender.send(format!("{name} {id}"))
}

/// What the sink publishes when the batch is done (any message ends the workers; this is
/// the Guide's).
pub const KILL: &[u8] = b"KILL";

/// A worker with a kill switch (`taskwork2`): as [`taskwork`], but instead of a flag it
/// polls `receiver` and `controller` (a SUB connected to the sink's PUB and subscribed to
/// everything) and returns at the first message on `controller`. Returns how many tasks
/// it did.
pub fn taskwork2(
    name: &str,
    receiver: &Socket,
    controller: &Socket,
    sender: &Socket,
    unit: Duration,
) -> Result<usize> {
    let mut done = 0;
    loop {
        let mut items = [
            receiver.as_poll_item(PollEvents::IN),
            controller.as_poll_item(PollEvents::IN),
        ];
        poll(&mut items, None)?;
        if items[0].is_readable() {
            let task = receiver.try_recv()?;
            work(name, &task, sender, unit)?;
            done += 1;
        }
        // Any message from the sink is the kill signal.
        if items[1].is_readable() {
            return Ok(done);
        }
    }
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
///
/// The start signal and the results come over different connections, so a quick
/// worker's result can overtake the signal (the Guide's sink would take that result for
/// the signal, and the signal for a result). This sink tells them apart by their shape
/// (a result has a space in it) and starts the clock at whichever comes first.
pub fn tasksink(receiver: &Socket, tasks: usize) -> Result<Batch> {
    let mut started = false;
    let mut t0 = None;
    let mut results = Vec::with_capacity(tasks);
    while !started || results.len() < tasks {
        let r = receiver.recv()?;
        t0.get_or_insert_with(Instant::now);
        let r = String::from_utf8_lossy(&r).into_owned();
        match r.split_once(' ') {
            Some((worker, id)) => {
                results.push((worker.to_owned(), id.parse().unwrap_or(usize::MAX)));
            }
            None => started = true,
        }
    }
    Ok(Batch {
        results,
        elapsed: t0.map_or(Duration::ZERO, |t| t.elapsed()),
    })
}

/// The sink with a kill switch (`tasksink2`): as [`tasksink`], then [`kill`]s the workers
/// through `controller` (a bound PUB), waiting up to `patience` for them to go.
pub fn tasksink2(
    receiver: &Socket,
    controller: &Socket,
    tasks: usize,
    patience: Duration,
) -> Result<Batch> {
    let batch = tasksink(receiver, tasks)?;
    kill(controller, patience)?;
    Ok(batch)
}

/// Publishes [`KILL`] on `controller` (a bound PUB) and waits until every subscriber has
/// hung up, at most `patience` ([`Error::Timeout`]); returns how many times it published.
///
/// The Guide publishes once and then sleeps a second, "to give 0MQ time to deliver".
/// Instead, this watches the subscribers leave, and publishes again every
/// [`STOP_CHECK`] while any is left: a PUB sends only to subscriptions
/// it has received, so a worker whose subscription was still on its way would miss a
/// single KILL (the "slow joiner").
pub fn kill(controller: &Socket, patience: Duration) -> Result<usize> {
    let deadline = Instant::now() + patience;
    let mut sent = 0;
    loop {
        controller.send(KILL)?;
        sent += 1;
        let next = (Instant::now() + STOP_CHECK).min(deadline);
        if crate::wait_for(next.saturating_duration_since(Instant::now()), || {
            controller.connected_peers() == 0
        }) {
            return Ok(sent);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout);
        }
    }
}
