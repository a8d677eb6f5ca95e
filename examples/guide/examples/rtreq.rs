//! ROUTER broker with REQ workers, load balanced by who asks: the ZeroMQ Guide, chapter 3,
//! "ROUTER Broker and REQ Workers" (`rtreq`).
//!
//! `cargo run -p zmtp-guide --example rtreq`

use std::time::Duration;

use zmtp_guide::{rtreq, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

const WORKERS: usize = 10;
const TASKS: usize = 100;

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let broker = ctx.socket(SocketType::Router)?;
    let endpoint = broker.bind(ANY_LOCAL)?;
    let mut threads = Vec::new();
    for n in 0..WORKERS {
        let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
        threads.push(std::thread::spawn(
            move || -> zmtp_std::Result<(String, usize)> {
                let worker = ctx.socket(SocketType::Req)?;
                let name = format!("{:04X}-{:04X}", n * 7919 % 65536, n * 104_729 % 65536);
                worker.set_routing_id(name.as_bytes())?;
                worker.connect(&endpoint)?;
                // The Guide works 1-500 ms per task; a tenth here.
                let done = rtreq::worker(&worker, Duration::from_micros(100), n as u64 + 1)?;
                Ok((name, done))
            },
        ));
    }
    rtreq::broker(&broker, TASKS, WORKERS)?;
    for t in threads {
        let (name, done) = t.join().expect("worker thread")?;
        println!("{name}: Completed: {done} tasks");
    }
    Ok(())
}
