//! Majordomo (MDP 0.2): a broker, two echo workers and a client in one process. The
//! ZeroMQ Guide, chapter 4, "Service-Oriented Reliable Queuing (Majordomo Pattern)"
//! (`mdbroker`, `mdworker`, `mdclient`) and "Service Discovery" (`mmiecho`).
//!
//! `cargo run -p zmtp-guide --example majordomo [REQUESTS]`

use std::time::Instant;

use zmtp_guide::mdp::{self, Client, ClientConfig, Heartbeat, Worker, WorkerConfig};
use zmtp_guide::{Stop, ANY_LOCAL};
use zmtp_std::Context;

fn main() -> Result<(), zmtp_std::Error> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let ctx = Context::new()?;
    let (mut broker, endpoint) = mdp::bind_broker(&ctx, ANY_LOCAL, Heartbeat::default())?;
    println!("I: MDP broker/0.2 is active at {endpoint}");
    let broker_stop = Stop::new();
    let broker_thread = {
        let stop = broker_stop.clone();
        std::thread::spawn(move || broker.run(&stop))
    };
    let stop = Stop::new();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (ctx, endpoint, stop) = (ctx.clone(), endpoint.clone(), stop.clone());
            std::thread::spawn(move || -> zmtp_std::Result<usize> {
                let mut w = Worker::new(&ctx, &endpoint, "echo", WorkerConfig::default())?;
                mdp::echo_worker(&mut w, &stop)
            })
        })
        .collect();

    let mut client = Client::new(&ctx, &endpoint, ClientConfig::default())?;
    // mmiecho: is the echo service there yet? (The workers are registering.)
    let mut tries = 0;
    loop {
        let lookup = client.send("mmi.service", vec![b"echo".to_vec()])?;
        if lookup.is_some_and(|r| r.last == [b"200".to_vec()]) {
            break;
        }
        tries += 1;
        if tries == 1000 {
            eprintln!("E: no echo service");
            std::process::exit(1);
        }
        std::thread::yield_now();
    }
    println!("Lookup echo service: 200");
    let t0 = Instant::now();
    let mut ok = 0;
    for n in 0..requests {
        match client.send(
            "echo",
            vec![b"Hello world".to_vec(), n.to_string().into_bytes()],
        )? {
            Some(_) => ok += 1,
            None => println!("E: request {n} abandoned"),
        }
    }
    println!(
        "{ok} requests/replies processed in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let unknown = client.send("mmi.service", vec![b"nothing".to_vec()])?;
    println!(
        "Lookup nothing service: {}",
        unknown.map_or("-".into(), |r| zmtp_guide::text(&r.last.concat()))
    );
    stop.stop();
    for (n, w) in workers.into_iter().enumerate() {
        println!("echo worker {n}: {} requests", w.join().expect("worker")?);
    }
    broker_stop.stop();
    println!("broker: {:?}", broker_thread.join().expect("broker")?);
    Ok(())
}
