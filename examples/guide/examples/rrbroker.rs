//! Request-reply broker: REQ clients → ROUTER | DEALER → REP workers, forwarded by a poll
//! loop. The ZeroMQ Guide, chapter 2, "Shared Queue (DEALER and ROUTER sockets)"
//! (`rrclient`, `rrworker`, `rrbroker`), in one process.
//!
//! `cargo run -p zmtp-guide --example rrbroker`

use std::time::Duration;

use zmtp_guide::{rrbroker, Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let frontend = ctx.socket(SocketType::Router)?;
    let backend = ctx.socket(SocketType::Dealer)?;
    let front_ep = frontend.bind(ANY_LOCAL)?;
    let back_ep = backend.bind(ANY_LOCAL)?;
    let stop = Stop::new();
    let broker = {
        let stop = stop.clone();
        std::thread::spawn(move || rrbroker::rrbroker(&frontend, &backend, &stop))
    };
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let (ctx, ep, stop) = (ctx.clone(), back_ep.clone(), stop.clone());
            std::thread::spawn(move || -> zmtp_std::Result<usize> {
                let s = ctx.socket(SocketType::Rep)?;
                s.connect(&ep)?;
                // The Guide's worker takes a second; 10 ms here.
                rrbroker::rrworker(&s, &format!("worker-{n}"), Duration::from_millis(10), &stop)
            })
        })
        .collect();
    let client = ctx.socket(SocketType::Req)?;
    client.connect(&front_ep)?;
    for (n, reply) in rrbroker::rrclient(&client, 10)?.iter().enumerate() {
        println!("Received reply {n} [{}]", zmtp_guide::text(reply));
    }
    stop.stop();
    println!(
        "broker forwarded {} requests",
        broker.join().expect("broker")?
    );
    for w in workers {
        w.join().expect("worker")?;
    }
    Ok(())
}
