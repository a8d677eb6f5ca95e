//! zmtp-bench: zmtp-std against libzmq in the same run, sender and receiver in separate
//! processes (like libzmq's `local_thr`/`remote_thr` and `local_lat`/`remote_lat`).
//!
//! ```text
//! cargo run --release -p zmtp-bench -- all            # everything, 5 alternating runs
//! cargo run --release -p zmtp-bench -- thr --runs 3   # PUSH/PULL throughput only
//! cargo run --release -p zmtp-bench -- lat            # REQ/REP latency and raw TCP
//! cargo run --release -p zmtp-bench -- curve          # CURVE: zmtp-core vs system libzmq
//! cargo run --release -p zmtp-bench -- all --quick    # a tenth of the messages
//! ```
//!
//! The binary re-runs itself as the child processes (`zmtp-bench child ROLE ...`); the
//! CURVE comparison also compiles `c/libzmq_perf.c` against the system libzmq (which has
//! CURVE; the `zmq` crate's has not) with `cc`. Results are markdown tables on stdout;
//! progress goes to stderr.
//!
//! Both libraries' loops are written as their users would write a fast loop: libzmq's
//! receivers reuse one `zmq_msg_t`, and zmtp-std's receivers (PULL, REP, REQ) reuse one
//! buffer with `Socket::recv_into`, its counterpart (no allocation per message on either
//! side). `ZMTP_BENCH_RECV_VEC=1` makes the throughput receiver use `recv()` (a new `Vec`
//! per message) instead. Senders send from one buffer on both sides (`send(&[u8])`: a
//! copy into the library's queue). `ZMTP_BENCH_IO_SPIN_US` sets zmtp-std's
//! `Context::set_io_spin` (0: off).

mod core_drv;
mod roles;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roles::{Lib, Res};

/// Longest a single measurement (one pair of processes) may take.
const STALL_LIMIT: Duration = Duration::from_secs(300);

/// The C side of the CURVE comparison, compiled at run time.
const LIBZMQ_PERF_C: &str = include_str!("../c/libzmq_perf.c");

struct Opts {
    runs: usize,
    /// Divides message counts (for a quick look).
    scale: u64,
    /// Also run zmtp -> libzmq and libzmq -> zmtp.
    mixed: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: zmtp-bench [all|thr|lat|curve] [--runs N] [--quick] [--mixed]\n\
         \n  all    throughput, latency and CURVE (default)\
         \n  thr    PUSH/PULL throughput, zmtp-std vs libzmq (the zmq crate)\
         \n  lat    REQ/REP round trip, zmtp-std vs libzmq, and raw TCP\
         \n  curve  CURVE throughput and handshakes, zmtp-core vs the system libzmq\
         \n  --runs N   alternating runs per figure (default 5); medians are reported\
         \n  --quick    a tenth of the messages\
         \n  --smoke    one run with a thousandth of the messages (a check, not a measurement)\
         \n  --mixed    throughput also zmtp->libzmq and libzmq->zmtp"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        if let Err(e) = roles::run(&args[1..]) {
            eprintln!("zmtp-bench child {:?}: {e}", args.get(1));
            std::process::exit(1);
        }
        return;
    }
    let mut what = "all";
    let mut opts = Opts {
        runs: 5,
        scale: 1,
        mixed: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "all" | "thr" | "lat" | "curve" => what = a,
            "--runs" => {
                opts.runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage())
            }
            "--quick" => opts.scale = 10,
            // CI: every role once with a handful of messages (checks the harness works).
            "--smoke" => {
                opts.scale = 1000;
                opts.runs = 1;
                opts.mixed = true;
            }
            "--mixed" => opts.mixed = true,
            _ => usage(),
        }
    }
    print_header(&opts);
    let r = (|| -> Res {
        if matches!(what, "all" | "thr") {
            throughput(&opts)?;
        }
        if matches!(what, "all" | "lat") {
            latency(&opts)?;
        }
        if matches!(what, "all" | "curve") {
            curve(&opts)?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!("zmtp-bench: {e}");
        std::process::exit(1);
    }
}

fn print_header(opts: &Opts) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    println!(
        "zmtp-bench: {} runs per figure, {cpus} CPUs ({model}), load average at start: {}",
        opts.runs,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

// ------------------------------------------------------------------------- children

/// A child process of this binary (or of the compiled C tool) with its stdout read line
/// by line.
struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Kid {
    fn spawn(program: &Path, args: &[String]) -> Res<Kid> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Kid { child, out })
    }

    fn me(args: &[&str]) -> Res<Kid> {
        let mut a = vec!["child".to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        Kid::spawn(&std::env::current_exe()?, &a)
    }

    /// The fields of the next line starting with `tag`.
    fn expect(&mut self, tag: &str) -> Res<Vec<String>> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line)? == 0 {
                let st = self.child.wait()?;
                return Err(format!("child ended ({st}) before {tag}").into());
            }
            let mut f = line.split_whitespace();
            if f.next() == Some(tag) {
                return Ok(f.map(str::to_string).collect());
            }
        }
    }

    fn finish(mut self) -> Res {
        let st = self.child.wait()?;
        if !st.success() {
            return Err(format!("child failed: {st}").into());
        }
        Ok(())
    }
}

