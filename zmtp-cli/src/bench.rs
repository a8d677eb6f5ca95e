//! `zmtp bench`: libzmq's perf tools (local_thr/remote_thr, local_lat/remote_lat), one side
//! per process, so either side can face libzmq's own tool or a pyzmq script.

use std::time::{Duration, Instant};

use zmtp_std::{Context, Socket, SocketType};

use crate::cli::{BenchArgs, BenchCommand, LatRole, ThrRole};
use crate::error::{CliError, Result};
use crate::output::announce_bound;
use crate::security;
use crate::sock::{apply_tuning, ensure_queue_room, wait_peer, wait_recv, wait_send};

fn socket(ctx: &Context, ty: SocketType, a: &BenchArgs) -> Result<Socket> {
    let s = ctx
        .socket(ty)
        .map_err(|e| CliError::socket(format!("making a {ty} socket"), e))?;
    apply_tuning(&s, &a.tuning)?;
    ensure_queue_room(&s, a.size)?;
    let (role, notes) = security::apply(ctx, &s, &a.security)?;
    if let Some(ep) = &a.bind {
        let bound = s
            .bind(ep)
            .map_err(|e| CliError::socket(format!("binding {ep}"), e))?;
        announce_bound(&bound);
    } else if let Some(ep) = &a.connect {
        s.connect(ep)
            .map_err(|e| CliError::socket(format!("connecting to {ep}"), e))?;
    }
    for n in notes {
        eprintln!("{n}");
    }
    security::watch(
        &s,
        role,
        false,
        usize::from(a.bind.is_some()),
        usize::from(a.connect.is_some()),
    );
    Ok(s)
}

fn check(msg: &[Vec<u8>], size: usize) -> Result {
    match msg {
        [one] if one.len() == size => Ok(()),
        _ => Err(CliError::failed(format!(
            "got a message of {} frames and {} bytes; expected one frame of --size {size}",
            msg.len(),
            msg.iter().map(Vec::len).sum::<usize>()
        ))),
    }
}

/// `zmtp bench`.
pub fn run(c: BenchCommand) -> Result {
    let ctx = Context::new().map_err(|e| CliError::failed(format!("starting: {e}")))?;
    let (ty, a) = match &c {
        BenchCommand::Thr {
            role: ThrRole::Recv,
            args,
        } => (SocketType::Pull, args),
        BenchCommand::Thr {
            role: ThrRole::Send,
            args,
        } => (SocketType::Push, args),
        BenchCommand::Lat {
            role: LatRole::Echo,
            args,
        } => (SocketType::Rep, args),
        BenchCommand::Lat {
            role: LatRole::Ping,
            args,
        } => (SocketType::Req, args),
    };
    if a.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    let s = socket(&ctx, ty, a)?;
    let r = match ty {
        SocketType::Pull => thr_recv(&s, a),
        SocketType::Push => thr_send(&s, a),
        SocketType::Rep => lat_echo(&s, a),
        _ => lat_ping(&s, a),
    };
    if r.is_err() {
        s.set_linger(Some(Duration::ZERO));
    }
    r
}

fn thr_recv(s: &Socket, a: &BenchArgs) -> Result {
    // As local_thr: the clock starts when the first message is in.
    let first = wait_recv(s, a.timeout, "message")?;
    check(&first, a.size)?;
    let start = Instant::now();
    for _ in 1..a.count {
        check(&wait_recv(s, a.timeout, "message")?, a.size)?;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let rate = a.count as f64 / secs;
    let bytes = rate * a.size as f64;
    println!("message size: {} [B]", a.size);
    println!("message count: {}", a.count);
    println!("mean throughput: {rate:.0} [msg/s]");
    println!("mean throughput: {:.3} [MB/s]", bytes / 1e6);
    println!("mean throughput: {:.3} [Mb/s]", bytes * 8.0 / 1e6);
    Ok(())
}

fn thr_send(s: &Socket, a: &BenchArgs) -> Result {
    wait_peer(s, a.timeout)?;
    let msg = vec![vec![0u8; a.size]];
    let start = Instant::now();
    for _ in 0..a.count {
        wait_send(s, &msg, a.timeout)?;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "queued {} messages of {} B in {secs:.3} s ({:.0} msg/s); delivering the rest",
        a.count,
        a.size,
        a.count as f64 / secs
    );
    Ok(())
}

fn lat_echo(s: &Socket, a: &BenchArgs) -> Result {
    for _ in 0..a.count {
        let msg = wait_recv(s, a.timeout, "request")?;
        check(&msg, a.size)?;
        wait_send(s, &msg, a.timeout)?;
    }
    Ok(())
}

fn lat_ping(s: &Socket, a: &BenchArgs) -> Result {
    wait_peer(s, a.timeout)?;
    let msg = vec![vec![0u8; a.size]];
    let mut rtts = Vec::with_capacity(usize::try_from(a.count).unwrap_or(0));
    for _ in 0..a.count {
        let t = Instant::now();
        wait_send(s, &msg, a.timeout)?;
        let reply = wait_recv(s, a.timeout, "reply")?;
        rtts.push(t.elapsed());
        check(&reply, a.size)?;
    }
    rtts.sort_unstable();
    // One way: round trip / 2, as remote_lat reports.
    let us = |d: Duration| d.as_secs_f64() * 1e6 / 2.0;
    let pct = |p: f64| {
        let i = ((rtts.len() as f64 * p).ceil() as usize).clamp(1, rtts.len()) - 1;
        us(rtts[i])
    };
    let mean = us(rtts.iter().sum::<Duration>()) / rtts.len() as f64;
    println!("message size: {} [B]", a.size);
    println!("roundtrip count: {}", a.count);
    println!("latency p50: {:.1} [us]", pct(0.50));
    println!("latency p99: {:.1} [us]", pct(0.99));
    println!("average latency: {mean:.1} [us]");
    println!("(one-way latency: round trip / 2, as libzmq's remote_lat reports it)");
    Ok(())
}
