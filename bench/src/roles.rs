//! The child processes' roles: one side of one measurement each.
//!
//! A child talks to the parent over its standard output: `ENDPOINT <endpoint> <key>` once it
//! listens (servers), `RESULT <numbers>` when done. Errors go to standard error and make the
//! child exit non-zero.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use zmtp_std::SocketType;

use crate::core_drv;

/// A child's failure, printed by `main`.
pub type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Which library plays a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// zmtp-std (the blocking sockets with their I/O thread).
    Zmtp,
    /// libzmq through the `zmq` crate (its bundled libzmq 4.3.x).
    Libzmq,
}

impl Lib {
    pub fn name(self) -> &'static str {
        match self {
            Lib::Zmtp => "zmtp",
            Lib::Libzmq => "libzmq",
        }
    }

    pub fn parse(s: &str) -> Res<Lib> {
        match s {
            "zmtp" => Ok(Lib::Zmtp),
            "libzmq" => Ok(Lib::Libzmq),
            _ => Err(format!("unknown library {s:?}").into()),
        }
    }
}

/// A zmtp-std context; `ZMTP_BENCH_IO_SPIN_US` sets its I/O thread's spin
/// (`Context::set_io_spin`; 0 turns it off) to compare with and without.
fn std_context() -> Res<zmtp_std::Context> {
    let ctx = zmtp_std::Context::new()?;
    if let Some(us) = std::env::var("ZMTP_BENCH_IO_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        ctx.set_io_spin(std::time::Duration::from_micros(us));
    }
    Ok(ctx)
}

fn announce(endpoint: &str, key: &str) {
    println!("ENDPOINT {endpoint} {key}");
    let _ = std::io::stdout().flush();
}

fn result(fields: &[u128]) {
    let s: Vec<String> = fields.iter().map(u128::to_string).collect();
    println!("RESULT {}", s.join(" "));
    let _ = std::io::stdout().flush();
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Res<T> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}").into())
}

fn check_len(got: usize, size: usize) -> Res {
    if got != size {
        return Err(format!("received {got} bytes, expected {size}").into());
    }
    Ok(())
}

/// Runs the child role named in `args[0]`.
pub fn run(args: &[String]) -> Res {
    let role = args.first().map(String::as_str).unwrap_or("");
    match role {
        // thr-recv LIB SIZE COUNT [CURVE 0|1]
        "thr-recv" => thr_recv(
            Lib::parse(&args[1])?,
            arg(args, 2, "size")?,
            arg(args, 3, "count")?,
            args.get(4).is_some_and(|c| c == "1"),
        ),
        // thr-send LIB ENDPOINT SIZE COUNT [SERVER-KEY|-]
        "thr-send" => thr_send(
            Lib::parse(&args[1])?,
            &args[2],
            arg(args, 3, "size")?,
            arg(args, 4, "count")?,
            args.get(5).map_or("-", String::as_str),
        ),
        // std-hs-server CURVE COUNT / std-hs-client ENDPOINT KEY COUNT (zmtp-std)
        "std-hs-server" => std_hs_server(arg::<u8>(args, 1, "curve")? != 0, arg(args, 2, "count")?),
        "std-hs-client" => std_hs_client(&args[1], &args[2], arg(args, 3, "count")?),
        // lat-server LIB SIZE ROUNDS
        "lat-server" => lat_server(&args[1], arg(args, 2, "size")?, arg(args, 3, "rounds")?),
        // lat-client LIB ENDPOINT SIZE ROUNDS
        "lat-client" => lat_client(
            &args[1],
            &args[2],
            arg(args, 3, "size")?,
            arg(args, 4, "rounds")?,
        ),
        // core-thr-recv CURVE SIZE COUNT / core-thr-send ENDPOINT KEY SIZE COUNT
        "core-thr-recv" => core_drv::thr_recv(
            arg(args, 1, "curve")?,
            arg(args, 2, "size")?,
            arg(args, 3, "count")?,
        ),
        "core-thr-send" => core_drv::thr_send(
            &args[1],
            &args[2],
            arg(args, 3, "size")?,
            arg(args, 4, "count")?,
        ),
        // core-hs-server CURVE COUNT / core-hs-client ENDPOINT KEY COUNT
        "core-hs-server" => core_drv::hs_server(arg(args, 1, "curve")?, arg(args, 2, "count")?),
        "core-hs-client" => core_drv::hs_client(&args[1], &args[2], arg(args, 3, "count")?),
        _ => Err(format!("unknown child role {role:?}").into()),
    }
}

