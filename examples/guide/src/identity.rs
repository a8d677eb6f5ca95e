//! Identities (Guide chapter 3, "Identities and Addresses": `identity`).
//!
//! A ROUTER sees each peer's routing id as the first frame of its messages: one it makes
//! up for an anonymous peer (libzmq: 5 bytes, a zero then a 32-bit counter), or the one
//! the peer chose with `set_routing_id`.

use zmtp_std::{Context, Result, Socket, SocketType};

use crate::Msg;

/// What the sink received from the anonymous and the named peer.
#[derive(Debug)]
pub struct Identities {
    /// The anonymous REQ's message: `[generated id, "", body]`.
    pub anonymous: Msg,
    /// The named REQ's message: `[b"PEER2", "", body]`.
    pub named: Msg,
}

/// Runs the Guide's `identity`: `sink` is a bound ROUTER at `endpoint`; an anonymous REQ
/// and one named "PEER2" connect to it and each send one message.
pub fn identity(ctx: &Context, sink: &Socket, endpoint: &str) -> Result<Identities> {
    let anonymous = ctx.socket(SocketType::Req)?;
    anonymous.connect(endpoint)?;
    anonymous.send("ROUTER uses a generated 5 byte identity")?;
    let first = sink.recv_multipart()?;

    let named = ctx.socket(SocketType::Req)?;
    named.set_routing_id(b"PEER2")?;
    named.connect(endpoint)?;
    named.send("ROUTER socket uses REQ's socket identity")?;
    let second = sink.recv_multipart()?;
    Ok(Identities {
        anonymous: first,
        named: second,
    })
}

/// Prints a message frame by frame, as the Guide's `s_dump` does.
pub fn dump(msg: &Msg) -> String {
    let mut out = String::from("----------------------------------------\n");
    for frame in msg {
        out.push_str(&format!("[{:03}] {}\n", frame.len(), crate::text(frame)));
    }
    out
}
