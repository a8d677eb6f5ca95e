//! Parallel pipeline, ventilator → workers → sink over PUSH/PULL: the ZeroMQ Guide,
//! chapter 1, "Divide and Conquer" (`taskvent`, `taskwork`, `tasksink`), in one process.
//!
//! `cargo run -p zmtp-guide --example pipeline [WORKERS]` (default 3)

use std::collections::BTreeMap;
use std::time::Duration;

use zmtp_guide::{pipeline, wait_for, Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

const TASKS: usize = 100;

fn main() -> Result<(), zmtp_std::Error> {
    let workers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let ctx = Context::new()?;
    let sink = ctx.socket(SocketType::Pull)?;
    let sink_endpoint = sink.bind(ANY_LOCAL)?;
    let sender = ctx.socket(SocketType::Push)?;
    let vent_endpoint = sender.bind(ANY_LOCAL)?;

    let stop = Stop::new();
    let mut threads = Vec::new();
    for n in 1..=workers {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        let (vent, sink) = (vent_endpoint.clone(), sink_endpoint.clone());
        threads.push(std::thread::spawn(move || -> zmtp_std::Result<usize> {
            let receiver = ctx.socket(SocketType::Pull)?;
            receiver.connect(&vent)?;
            let sender = ctx.socket(SocketType::Push)?;
            sender.connect(&sink)?;
            let name = format!("worker-{n}");
            pipeline::taskwork(&name, &receiver, &sender, Duration::from_millis(1), &stop)
        }));
    }
    let collector = std::thread::spawn(move || pipeline::tasksink(&sink, TASKS));

    // The Guide asks "Press Enter when the workers are ready"; we wait until they are.
    let to_sink = ctx.socket(SocketType::Push)?;
    to_sink.connect(&sink_endpoint)?;
    wait_for(Duration::from_secs(5), || {
        sender.connected_peers() == workers
    });
    println!("Sending tasks to {workers} workers...");
    let total = pipeline::taskvent(&sender, &to_sink, TASKS, 42)?;
    println!("Total expected cost: {total} msec");

    let batch = collector.join().expect("sink thread")?;
    stop.stop();
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for (w, _) in &batch.results {
        *per_worker.entry(w.clone()).or_default() += 1;
    }
    for t in threads {
        t.join().expect("worker thread")?;
    }
    for (w, n) in &per_worker {
        println!("{w}: {n} tasks");
    }
    println!("Total elapsed time: {} msec", batch.elapsed.as_millis());
    Ok(())
}