// ------------------------------------------------------------------------- throughput

/// PULL: binds, announces, receives `count` messages of `size` bytes. Like libzmq's
/// `local_thr`, the clock starts at the first message; unlike it, the rate is computed over
/// the `count - 1` messages that came after (the parent does that).
fn thr_recv(lib: Lib, size: usize, count: u64, curve: bool) -> Res {
    match lib {
        Lib::Zmtp => {
            let ctx = std_context()?;
            let s = ctx.socket(SocketType::Pull)?;
            let key = std_curve_server(&s, curve)?;
            let ep = s.bind("tcp://127.0.0.1:0")?;
            announce(&ep, &key);
            // One buffer for every message, as the libzmq loop below reuses its
            // `zmq_msg_t` (`ZMTP_BENCH_RECV_VEC=1`: a new `Vec` per message, `recv()`).
            let mut m = Vec::new();
            check_len(s.recv_into(&mut m)?, size)?;
            let t = Instant::now();
            if std::env::var_os("ZMTP_BENCH_RECV_VEC").is_some() {
                for _ in 1..count {
                    check_len(s.recv()?.len(), size)?;
                }
            } else {
                for _ in 1..count {
                    check_len(s.recv_into(&mut m)?, size)?;
                }
            }
            result(&[t.elapsed().as_nanos()]);
        }
        Lib::Libzmq => {
            if curve {
                return Err("the zmq crate's libzmq has no CURVE".into());
            }
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::PULL)?;
            s.bind("tcp://127.0.0.1:*")?;
            let ep = s.get_last_endpoint()?.map_err(|_| "endpoint not UTF-8")?;
            announce(&ep, "-");
            let mut m = zmq::Message::new();
            s.recv(&mut m, 0)?;
            check_len(m.len(), size)?;
            let t = Instant::now();
            for _ in 1..count {
                s.recv(&mut m, 0)?;
                check_len(m.len(), size)?;
            }
            result(&[t.elapsed().as_nanos()]);
        }
    }
    Ok(())
}

/// PUSH: connects and sends `count` messages of `size` bytes, then closes and waits until
/// they are out (zmtp-std: linger; libzmq: linger -1, the default).
fn thr_send(lib: Lib, endpoint: &str, size: usize, count: u64, key: &str) -> Res {
    let body = vec![0u8; size];
    match lib {
        Lib::Zmtp => {
            let ctx = std_context()?;
            let s = ctx.socket(SocketType::Push)?;
            std_curve_client(&s, key)?;
            s.connect(endpoint)?;
            for _ in 0..count {
                s.send(&body)?;
            }
            drop(s);
            drop(ctx); // waits for the lingering socket
        }
        Lib::Libzmq => {
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::PUSH)?;
            s.connect(endpoint)?;
            for _ in 0..count {
                // As zmtp-std's `send(&[u8])`: a message is allocated and the body copied in.
                s.send(&body[..], 0)?;
            }
            drop(s);
            drop(ctx);
        }
    }
    Ok(())
}

/// zmtp-std CURVE server setup (any client key is let in); returns the public key to
/// announce, or "-" without CURVE.
fn std_curve_server(s: &zmtp_std::Socket, curve: bool) -> Res<String> {
    if !curve {
        return Ok("-".into());
    }
    let (public, secret) = zmtp_std::curve_keypair()?;
    s.set_curve_server(true)?;
    s.set_curve_secretkey(&*secret)?;
    Ok(public)
}

/// zmtp-std CURVE client setup with a fresh key pair, unless `key` is "-".
fn std_curve_client(s: &zmtp_std::Socket, key: &str) -> Res {
    if key == "-" {
        return Ok(());
    }
    let (_, secret) = zmtp_std::curve_keypair()?;
    s.set_curve_serverkey(key)?;
    s.set_curve_secretkey(&*secret)?;
    Ok(())
}

/// zmtp-std handshake-rate server: a ROUTER echoing `count` one-frame messages.
fn std_hs_server(curve: bool, count: u64) -> Res {
    let ctx = std_context()?;
    let s = ctx.socket(SocketType::Router)?;
    let key = std_curve_server(&s, curve)?;
    announce(&s.bind("tcp://127.0.0.1:0")?, &key);
    for _ in 0..count {
        let m = s.recv_multipart()?;
        s.send_multipart(m)?;
    }
    Ok(())
}

