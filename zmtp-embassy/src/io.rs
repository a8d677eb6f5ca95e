//! The socket over any `embedded-io-async` byte stream: you open the connections (a serial
//! link, a TLS stream, a TCP socket of another stack) and hand each to
//! [`Driver::run_connection`], which runs the ZMTP session over it until it ends. Reconnecting
//! is yours (wait [`Driver::backoff`] between attempts).
//!
//! Created by [`crate::new_io`].

use core::cell::RefCell;
use core::future::pending;

use embassy_futures::select::{select3, Either3};
use embassy_time::{Instant as EInstant, Timer};
use embedded_io_async::{Read, Write};
use zmtp_core::socket::kind::{self, Kind};
use zmtp_core::{CloseReason, Role};

use crate::net::{changed, now, Shared};

type Scratch<'d> = Option<(&'d mut [u8], &'d mut [u8])>;

/// Runs connections for a socket made by [`crate::new_io`]. `PEERS` connections at once.
pub struct Driver<'d, const PEERS: usize, K: Kind = kind::Any> {
    shared: &'d Shared<'d, K>,
    /// Per link: input and output scratch buffers, taken while a connection runs.
    scratch: RefCell<[Scratch<'d>; PEERS]>,
}

/// Why [`Driver::run_connection`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Ended {
    /// The session ended for this reason (the transport may be closed now).
    Closed(CloseReason),
    /// Every peer slot is busy: close this connection.
    NoFreeSlot,
    /// The session could not start (the buffers cannot hold the handshake, CURVE without
    /// an RNG).
    Config(crate::Error),
}

impl<'d, const PEERS: usize, K: Kind> Driver<'d, PEERS, K> {
    pub(crate) fn new(shared: &'d Shared<'d, K>, scratch: [Scratch<'d>; PEERS]) -> Self {
        Driver {
            shared,
            scratch: RefCell::new(scratch),
        }
    }

    /// CURVE: the RNG each new connection draws its transient key and nonces from.
    #[cfg(feature = "curve")]
    pub fn set_rng(&self, rng: &'d mut (dyn rand_core::CryptoRng + Send)) {
        self.shared.engine.borrow_mut().rng = Some(rng);
    }

    /// The delay before reconnecting after a failed or lost connection: the socket's
    /// `reconnect_ivl`, doubling up to `reconnect_ivl_max` while `failures` grows.
    pub fn backoff(&self, failures: u32) -> core::time::Duration {
        let e = self.shared.engine.borrow();
        let o = e.options();
        o.reconnect_ivl
            .saturating_mul(1u32 << failures.min(16))
            .min(o.reconnect_ivl_max.max(o.reconnect_ivl))
    }

    /// Runs a ZMTP session over `conn` (already connected; `role`: who opened it) until the
    /// session ends: moves bytes both ways, keeps heartbeats and timeouts. Several
    /// connections may run at once (up to `PEERS`), from one task (`join`) or several.
    ///
    /// `conn`'s `read` must be cancel-safe (embassy-net's `TcpSocket` is): while it waits,
    /// the driver also waits for the application's messages and drops the read future to
    /// write them. Writes are awaited whole before reading again.
    ///
    /// Cancel-safe in that dropping it ends the session (the peer slot is freed); bytes
    /// already read into the session are lost with it.
    pub async fn run_connection<T: Read + Write>(&self, conn: &mut T, role: Role) -> Ended {
        let taken = {
            let mut s = self.scratch.borrow_mut();
            s.iter_mut()
                .enumerate()
                .find_map(|(i, b)| b.take().map(|b| (i, b)))
        };
        let Some((i, (rx, tx))) = taken else {
            return Ended::NoFreeSlot;
        };
        // Give the scratch back however this ends (also when dropped).
        let mut guard = Return {
            driver: self,
            i,
            bufs: Some((rx, tx)),
        };
        let attached = self.shared.engine.borrow_mut().attach(i, role, now());
        if let Err(e) = attached {
            return match e {
                crate::Error::NoFreeSlot => Ended::NoFreeSlot,
                e => Ended::Config(e),
            };
        }
        self.shared.kick();
        let Some((rx, tx)) = guard.bufs.as_mut() else {
            return Ended::NoFreeSlot;
        };
        self.pump(i, conn, rx, tx).await
    }

    async fn pump<T: Read + Write>(
        &self,
        i: usize,
        conn: &mut T,
        rx: &mut [u8],
        tx: &mut [u8],
    ) -> Ended {
        let shared = self.shared;
        // Bytes read but not yet taken by the session (its queue was full).
        let (mut start, mut end) = (0usize, 0usize);
        loop {
            // Output first, whole.
            loop {
                let n = shared.engine.borrow_mut().output(i, tx);
                if n == 0 {
                    break;
                }
                shared.wake_app();
                if conn.write_all(tx.get(..n).unwrap_or(&[])).await.is_err() {
                    shared.engine.borrow_mut().eof(i);
                }
                let _ = conn.flush().await;
            }
            // Input held back by back-pressure.
            if start < end {
                let taken = {
                    let mut e = shared.engine.borrow_mut();
                    e.input(i, rx.get(start..end).unwrap_or(&[]), now())
                };
                start += taken;
                if taken > 0 {
                    shared.wake_app();
                    continue;
                }
            }
            if shared.engine.borrow().finished(i) {
                let reason = shared.engine.borrow().close_reason(i);
                shared.kick();
                return Ended::Closed(reason);
            }
            let seen = shared.wakers.borrow().epoch;
            let deadline = shared.engine.borrow().poll_timeout();
            let read = async {
                if start < end {
                    pending().await
                } else {
                    conn.read(rx).await
                }
            };
            let timer = async {
                match deadline {
                    Some(d) => Timer::at(EInstant::from_micros(d.as_micros())).await,
                    None => pending().await,
                }
            };
            match select3(read, changed(shared, seen), timer).await {
                Either3::First(Ok(0)) | Either3::First(Err(_)) => {
                    shared.engine.borrow_mut().eof(i);
                    shared.kick();
                }
                Either3::First(Ok(n)) => {
                    start = 0;
                    end = n;
                }
                Either3::Second(()) => {}
                Either3::Third(()) => {
                    shared.engine.borrow_mut().handle_timeout(now());
                    shared.kick();
                }
            }
        }
    }
}

/// Frees the link and its scratch when a connection's future ends or is dropped.
struct Return<'a, 'd, const PEERS: usize, K: Kind> {
    driver: &'a Driver<'d, PEERS, K>,
    i: usize,
    bufs: Scratch<'d>,
}

impl<const PEERS: usize, K: Kind> Drop for Return<'_, '_, PEERS, K> {
    fn drop(&mut self) {
        let d = self.driver;
        {
            let mut e = d.shared.engine.borrow_mut();
            e.eof(self.i);
            let _ = e.detach(self.i);
        }
        d.shared.kick();
        if let Some(slot) = d.scratch.borrow_mut().get_mut(self.i) {
            *slot = self.bufs.take();
        }
    }
}
