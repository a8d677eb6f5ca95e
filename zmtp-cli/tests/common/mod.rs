//! What `cli.rs` and `security.rs` share: the `zmtp` binary run as a child process with its
//! output read line by line, and libzmq sockets with deadlines.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Shared with zmtp-std's tests.
#[path = "../../../zmtp-std/tests/common/pyzmq.rs"]
pub mod pyzmq;

pub const ZMTP: &str = env!("CARGO_BIN_EXE_zmtp");
/// Longest any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// The environment variables the tool reads secrets from: removed from every run, so a
/// developer's own settings cannot change a test.
const SECRET_VARS: [&str; 2] = ["ZMTP_CURVE_SECRETKEY", "ZMTP_PLAIN_PASSWORD"];

/// The lines of `r`, read on a thread.
pub fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running process, its stdout and stderr read line by line; killed when dropped.
pub struct Proc {
    pub what: &'static str,
    pub child: Child,
    pub out: Receiver<String>,
    pub err: Receiver<String>,
    /// Stdout lines read by [`out_line`](Self::out_line) (kept for [`finish`](Self::finish)).
    out_seen: Vec<String>,
    /// Every stderr line read so far.
    err_seen: Vec<String>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr piped (stdin empty).
    pub fn start(what: &'static str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {what}: {e}"));
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Proc {
            what,
            child,
            out,
            err,
            out_seen: Vec::new(),
            err_seen: Vec::new(),
        }
    }

    /// The endpoint of the next `bound ` line on stderr (which must be the next line), a
    /// tcp:// one on 127.0.0.1 with the port actually bound.
    pub fn bound(&mut self) -> String {
        let ep = self.bound_any();
        assert!(ep.starts_with("tcp://127.0.0.1:"), "{ep}");
        assert!(!ep.ends_with(":0"), "the port actually bound: {ep}");
        ep
    }

    /// The endpoint of the next `bound ` line on stderr (which must be the next line).
    pub fn bound_any(&mut self) -> String {
        let line = self
            .err
            .recv_timeout(STEP)
            .unwrap_or_else(|e| panic!("no bound line from {}: {e:?}", self.what));
        self.err_seen.push(line.clone());
        let ep = line
            .strip_prefix("bound ")
            .unwrap_or_else(|| panic!("first stderr line is not `bound EP`: {line:?}"));
        ep.to_owned()
    }

    /// `tcp://127.0.0.1:PORT` from a pyzmq peer's `PORT` line.
    pub fn port(&mut self) -> String {
        let line = self.out_line("PORT ");
        format!("tcp://127.0.0.1:{}", &line[5..])
    }

    /// The next stdout line (consumed: [`finish`](Self::finish) does not return it).
    pub fn line(&self) -> String {
        self.out
            .recv_timeout(STEP)
            .unwrap_or_else(|e| panic!("no stdout line from {}: {e:?}", self.what))
    }

    /// The next stdout line, if one comes within `d`.
    pub fn try_line(&self, d: Duration) -> Option<String> {
        match self.out.recv_timeout(d) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("{} closed stdout", self.what),
        }
    }

    /// The next stderr line starting with `prefix` (earlier ones are kept).
    pub fn err_line(&mut self, prefix: &str) -> String {
        next_line(self.what, &self.err, &mut self.err_seen, prefix)
    }

    /// The next stdout line starting with `prefix` (earlier ones are kept); a `FAIL` line
    /// from a peer fails.
    pub fn out_line(&mut self, prefix: &str) -> String {
        next_line(self.what, &self.out, &mut self.out_seen, prefix)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit; returns the status, stdout (the lines kept by
    /// [`out_line`](Self::out_line), then the rest) and all of stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let end = Instant::now() + STEP;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "{} did not exit", self.what);
            thread::sleep(Duration::from_millis(5)); // polling the exit, not synchronising
        };
        let mut out = std::mem::take(&mut self.out_seen);
        out.extend(self.out.iter());
        let mut err = std::mem::take(&mut self.err_seen);
        err.extend(self.err.iter());
        (status, out, err.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn next_line(what: &str, rx: &Receiver<String>, seen: &mut Vec<String>, prefix: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                assert!(!line.starts_with("FAIL"), "{what}: {line}; seen {seen:?}");
                if line.starts_with(prefix) {
                    return line;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no {prefix:?} line from {what}; seen {seen:?}")
            }
            Err(e) => panic!("{what} closed ({e}) before {prefix:?}; seen {seen:?}"),
        }
    }
}

/// `zmtp ARGS...` running, with `env` added to its environment.
pub fn zmtp(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(ZMTP);
    cmd.args(args);
    for k in SECRET_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::start("zmtp", cmd)
}

/// `zmtp ARGS...` running.
pub fn spawn(args: &[&str]) -> Proc {
    zmtp(args, &[])
}

/// Runs `zmtp ARGS...` to the end with `stdin`: (exit code, stdout, stderr).
pub fn run(args: &[&str], stdin: impl AsRef<[u8]>) -> (i32, String, String) {
    let mut cmd = Command::new(ZMTP);
    cmd.args(args);
    for k in SECRET_VARS {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zmtp");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.as_ref().to_vec();
    // Written on a thread: a large input must not block while the tool's output fills up.
    let writer = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A libzmq socket that gives up after [`STEP`] and lingers a second on close.
pub fn zsock(ctx: &zmq::Context, ty: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(ty).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s.set_linger(1000).unwrap();
    s
}

/// Binds a libzmq socket to a free port on 127.0.0.1; its endpoint.
pub fn zbind(s: &zmq::Socket) -> String {
    s.bind("tcp://127.0.0.1:*").unwrap();
    s.get_last_endpoint().unwrap().unwrap()
}
