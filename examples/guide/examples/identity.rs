//! Identities: what a ROUTER sees of an anonymous and of a named REQ. The ZeroMQ Guide,
//! chapter 3, "Identities and Addresses" (`identity`).
//!
//! `cargo run -p zmtp-guide --example identity`

use zmtp_guide::{identity, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let ctx = Context::new()?;
    let sink = ctx.socket(SocketType::Router)?;
    let endpoint = sink.bind(ANY_LOCAL)?;
    let seen = identity::identity(&ctx, &sink, &endpoint)?;
    print!("{}", identity::dump(&seen.anonymous));
    print!("{}", identity::dump(&seen.named));
    Ok(())
}
