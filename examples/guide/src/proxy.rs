//! ZeroMQ's built-in proxy (Guide chapter 2, "ZeroMQ's Built-In Proxy": `msgqueue`):
//! zmtp-std's [`proxy`](proxy()) and [`proxy_steerable`], libzmq's `zmq_proxy` and
//! `zmq_proxy_steerable`.
//!
//! [`proxy`](proxy()) shuttles messages between a frontend and a backend socket, both ways, and
//! copies each to an optional capture socket. [`proxy_steerable`] adds a control socket:
//! `PAUSE`, `RESUME`, `TERMINATE`, `STATISTICS` (see [`zmtp_std::proxy`](mod@zmtp_std::proxy)
//! for the details, and how a REP control socket is answered).

pub use zmtp_std::{proxy, proxy_steerable, Proxy, ProxyStats};
