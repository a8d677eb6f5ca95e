//! The demo: a zmtp-core DEALER session, driven over a plain `std::net::TcpStream`, talks to a
//! real libzmq ROUTER (the `zmq` crate, libzmq built from source) in the same process.
//!
//! It prints the handshake (what libzmq told us in READY), sends requests, and prints the
//! replies the libzmq ROUTER sends back, with heartbeats on both sides.
//!
//! ```text
//! cargo run -p zmtp-core --example libzmq_dealer
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant as StdInstant};

use zmtp_core::{Buffers, Config, Event, Instant, Role, Session, SocketType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A libzmq ROUTER that answers every request with "<request> served by libzmq".
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_heartbeat_ivl(200)?;
    router.bind("tcp://127.0.0.1:0")?;
    let endpoint = router.get_last_endpoint()?.map_err(|_| "endpoint")?;
    let (major, minor, patch) = zmq::version();
    println!("libzmq {major}.{minor}.{patch} ROUTER bound at {endpoint}");
    let server = std::thread::spawn(move || -> zmq::Result<()> {
        for _ in 0..3 {
            let msg = router.recv_multipart(0)?;
            let (id, body) = (&msg[0], msg.last().cloned().unwrap_or_default());
            let reply = [&body[..], b" served by libzmq"].concat();
            router.send_multipart([id.clone(), reply], 0)?;
        }
        Ok(())
    });

    // Our side: a DEALER with 1 KiB buffers, as a microcontroller would have.
    let addr = endpoint.trim_start_matches("tcp://");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    let mut cfg = Config::new(SocketType::Dealer).with_identity(b"device-7");
    cfg.heartbeat_interval = Some(Duration::from_millis(250));
    let start = StdInstant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut session = Session::new(
        &cfg,
        Role::Connected,
        Buffers {
            rx: &mut rx,
            tx: &mut tx,
        },
        now(),
    )?;

    let mut sent = 0;
    let mut replies = 0;
    while replies < 3 {
        // Drain events.
        while let Some(event) = session.poll_event() {
            match event {
                Event::HandshakeComplete(peer) => {
                    println!(
                        "handshake complete: peer is {} (ZMTP 3.{})",
                        peer.socket_type, peer.minor_version
                    );
                    for p in peer.metadata.iter() {
                        println!(
                            "  {} = {:?}",
                            String::from_utf8_lossy(p.name),
                            String::from_utf8_lossy(p.value)
                        );
                    }
                }
                Event::Frame { data, .. } => {
                    println!("reply: {}", String::from_utf8_lossy(data));
                    replies += 1;
                }
                Event::Closed(reason) => return Err(format!("closed: {reason}").into()),
                other => println!("event: {other:?}"),
            }
        }
        // Send the next request once the handshake is done.
        if session.is_ready() && sent == replies && sent < 3 {
            sent += 1;
            let request = format!("request {sent} from device-7");
            println!("request: {request}");
            session.send_frame(request.as_bytes(), false)?;
        }
        // Drain output.
        loop {
            let out = session.poll_transmit();
            if out.is_empty() {
                break;
            }
            let n = stream.write(out)?;
            session.mark_transmitted(n)?;
        }
        // Read input (the read timeout lets timers fire).
        match stream.read(session.recv_window()) {
            Ok(0) => session.handle_eof(),
            Ok(n) => session.commit_received(n, now())?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        session.handle_timeout(now());
    }
    server.join().map_err(|_| "server thread panicked")??;
    println!(
        "done: 3 requests answered by libzmq in {:?}",
        start.elapsed()
    );
    Ok(())
}
