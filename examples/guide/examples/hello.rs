//! Hello World over REQ/REP: the ZeroMQ Guide, chapter 1, "Ask and Ye Shall Receive"
//! (`hwserver` and `hwclient`), both in one process.
//!
//! `cargo run -p zmtp-guide --example hello`

use std::time::Duration;

use zmtp_guide::{hello, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let server = ctx.socket(SocketType::Rep)?;
    let endpoint = server.bind(ANY_LOCAL)?;
    println!("hwserver on {endpoint}");
    // The Guide's server works one second per request; a tenth here.
    let t = std::thread::spawn(move || hello::hwserver(&server, 10, Duration::from_millis(100)));

    let client = ctx.socket(SocketType::Req)?;
    client.connect(&endpoint)?;
    println!("Connecting to hello world server...");
    for (n, reply) in hello::hwclient(&client, 10)?.iter().enumerate() {
        println!("Received {} {n}", zmtp_guide::text(reply));
    }
    let requests = t.join().expect("server thread")?;
    println!("server answered {} requests", requests.len());
    Ok(())
}
