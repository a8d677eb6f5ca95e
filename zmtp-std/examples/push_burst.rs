//! Sends a burst of small messages from a PUSH to a PULL over loopback TCP and reports the
//! rate; with `strace -c -f` it shows how many write system calls the burst takes.
//!
//! ```text
//! cargo run --release -p zmtp-std --example push_burst -- [messages] [size]
//! strace -c -f -e trace=write,writev,sendto,sendmsg,read,recvfrom target/release/examples/push_burst
//! ```

use std::time::Instant;

use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let ctx = Context::new()?;
    let pull = ctx.socket(SocketType::Pull)?;
    let push = ctx.socket(SocketType::Push)?;
    push.connect(&pull.bind("tcp://127.0.0.1:0")?)?;
    let body = vec![0x5a_u8; size];
    let start = Instant::now();
    let receiver = std::thread::spawn(move || -> Result<usize, zmtp_std::Error> {
        let mut bytes = 0;
        for _ in 0..count {
            bytes += pull.recv_multipart()?.iter().map(Vec::len).sum::<usize>();
        }
        Ok(bytes)
    });
    for _ in 0..count {
        push.send(&body)?;
    }
    let bytes = receiver.join().map_err(|_| zmtp_std::Error::Terminated)??;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{count} messages of {size} bytes in {secs:.3} s: {:.0} msg/s, {:.1} MB/s",
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
