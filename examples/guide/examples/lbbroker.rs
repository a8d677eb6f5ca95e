//! The load-balancing message broker: the ZeroMQ Guide, chapter 3, "A Load Balancing
//! Message Broker" (`lbbroker`). The broker, 10 clients and 3 workers run in one process
//! over TCP loopback, on ports the system picks.
//!
//! `cargo run -p zmtp-guide --example lbbroker [CLIENTS WORKERS REQUESTS_PER_CLIENT]`

use zmtp_guide::lbbroker::{self, Config};

fn main() -> Result<(), zmtp_std::Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("numbers: CLIENTS WORKERS REQUESTS_PER_CLIENT")
        })
        .collect();
    let mut cfg = Config::default();
    if let [clients, workers, ref rest @ ..] = args[..] {
        cfg.clients = clients;
        cfg.workers = workers;
        cfg.requests_per_client = rest.first().copied().unwrap_or(1);
    }
    let report = lbbroker::run(cfg)?;
    for s in &report.served {
        println!("{} <- {}: {}", s.client, s.worker, s.reply);
    }
    println!("--");
    for (worker, n) in &report.per_worker {
        println!("{worker}: {n} requests");
    }
    let total: usize = report.per_worker.values().sum();
    let ok = report
        .client_replies
        .values()
        .flatten()
        .filter(|r| r.as_slice() == b"OK")
        .count();
    println!(
        "total: {total} requests from {} clients, {ok} OK replies, in {:.1} ms",
        report.client_replies.len(),
        report.elapsed.as_secs_f64() * 1e3
    );
    if ok != cfg.clients * cfg.requests_per_client || total != ok {
        eprintln!("error: some requests were not served");
        std::process::exit(1);
    }
    Ok(())
}