fn nums(f: &[String]) -> Res<Vec<f64>> {
    f.iter()
        .map(|s| s.parse::<f64>().map_err(|e| e.into()))
        .collect()
}

/// Runs a server child, then the client child that `client(endpoint, key)` starts with what
/// the server announced (`ENDPOINT endpoint key`); the `RESULT` numbers come from the server
/// or the client.
fn pair(
    server: Res<Kid>,
    client: impl FnOnce(&str, &str) -> Res<Kid>,
    result_from_server: bool,
) -> Res<Vec<f64>> {
    let mut s = server?;
    let ep = s.expect("ENDPOINT")?;
    let (e, k) = (
        ep.first().ok_or("no endpoint")?,
        ep.get(1).map_or("-", String::as_str),
    );
    let mut c = client(e, k)?;
    // A measurement that stalls (a lost message, a deadlock) is killed and reported, so the
    // run ends with an error instead of hanging.
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        let pids = [s.child.id(), c.child.id()];
        std::thread::spawn(move || {
            let deadline = Instant::now() + STALL_LIMIT;
            while !done.load(Ordering::Relaxed) {
                if Instant::now() > deadline {
                    eprintln!(
                        "\nzmtp-bench: no result after {STALL_LIMIT:?}: killing the children"
                    );
                    for pid in pids {
                        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let r = if result_from_server {
        s.expect("RESULT")
    } else {
        c.expect("RESULT")
    };
    let r = r.and_then(|r| {
        c.finish()?;
        s.finish()?;
        Ok(r)
    });
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    nums(&r.map_err(|e| format!("stalled or failed: {e}"))?)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn progress(s: &str) {
    eprint!("{s}");
    let _ = std::io::stderr().flush();
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.0}–{hi:.0}")
}

// ------------------------------------------------------------------------- throughput

fn throughput(opts: &Opts) -> Res {
    let sizes: [(usize, u64); 4] = [
        (1, 1_000_000),
        (64, 1_000_000),
        (1024, 1_000_000),
        (65536, 100_000),
    ];
    let mut pairs = vec![(Lib::Zmtp, Lib::Zmtp), (Lib::Libzmq, Lib::Libzmq)];
    if opts.mixed {
        pairs.push((Lib::Zmtp, Lib::Libzmq));
        pairs.push((Lib::Libzmq, Lib::Zmtp));
    }
    // [size][pair] -> msgs/s per run
    let mut res = vec![vec![Vec::new(); pairs.len()]; sizes.len()];
    for run in 0..opts.runs {
        progress(&format!("throughput run {}/{}:", run + 1, opts.runs));
        for (si, &(size, count)) in sizes.iter().enumerate() {
            let count = (count / opts.scale).max(2);
            for (pi, &(tx, rx)) in pairs.iter().enumerate() {
                let (sz, n) = (size.to_string(), count.to_string());
                let r = pair(
                    Kid::me(&["thr-recv", rx.name(), &sz, &n]),
                    |ep, _| Kid::me(&["thr-send", tx.name(), ep, &sz, &n]),
                    true,
                )?;
                let ns = r.first().copied().ok_or("no result")?;
                res[si][pi].push((count - 1) as f64 / (ns / 1e9));
                progress(".");
            }
        }
        progress("\n");
    }
    println!();
    println!(
        "### PUSH/PULL throughput, tcp loopback, separate processes (median of {} runs)",
        opts.runs
    );
    println!();
    print!("| size | messages |");
    for (tx, rx) in &pairs {
        print!(" {}→{} (k msg/s) |", tx.name(), rx.name());
    }
    println!(" zmtp MB/s | libzmq MB/s | zmtp / libzmq |");
    print!("|---|---:|");
    for _ in &pairs {
        print!("---:|");
    }
    println!("---:|---:|---:|");
    for (si, &(size, count)) in sizes.iter().enumerate() {
        let mut meds = Vec::new();
        print!("| {} | {} |", size_name(size), (count / opts.scale).max(2));
        for v in res[si].iter_mut() {
            let sp = spread(&v.iter().map(|x| x / 1e3).collect::<Vec<_>>());
            let m = median(v);
            meds.push(m);
            print!(" {:.0} ({sp}) |", m / 1e3);
        }
        let mbs = |m: f64| m * size as f64 / 1e6;
        println!(
            " {:.0} | {:.0} | {:.2} |",
            mbs(meds[0]),
            mbs(meds[1]),
            meds[0] / meds[1]
        );
    }
    println!();
    println!("(in parentheses: lowest–highest of the runs; MB/s = 10^6 bytes of message bodies per second)");
    Ok(())
}

// ------------------------------------------------------------------------- latency

fn latency(opts: &Opts) -> Res {
    let rounds = (20_000 / opts.scale).max(2).to_string();
    let libs = ["zmtp", "libzmq", "tcp"];
    let sizes = [1usize, 1024];
    // [size][lib] -> (p50s, p99s)
    let mut res = vec![vec![(Vec::new(), Vec::new()); libs.len()]; sizes.len()];
    for run in 0..opts.runs {
        progress(&format!("latency run {}/{}:", run + 1, opts.runs));
        for (si, size) in sizes.iter().enumerate() {
            let sz = size.to_string();
            for (li, lib) in libs.iter().enumerate() {
                let r = pair(
                    Kid::me(&["lat-server", lib, &sz, &rounds]),
                    |ep, _| Kid::me(&["lat-client", lib, ep, &sz, &rounds]),
                    false,
                )?;
                res[si][li].0.push(r[0] / 1e3);
                res[si][li].1.push(r[1] / 1e3);
                progress(".");
            }
        }
        progress("\n");
    }
    println!();
    println!(
        "### REQ/REP round trip, tcp loopback, separate processes ({rounds} timed round trips per run, median of {} runs)",
        opts.runs
    );
    println!();
    println!("| size | zmtp p50 | zmtp p99 | libzmq p50 | libzmq p99 | raw TCP p50 | raw TCP p99 | zmtp / libzmq p50 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (si, &size) in sizes.iter().enumerate() {
        let mut cells = Vec::new();
        let mut p50s = Vec::new();
        for (p50, p99) in res[si].iter_mut() {
            let a = median(p50);
            p50s.push(a);
            cells.push(format!("{a:.1} µs"));
            cells.push(format!("{:.1} µs", median(p99)));
        }
        println!(
            "| {} | {} | {:.2} |",
            size_name(size),
            cells.join(" | "),
            p50s[0] / p50s[1]
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------- CURVE

/// Compiles the C tool against the system libzmq; `None` (with the reason printed) when
/// that cannot be done.
fn build_c_tool() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("zmtp-bench-{}", std::process::id()));
    let src = dir.join("libzmq_perf.c");
    let bin = dir.join("libzmq_perf");
    let r = (|| -> Res {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&src, LIBZMQ_PERF_C)?;
        let st = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .arg("-lzmq")
            .status()?;
        if !st.success() {
            return Err(format!("cc failed: {st}").into());
        }
        let out = Command::new(&bin).output()?;
        let _ = out; // usage message: it runs
        Ok(())
    })();
    match r {
        Ok(()) => Some(bin),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            eprintln!("zmtp-bench: CI=true and the libzmq side of the CURVE comparison cannot be built: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            println!(
                "\nCURVE: skipped, cannot build the libzmq side ({e}); it needs a C compiler and \
                 the system libzmq with CURVE (Debian: apt-get install libzmq3-dev libsodium-dev)"
            );
            None
        }
    }
}

fn curve(opts: &Opts) -> Res {
    let Some(c) = build_c_tool() else {
        return Ok(());
    };
    let c = c.as_path();
    let sizes: [(usize, u64); 2] = [(64, 200_000), (1024, 200_000)];
    let hs: u64 = (200 / opts.scale).max(2);
    // Variants: (name, curve). Sides: zmtp-std, zmtp-core driver, system libzmq.
    let variants = [("NULL", "0"), ("CURVE", "1")];
    // [variant][size][side]
    let mut thr = vec![vec![[Vec::new(), Vec::new(), Vec::new()]; sizes.len()]; variants.len()];
    let mut hsr = vec![[Vec::new(), Vec::new(), Vec::new()]; variants.len()];
    let cs = |args: &[&str]| -> Res<Kid> {
        Kid::spawn(c, &args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    for run in 0..opts.runs {
        progress(&format!("CURVE run {}/{}:", run + 1, opts.runs));
        for (vi, &(_, on)) in variants.iter().enumerate() {
            for (si, &(size, count)) in sizes.iter().enumerate() {
                let count = (count / opts.scale).max(2);
                let (sz, n) = (size.to_string(), count.to_string());
                for (side, out) in thr[vi][si].iter_mut().enumerate() {
                    let r = if side == 0 {
                        pair(
                            Kid::me(&["thr-recv", "zmtp", &sz, &n, on]),
                            |ep, key| Kid::me(&["thr-send", "zmtp", ep, &sz, &n, key]),
                            true,
                        )?
                    } else if side == 1 {
                        pair(
                            Kid::me(&["core-thr-recv", on, &sz, &n]),
                            |ep, key| Kid::me(&["core-thr-send", ep, key, &sz, &n]),
                            true,
                        )?
                    } else {
                        pair(
                            cs(&["thr-recv", &sz, &n, on]),
                            |ep, key| cs(&["thr-send", ep, &sz, &n, key]),
                            true,
                        )?
                    };
                    out.push((count - 1) as f64 / (r[0] / 1e9));
                    progress(".");
                }
            }
            let n = hs.to_string();
            for (side, out) in hsr[vi].iter_mut().enumerate() {
                let r = if side == 0 {
                    pair(
                        Kid::me(&["std-hs-server", on, &n]),
                        |ep, key| Kid::me(&["std-hs-client", ep, key, &n]),
                        false,
                    )?
                } else if side == 1 {
                    pair(
                        Kid::me(&["core-hs-server", on, &n]),
                        |ep, key| Kid::me(&["core-hs-client", ep, key, &n]),
                        false,
                    )?
                } else {
                    pair(
                        cs(&["hs-server", &n, on]),
                        |ep, key| cs(&["hs-client", ep, &n, key]),
                        false,
                    )?
                };
                out.push(hs as f64 / (r[0] / 1e9));
                progress(".");
            }
        }
        progress("\n");
    }
    std::thread::sleep(Duration::from_millis(10));
    println!();
    println!(
        "### CURVE vs NULL: zmtp-std, zmtp-core (blocking driver), system libzmq (C); PUSH/PULL and handshakes (median of {} runs)",
        opts.runs
    );
    println!();
    println!("| security | figure | zmtp-std | zmtp-core | libzmq | zmtp-std / libzmq | zmtp-core / libzmq |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (vi, &(name, _)) in variants.iter().enumerate() {
        for (si, &(size, _)) in sizes.iter().enumerate() {
            let [z, a, b] = &mut thr[vi][si];
            let (mz, ma, mb) = (median(z), median(a), median(b));
            let cell = |m: f64| format!("{:.0} ({:.0} MB/s)", m / 1e3, m * size as f64 / 1e6);
            println!(
                "| {name} | {} PUSH/PULL (k msg/s) | {} | {} | {} | {:.2} | {:.2} |",
                size_name(size),
                cell(mz),
                cell(ma),
                cell(mb),
                mz / mb,
                ma / mb
            );
        }
        let [z, a, b] = &mut hsr[vi];
        let (mz, ma, mb) = (median(z), median(a), median(b));
        println!(
            "| {name} | connect + handshake + 1 round trip + close (conn/s) | {mz:.0} | {ma:.0} | {mb:.0} | {:.2} | {:.2} |",
            mz / mb,
            ma / mb
        );
    }
    if let Some(d) = c.parent() {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}
