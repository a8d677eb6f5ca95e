//! Request-reply broker (Guide chapter 2, "Shared Queue (DEALER and ROUTER sockets)":
//! `rrclient`, `rrworker`, `rrbroker`; and "ZeroMQ's Built-In Proxy": `msgqueue`).
//!
//! REQ clients connect to the broker's ROUTER frontend, REP workers to its DEALER backend.
//! The broker polls both and passes each message across unchanged: the ROUTER adds the
//! client's routing id on the way in, the DEALER fair-queues replies back, and the
//! ROUTER routes them by that id. [`msgqueue`] is the same broker as one call of
//! [`proxy`](crate::proxy::proxy()).

use std::time::Duration;

use zmtp_std::{poll, Error, PollEvents, Result, Socket};

use crate::{Stop, STOP_CHECK};

/// The broker (`rrbroker`): forwards between `frontend` (ROUTER) and `backend` (DEALER)
/// until `stop`. Returns how many requests it forwarded.
pub fn rrbroker(frontend: &Socket, backend: &Socket, stop: &Stop) -> Result<u64> {
    let mut requests = 0;
    while !stop.is_stopped() {
        let mut items = [
            frontend.as_poll_item(PollEvents::IN),
            backend.as_poll_item(PollEvents::IN),
        ];
        poll(&mut items, Some(STOP_CHECK))?;
        if items[0].is_readable() {
            let msg = frontend.try_recv_multipart()?;
            backend.send_multipart(msg)?;
            requests += 1;
        }
        if items[1].is_readable() {
            let msg = backend.try_recv_multipart()?;
            frontend.send_multipart(msg)?;
        }
    }
    Ok(requests)
}

/// `msgqueue`: the same broker as the library's proxy, `frontend` to `backend`, until a
/// `TERMINATE` on `control`.
pub fn msgqueue(
    frontend: &Socket,
    backend: &Socket,
    control: &Socket,
) -> Result<crate::proxy::ProxyStats> {
    crate::proxy::proxy_steerable(frontend, backend, None, Some(control))
}

/// A client (`rrclient`): sends "Hello" `requests` times on a REQ connected to the
/// frontend; returns the replies.
pub fn rrclient(req: &Socket, requests: usize) -> Result<Vec<Vec<u8>>> {
    (0..requests)
        .map(|_| {
            req.send("Hello")?;
            req.recv()
        })
        .collect()
}

/// A worker (`rrworker`): on a REP connected to the backend, answers each request with
/// `"World from NAME"` after `work`, until `stop`; returns how many it answered.
pub fn rrworker(rep: &Socket, name: &str, work: Duration, stop: &Stop) -> Result<usize> {
    let mut answered = 0;
    while !stop.is_stopped() {
        match rep.recv_timeout(STOP_CHECK) {
            Ok(_) => {}
            Err(Error::Timeout) => continue,
            Err(e) => return Err(e),
        }
        if !work.is_zero() {
            std::thread::sleep(work);
        }
        rep.send(format!("World from {name}"))?;
        answered += 1;
    }
    Ok(answered)
}
