//! The ZeroMQ Guide's patterns (chapters 1-4) over [`zmtp_std`], as library functions that
//! both the runnable examples (`cargo run -p zmtp-guide --example NAME`) and the tests call.
//!
//! Each module is one pattern of the Guide (<https://zguide.zeromq.org/>); its pieces
//! (server, client, broker, worker) are plain functions over [`zmtp_std::Socket`]s that
//! return what they saw, so a test can run them on threads of one process and check the
//! outcome. The examples print it.
//!
//! Where the Guide's programs run forever or for a fixed wall-clock time, these take a
//! count or a [`Stop`] flag; where the Guide sleeps to simulate work, the time is a
//! parameter (the examples keep the Guide's pauses, the tests shorten them).
//!
//! | Guide chapter, section (programs) | Module | Example | Tests (`tests/`) |
//! |---|---|---|---|
//! | 1, Ask and Ye Shall Receive (`hwserver`, `hwclient`) | [`hello`] | `hello` | `chapter1.rs` |
//! | 1, Getting the Message Out (`wuserver`, `wuclient`) | [`weather`] | `weather` | `chapter1.rs` |
//! | 1, Divide and Conquer (`taskvent`, `taskwork`, `tasksink`) | [`pipeline`] | `pipeline` | `chapter1.rs` |
//! | 2, Handling Errors and ETERM (`taskwork2`, `tasksink2`) | [`pipeline`] | `pipeline2` | `chapter2.rs` |
//! | 2, Shared Queue (`rrclient`, `rrworker`, `rrbroker`) | [`rrbroker`] | `rrbroker` | `chapter2.rs` |
//! | 2, ZeroMQ's Built-In Proxy (`msgqueue`) | [`proxy`], [`rrbroker`] | `msgqueue` | `chapter2.rs` |
//! | 3, Identities and Addresses (`identity`) | [`identity`] | `identity` | `chapter3.rs` |
//! | 3, ROUTER Broker and REQ Workers (`rtreq`) | [`rtreq`] | `rtreq` | `chapter3.rs` |
//! | 3, ROUTER Broker and DEALER Workers (`rtdealer`) | [`rtdealer`] | `rtdealer` | `chapter3.rs` |
//! | 3, A Load Balancing Message Broker (`lbbroker`) | [`lbbroker`] | `lbbroker` | `lbbroker.rs` |
//! | 3, The Asynchronous Client/Server Pattern (`asyncsrv`) | [`asyncsrv`] | `asyncsrv` | `asyncsrv.rs` |
//! | 4, Lazy Pirate (`lpclient`, `lpserver`) | [`lazy_pirate`] | `lpclient` | `lazy_pirate.rs` |
//! | 4, Simple and Paranoid Pirate (`spqueue`, `ppqueue`, `ppworker`) | [`pirate`] | `ppqueue` | `pirates.rs` |
//! | 4, Majordomo (`mdbroker`, `mdwrkapi`, `mdcliapi2`) | [`mdp`] | `majordomo` | `majordomo.rs` |
//!
//! ```
//! use zmtp_guide::hello;
//! use zmtp_std::{Context, SocketType};
//!
//! # fn main() -> Result<(), zmtp_std::Error> {
//! let ctx = Context::new()?;
//! let server = ctx.socket(SocketType::Rep)?;
//! let endpoint = server.bind("tcp://127.0.0.1:0")?;
//! let t = std::thread::spawn(move || hello::hwserver(&server, 2, std::time::Duration::ZERO));
//! let client = ctx.socket(SocketType::Req)?;
//! client.connect(&endpoint)?;
//! assert_eq!(hello::hwclient(&client, 2)?, [b"World".to_vec(), b"World".to_vec()]);
//! assert_eq!(t.join().unwrap()?.len(), 2);
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod asyncsrv;
pub mod hello;
pub mod identity;
pub mod lazy_pirate;
pub mod lbbroker;
pub mod mdp;
pub mod pipeline;
pub mod pirate;
pub mod proxy;
pub mod rrbroker;
pub mod rtdealer;
pub mod rtreq;
pub mod weather;

/// A multipart message: its frames.
pub type Msg = Vec<Vec<u8>>;

/// An endpoint on the loopback interface whose port the system picks when bound.
pub const ANY_LOCAL: &str = "tcp://127.0.0.1:0";

/// A shared "stop now" flag for the pieces that the Guide runs forever.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not yet raised.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Raises the flag: every loop watching it ends at its next check.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is raised.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How often loops that wait for messages look at their [`Stop`] flag.
pub const STOP_CHECK: Duration = Duration::from_millis(20);

/// A small deterministic random number generator (xorshift64*), so that runs are
/// repeatable without a dependency. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A number in `lo..=hi`.
    pub fn within(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }
}

/// Waits until `cond` holds, looking every millisecond, for at most `timeout`; whether it
/// held. For conditions no socket call can wait on (a peer count, a thread's progress).
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Text of a frame, for printing (bytes that are not UTF-8 as hex).
pub fn text(frame: &[u8]) -> String {
    match std::str::from_utf8(frame) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => frame.iter().map(|b| format!("{b:02X}")).collect(),
    }
}
