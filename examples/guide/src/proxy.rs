//! A `zmq_proxy` for zmtp-std sockets (Guide chapter 2, "ZeroMQ's Built-In Proxy":
//! `msgqueue`). zmtp-std has no proxy of its own yet; this one is written against its
//! public API and is a candidate for it.
//!
//! [`proxy`] shuttles messages between a frontend and a backend socket, both ways, and
//! copies each to an optional capture socket, as libzmq's `zmq_proxy` does.
//! [`proxy_steerable`] adds libzmq's control socket (`zmq_proxy_steerable`): `PAUSE`,
//! `RESUME`, `TERMINATE`, `STATISTICS`.

use std::time::Duration;

use zmtp_std::{poll, Error, PollEvents, Result, Socket, SocketType};

use crate::Msg;

/// Messages and bytes through a proxy, as libzmq's `STATISTICS` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Messages received from the frontend.
    pub frontend_in_msgs: u64,
    /// Bytes received from the frontend.
    pub frontend_in_bytes: u64,
    /// Messages sent to the frontend.
    pub frontend_out_msgs: u64,
    /// Bytes sent to the frontend.
    pub frontend_out_bytes: u64,
    /// Messages received from the backend.
    pub backend_in_msgs: u64,
    /// Bytes received from the backend.
    pub backend_in_bytes: u64,
    /// Messages sent to the backend.
    pub backend_out_msgs: u64,
    /// Bytes sent to the backend.
    pub backend_out_bytes: u64,
}

impl ProxyStats {
    /// The eight counters in libzmq's order, each a frame of 8 bytes in host order (what
    /// `zmq_proxy_steerable` answers to `STATISTICS`).
    pub fn to_frames(&self) -> Msg {
        [
            self.frontend_in_msgs,
            self.frontend_in_bytes,
            self.frontend_out_msgs,
            self.frontend_out_bytes,
            self.backend_in_msgs,
            self.backend_in_bytes,
            self.backend_out_msgs,
            self.backend_out_bytes,
        ]
        .iter()
        .map(|v| v.to_ne_bytes().to_vec())
        .collect()
    }
}

fn size(msg: &Msg) -> u64 {
    msg.iter().map(|f| f.len() as u64).sum()
}

/// Runs the proxy for ever (until a socket's context is gone: [`Error::Terminated`]), as
/// libzmq's `zmq_proxy(frontend, backend, capture)`.
pub fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<()> {
    proxy_steerable(frontend, backend, capture, None).map(|_| ())
}

/// Moves one message from `from` to `to` (and a copy to `capture`), counting.
fn forward(
    from: &Socket,
    to: &Socket,
    capture: Option<&Socket>,
    counts: (&mut u64, &mut u64, &mut u64, &mut u64),
) -> Result<()> {
    let msg = match from.try_recv_multipart() {
        Ok(m) => m,
        Err(Error::WouldBlock) => return Ok(()),
        Err(e) => return Err(e),
    };
    let bytes = size(&msg);
    *counts.0 += 1;
    *counts.1 += bytes;
    if let Some(c) = capture {
        c.send_multipart(&msg)?;
    }
    to.send_multipart(msg)?;
    *counts.2 += 1;
    *counts.3 += bytes;
    Ok(())
}

/// [`proxy`] with a control socket (`zmq_proxy_steerable`): a one-frame `PAUSE` stops
/// forwarding, `RESUME` resumes it, `TERMINATE` returns the statistics, `STATISTICS` is
/// answered with [`ProxyStats::to_frames`]. A REP control socket gets an answer to every
/// command (the command itself, or the statistics), so it can take the next.
pub fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: Option<&Socket>,
) -> Result<ProxyStats> {
    let mut st = ProxyStats::default();
    let mut paused = false;
    loop {
        let forwarding = if paused {
            PollEvents::empty()
        } else {
            PollEvents::IN
        };
        let (front_ready, back_ready, control_ready) = {
            let mut items = vec![
                frontend.as_poll_item(forwarding),
                backend.as_poll_item(forwarding),
            ];
            if let Some(c) = control {
                items.push(c.as_poll_item(PollEvents::IN));
            }
            poll(&mut items, None)?;
            (
                items[0].is_readable(),
                items[1].is_readable(),
                items.get(2).is_some_and(|i| i.is_readable()),
            )
        };
        if control_ready {
            if let Some(c) = control {
                let cmd = c.try_recv_multipart()?;
                let cmd = cmd.first().map(Vec::as_slice).unwrap_or_default();
                let reply_rep = c.socket_type() == SocketType::Rep;
                match cmd {
                    b"PAUSE" => paused = true,
                    b"RESUME" => paused = false,
                    b"TERMINATE" => {
                        if reply_rep {
                            c.send_timeout(cmd, Duration::from_secs(1))?;
                        }
                        return Ok(st);
                    }
                    b"STATISTICS" => {
                        c.send_multipart(st.to_frames())?;
                        continue;
                    }
                    _ => log_unknown(cmd),
                }
                if reply_rep {
                    c.send(cmd)?;
                }
            }
        }
        if front_ready {
            let counts = (
                &mut st.frontend_in_msgs,
                &mut st.frontend_in_bytes,
                &mut st.backend_out_msgs,
                &mut st.backend_out_bytes,
            );
            forward(frontend, backend, capture, counts)?;
        }
        if back_ready {
            let counts = (
                &mut st.backend_in_msgs,
                &mut st.backend_in_bytes,
                &mut st.frontend_out_msgs,
                &mut st.frontend_out_bytes,
            );
            forward(backend, frontend, capture, counts)?;
        }
    }
}

fn log_unknown(cmd: &[u8]) {
    eprintln!("proxy: unknown control command {}", crate::text(cmd));
}