/// zmtp-std handshake-rate client: `count` times a new DEALER (one key pair for all, as
/// the C tool), connect, one round trip, close without linger.
fn std_hs_client(endpoint: &str, key: &str, count: u64) -> Res {
    let ctx = std_context()?;
    let keys = if key == "-" {
        None
    } else {
        Some(zmtp_std::curve_keypair()?)
    };
    let t = Instant::now();
    for _ in 0..count {
        let s = ctx.socket(SocketType::Dealer)?;
        s.set_linger(Some(std::time::Duration::ZERO));
        if std::env::var_os("ZMTP_BENCH_MAX_PEERS_1").is_some() {
            s.set_max_peers(1)?;
        }
        if let Some((_, secret)) = &keys {
            s.set_curve_serverkey(key)?;
            s.set_curve_secretkey(&**secret)?;
        }
        s.connect(endpoint)?;
        s.send("x")?;
        check_len(s.recv()?.len(), 1)?;
    }
    result(&[t.elapsed().as_nanos()]);
    Ok(())
}

// ------------------------------------------------------------------------- latency

/// Warm-up round trips before timing.
const WARMUP: u32 = 1000;

/// REP (or a raw TCP echo for `tcp`): echoes `WARMUP + rounds` requests.
fn lat_server(lib: &str, size: usize, rounds: u32) -> Res {
    let n = WARMUP + rounds;
    match lib {
        "zmtp" => {
            let ctx = std_context()?;
            let s = ctx.socket(SocketType::Rep)?;
            announce(&s.bind("tcp://127.0.0.1:0")?, "-");
            // One buffer, as libzmq's loop below reuses its message.
            let mut m = Vec::new();
            for _ in 0..n {
                check_len(s.recv_into(&mut m)?, size)?;
                s.send(&m)?;
            }
            drop(s);
            drop(ctx);
        }
        "libzmq" => {
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::REP)?;
            s.bind("tcp://127.0.0.1:*")?;
            announce(&s.get_last_endpoint()?.map_err(|_| "endpoint")?, "-");
            let mut m = zmq::Message::new();
            for _ in 0..n {
                s.recv(&mut m, 0)?;
                check_len(m.len(), size)?;
                s.send(&m[..], 0)?;
            }
        }
        "tcp" => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            announce(&l.local_addr()?.to_string(), "-");
            let (mut c, _) = l.accept()?;
            c.set_nodelay(true)?;
            let mut buf = vec![0u8; size];
            for _ in 0..n {
                c.read_exact(&mut buf)?;
                c.write_all(&buf)?;
            }
        }
        _ => return Err(format!("unknown library {lib:?}").into()),
    }
    Ok(())
}

/// REQ (or a raw TCP client): `WARMUP` untimed round trips, then `rounds` timed one by one;
/// reports p50, p99 and the mean in nanoseconds.
fn lat_client(lib: &str, endpoint: &str, size: usize, rounds: u32) -> Res {
    let body = vec![1u8; size];
    let mut times = Vec::with_capacity(rounds as usize);
    match lib {
        "zmtp" => {
            let ctx = std_context()?;
            let s = ctx.socket(SocketType::Req)?;
            s.connect(endpoint)?;
            let mut m = Vec::new();
            for i in 0..WARMUP + rounds {
                let t = Instant::now();
                s.send(&body)?;
                let n = s.recv_into(&mut m)?;
                if i >= WARMUP {
                    times.push(t.elapsed().as_nanos());
                }
                check_len(n, size)?;
            }
        }
        "libzmq" => {
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::REQ)?;
            s.connect(endpoint)?;
            let mut m = zmq::Message::new();
            for i in 0..WARMUP + rounds {
                let t = Instant::now();
                s.send(&body[..], 0)?;
                s.recv(&mut m, 0)?;
                if i >= WARMUP {
                    times.push(t.elapsed().as_nanos());
                }
                check_len(m.len(), size)?;
            }
        }
        "tcp" => {
            let mut c = TcpStream::connect(endpoint)?;
            c.set_nodelay(true)?;
            let mut buf = vec![0u8; size];
            for i in 0..WARMUP + rounds {
                let t = Instant::now();
                c.write_all(&body)?;
                c.read_exact(&mut buf)?;
                if i >= WARMUP {
                    times.push(t.elapsed().as_nanos());
                }
            }
        }
        _ => return Err(format!("unknown library {lib:?}").into()),
    }
    times.sort_unstable();
    let pct = |p: usize| times.get(times.len() * p / 100).copied().unwrap_or(0);
    let mean = times.iter().sum::<u128>() / times.len().max(1) as u128;
    result(&[pct(50), pct(99), mean]);
    Ok(())
}
