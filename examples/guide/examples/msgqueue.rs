//! The built-in proxy: a ROUTER-DEALER queue in one call. The ZeroMQ Guide, chapter 2,
//! "ZeroMQ's Built-In Proxy" (`msgqueue`), with `rrclient`s and `rrworker`s, in one
//! process; a control socket stops the proxy and reports its statistics.
//!
//! `cargo run -p zmtp-guide --example msgqueue`

use std::time::Duration;

use zmtp_guide::proxy::proxy_steerable;
use zmtp_guide::{rrbroker, Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let frontend = ctx.socket(SocketType::Router)?;
    let backend = ctx.socket(SocketType::Dealer)?;
    let front_ep = frontend.bind(ANY_LOCAL)?;
    let back_ep = backend.bind(ANY_LOCAL)?;
    let control = ctx.socket(SocketType::Rep)?;
    let control_ep = control.bind(ANY_LOCAL)?;
    // zmq_proxy (frontend, backend, NULL), steerable
    let proxy =
        std::thread::spawn(move || proxy_steerable(&frontend, &backend, None, Some(&control)));
    let stop = Stop::new();
    let workers: Vec<_> = (0..2)
        .map(|n| {
            let (ctx, ep, stop) = (ctx.clone(), back_ep.clone(), stop.clone());
            std::thread::spawn(move || -> zmtp_std::Result<usize> {
                let s = ctx.socket(SocketType::Rep)?;
                s.connect(&ep)?;
                rrbroker::rrworker(&s, &format!("worker-{n}"), Duration::from_millis(10), &stop)
            })
        })
        .collect();
    let client = ctx.socket(SocketType::Req)?;
    client.connect(&front_ep)?;
    for (n, reply) in rrbroker::rrclient(&client, 10)?.iter().enumerate() {
        println!("Received reply {n} [{}]", zmtp_guide::text(reply));
    }
    let steer = ctx.socket(SocketType::Req)?;
    steer.connect(&control_ep)?;
    steer.send("TERMINATE")?;
    steer.recv()?;
    let stats = proxy.join().expect("proxy")?;
    println!("proxy: {stats:?}");
    stop.stop();
    for w in workers {
        w.join().expect("worker")?;
    }
    Ok(())
}
