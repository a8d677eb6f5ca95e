//! Parallel pipeline with a kill signal: the ZeroMQ Guide, chapter 2, "Handling Errors and
//! ETERM" (`taskvent`, `taskwork2`, `tasksink2`), in one process. When the batch is done
//! the sink publishes KILL, and every worker, polling its task PULL and a SUB for that,
//! exits.
//!
//! `cargo run -p zmtp-guide --example pipeline2 [WORKERS]` (default 3)

use std::time::Duration;

use zmtp_guide::{pipeline, wait_for, ANY_LOCAL};
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
    let controller = ctx.socket(SocketType::Pub)?;
    let controller_endpoint = controller.bind(ANY_LOCAL)?;
    let sender = ctx.socket(SocketType::Push)?;
    let vent_endpoint = sender.bind(ANY_LOCAL)?;

    let threads: Vec<_> = (1..=workers)
        .map(|n| {
            let ctx = ctx.clone();
            let (vent, sink, control) = (
                vent_endpoint.clone(),
                sink_endpoint.clone(),
                controller_endpoint.clone(),
            );
            std::thread::spawn(move || -> zmtp_std::Result<(String, usize)> {
                let receiver = ctx.socket(SocketType::Pull)?;
                receiver.connect(&vent)?;
                let sender = ctx.socket(SocketType::Push)?;
                sender.connect(&sink)?;
                let controller = ctx.socket(SocketType::Sub)?;
                controller.subscribe("")?;
                controller.connect(&control)?;
                let name = format!("worker-{n}");
                let unit = Duration::from_millis(1);
                let done = pipeline::taskwork2(&name, &receiver, &controller, &sender, unit)?;
                Ok((name, done))
            })
        })
        .collect();

    // The Guide asks "Press Enter when the workers are ready"; we wait until they are.
    let to_sink = ctx.socket(SocketType::Push)?;
    to_sink.connect(&sink_endpoint)?;
    wait_for(Duration::from_secs(5), || {
        sender.connected_peers() == workers && controller.connected_peers() == workers
    });
    let collector = std::thread::spawn(move || {
        pipeline::tasksink2(&sink, &controller, TASKS, Duration::from_secs(10))
    });
    println!("Sending tasks to {workers} workers...");
    let total = pipeline::taskvent(&sender, &to_sink, TASKS, 42)?;
    println!("Total expected cost: {total} msec");

    let batch = collector.join().expect("sink thread")?;
    println!("Total elapsed time: {} msec", batch.elapsed.as_millis());
    println!("KILL sent; every worker has gone:");
    for t in threads {
        let (name, done) = t.join().expect("worker thread")?;
        println!("{name}: {done} tasks");
    }
    Ok(())
}
