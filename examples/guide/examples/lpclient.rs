//! Lazy Pirate client and a server that crashes and is restarted: the ZeroMQ Guide,
//! chapter 4, "Client-Side Reliability (Lazy Pirate Pattern)" (`lpclient`, `lpserver`),
//! in one process.
//!
//! The server answers five requests, takes a sixth and "crashes"; a supervisor thread
//! starts a new server on the same port; the client times out, reconnects, resends, and
//! carries on.
//!
//! `cargo run -p zmtp-guide --example lpclient`

use std::time::Duration;

use zmtp_guide::lazy_pirate::{self, ClientConfig, ServerFaults};
use zmtp_guide::ANY_LOCAL;
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let server = ctx.socket(SocketType::Rep)?;
    let endpoint = server.bind(ANY_LOCAL)?;
    let supervisor = {
        let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
        std::thread::spawn(move || -> zmtp_std::Result<()> {
            let faults = ServerFaults {
                crash_after: Some(5),
                stall: None,
            };
            let served = lazy_pirate::lpserver(&server, usize::MAX, faults)?;
            println!(
                "I: server: simulating a crash after {} replies",
                served.len()
            );
            drop(server);
            std::thread::sleep(Duration::from_millis(500)); // the server is down a while
            let server = ctx.socket(SocketType::Rep)?;
            lazy_pirate::bind_retry(&server, &endpoint, Duration::from_secs(5))?;
            println!("I: server: restarted on {endpoint}");
            lazy_pirate::lpserver(&server, 5, ServerFaults::default())?;
            Ok(())
        })
    };
    let cfg = ClientConfig {
        request_timeout: Duration::from_millis(1000),
        ..ClientConfig::default()
    };
    println!("I: connecting to server...");
    let report = lazy_pirate::lpclient(&ctx, &endpoint, 10, cfg, |line| println!("{line}"))?;
    supervisor.join().expect("server thread")?;
    println!(
        "confirmed {} requests, {} reconnects, abandoned: {:?}",
        report.confirmed.len(),
        report.reconnects,
        report.abandoned
    );
    Ok(())
}
