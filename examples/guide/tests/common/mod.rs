//! What the Guide's tests share.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use zmtp_guide::ANY_LOCAL;
use zmtp_std::{Context, Socket, SocketType};

/// A broker's two sockets, of these types, bound to ports the system picks: (frontend,
/// backend, frontend endpoint, backend endpoint).
pub fn bound_pair(
    ctx: &Context,
    front: SocketType,
    back: SocketType,
) -> (Socket, Socket, String, String) {
    let frontend = ctx.socket(front).unwrap();
    let backend = ctx.socket(back).unwrap();
    let f = frontend.bind(ANY_LOCAL).unwrap();
    let b = backend.bind(ANY_LOCAL).unwrap();
    (frontend, backend, f, b)
}

/// Two bound ROUTERs, the load-balancing brokers' and the pirate queues' sockets.
pub fn router_pair(ctx: &Context) -> (Socket, Socket, String, String) {
    bound_pair(ctx, SocketType::Router, SocketType::Router)
}
