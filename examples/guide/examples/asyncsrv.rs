//! The asynchronous client/server: the ZeroMQ Guide, chapter 3, "The Asynchronous
//! Client/Server Pattern" (`asyncsrv`). DEALER clients, a ROUTER-DEALER proxy and a pool
//! of DEALER workers that answer each request with 0-4 replies, in one process over TCP
//! loopback. The Guide's times are divided by 10: a request every 100 ms, up to 100 ms per
//! reply; how many replies each request gets changes from run to run.
//!
//! `cargo run -p zmtp-guide --example asyncsrv [CLIENTS WORKERS REQUESTS_PER_CLIENT]`

use std::time::{SystemTime, UNIX_EPOCH};

use zmtp_guide::asyncsrv::{self, Config};

fn main() -> Result<(), zmtp_std::Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("numbers: CLIENTS WORKERS REQUESTS_PER_CLIENT")
        })
        .collect();
    let mut cfg = Config {
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        ..Config::default()
    };
    if let [clients, workers, ref rest @ ..] = args[..] {
        cfg.clients = clients;
        cfg.workers = workers;
        cfg.requests_per_client = rest.first().copied().unwrap_or(cfg.requests_per_client);
    }
    let report = asyncsrv::run(cfg)?;
    let mut failed = false;
    for c in &report.clients {
        for r in &c.replies {
            let frames: Vec<String> = r.iter().map(|f| zmtp_guide::text(f)).collect();
            println!("{}: {}", c.name, frames.join(" | "));
        }
        if let Err(e) = c.check(cfg.seed) {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    println!("--");
    for (worker, handled) in &report.server.workers {
        let replies: usize = handled.iter().map(|h| h.replies).sum();
        println!("{worker}: {} requests, {replies} replies", handled.len());
    }
    let p = report.server.proxy;
    println!(
        "proxy: {} requests in, {} replies out ({} and {} frames: [client, body]); {:.1} ms",
        p.frontend_in_msgs / 2,
        p.frontend_out_msgs / 2,
        p.frontend_in_msgs,
        p.frontend_out_msgs,
        report.elapsed.as_secs_f64() * 1e3
    );
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
