//! Measures what sockets cost before and while they have connections: the time each `bind`
//! takes, and the process's resident memory (`VmRSS`) and address space (`VmSize`) after
//! binding idle sockets, with connected peers exchanging 64 KiB messages, and after they
//! left (Linux: reads `/proc/self/status`).
//!
//! ```text
//! cargo run -p zmtp-std --example memory -- [sockets] [peers]
//! ```

use std::time::{Duration, Instant};

use zmtp_std::{Context, SocketType};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn report(what: &str) {
    println!(
        "{what:<40} VmRSS {:>12}  VmSize {:>12}",
        status("VmRSS:"),
        status("VmSize:")
    );
}

fn main() -> Result<(), zmtp_std::Error> {
    let mut args = std::env::args().skip(1);
    let sockets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let peers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let ctx = Context::new()?;
    report("start");
    let mut bound = Vec::new();
    let mut times = Vec::new();
    for _ in 0..sockets {
        let s = ctx.socket(SocketType::Router)?;
        let t = Instant::now();
        let ep = s.bind("tcp://127.0.0.1:0")?;
        times.push(t.elapsed());
        bound.push((s, ep));
    }
    times.sort();
    println!(
        "bind: median {:?}, max {:?} ({sockets} ROUTER sockets)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    report(&format!("{sockets} idle bound sockets"));
    let (router, ep) = &bound[0];
    let dealers: Vec<_> = (0..peers)
        .map(|_| {
            let d = ctx.socket(SocketType::Dealer)?;
            d.connect(ep)?;
            Ok(d)
        })
        .collect::<Result<_, zmtp_std::Error>>()?;
    let body = vec![7u8; 64 * 1024];
    for d in &dealers {
        d.send(&body)?;
    }
    for _ in 0..peers {
        let m = router.recv_multipart_timeout(Duration::from_secs(10))?;
        assert_eq!(m[1].len(), body.len());
    }
    report(&format!("{peers} peers after one 64 KiB message each"));
    drop(dealers);
    let deadline = Instant::now() + Duration::from_secs(10);
    while router.connected_peers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    report("after the peers left");
    Ok(())
}
