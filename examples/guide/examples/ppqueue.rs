//! Paranoid Pirate: a heartbeating queue, two workers (one crashes after three requests,
//! and its heartbeats stop), and a Lazy Pirate client. The ZeroMQ Guide, chapter 4,
//! "Robust Reliable Queuing (Paranoid Pirate Pattern)" (`ppqueue`, `ppworker`), in one
//! process. The Simple Pirate queue (`spqueue`) is `zmtp_guide::pirate::spqueue`.
//!
//! `cargo run -p zmtp-guide --example ppqueue`

use std::time::Duration;

use zmtp_guide::lazy_pirate::{self, ClientConfig};
use zmtp_guide::pirate::{self, PpConfig};
use zmtp_guide::{Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let frontend = ctx.socket(SocketType::Router)?;
    let backend = ctx.socket(SocketType::Router)?;
    let f = frontend.bind(ANY_LOCAL)?;
    let b = backend.bind(ANY_LOCAL)?;
    let cfg = PpConfig {
        heartbeat_interval: Duration::from_millis(250),
        ..PpConfig::default()
    };
    let stop = Stop::new();
    let queue = {
        let stop = stop.clone();
        std::thread::spawn(move || pirate::ppqueue(&frontend, &backend, cfg, &stop))
    };
    let workers: Vec<_> = [Some(3), None]
        .into_iter()
        .map(|crash| {
            let (ctx, b, stop) = (ctx.clone(), b.clone(), stop.clone());
            std::thread::spawn(move || pirate::ppworker(&ctx, &b, cfg, crash, &stop))
        })
        .collect();
    let client_cfg = ClientConfig {
        request_timeout: Duration::from_millis(1000),
        ..ClientConfig::default()
    };
    let report = lazy_pirate::lpclient(&ctx, &f, 10, client_cfg, |l| println!("{l}"))?;
    stop.stop();
    for (n, w) in workers.into_iter().enumerate() {
        println!("worker {n}: {:?}", w.join().expect("worker")?);
    }
    println!("queue: {:?}", queue.join().expect("queue")?);
    println!(
        "client: {} confirmed, {} reconnects",
        report.confirmed.len(),
        report.reconnects
    );
    Ok(())
}
