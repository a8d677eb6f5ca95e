//! `zmtp proxy`: zmq_proxy (zmtp-std's [`Proxy`]). Messages from the frontend go to the
//! backend and the other way; an optional capture socket gets a copy of each (a copy it has
//! no room for is dropped). With XSUB/XPUB, subscriptions (messages
//! `\x01topic`, `\x00topic` received by the XPUB) travel to the XSUB like any message.

use zmtp_std::{Context, Proxy, Socket, SocketType};

use crate::cli::{parse_side, ProxyArgs, Tuning};
use crate::error::{CliError, Result};
use crate::interrupted;
use crate::output::announce_bound;
use crate::sock::{apply_tuning, SLICE};

fn can_recv(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Push | SocketType::Pub)
}

fn can_send(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Pull | SocketType::Sub)
}

fn side(ctx: &Context, spec: &str, name: &str, tuning: &Tuning) -> Result<Socket> {
    let (ty, ep, bind) = parse_side(spec).map_err(|e| CliError::usage(format!("--{name} {e}")))?;
    let s = ctx
        .socket(ty)
        .map_err(|e| CliError::socket(format!("making the {name} socket"), e))?;
    apply_tuning(&s, tuning)?;
    if ty == SocketType::Sub {
        s.subscribe(b"")
            .map_err(|e| CliError::socket("subscribing", e))?;
    }
    if bind {
        let bound = s
            .bind(&ep)
            .map_err(|e| CliError::socket(format!("binding the {name} to {ep}"), e))?;
        announce_bound(&bound);
    } else {
        s.connect(&ep)
            .map_err(|e| CliError::socket(format!("connecting the {name} to {ep}"), e))?;
    }
    Ok(s)
}

/// `zmtp proxy`.
pub fn run(a: ProxyArgs) -> Result {
    let ctx = Context::new().map_err(|e| CliError::failed(format!("starting: {e}")))?;
    let frontend = side(&ctx, &a.frontend, "frontend", &a.tuning)?;
    let backend = side(&ctx, &a.backend, "backend", &a.tuning)?;
    let capture = match &a.capture {
        Some(c) => Some(side(&ctx, c, "capture", &a.tuning)?),
        None => None,
    };
    if let Some(c) = &capture {
        if !can_send(c.socket_type()) {
            return Err(CliError::usage(format!(
                "--capture: a {} socket cannot send",
                c.socket_type()
            )));
        }
    }
    let (ft, bt) = (frontend.socket_type(), backend.socket_type());
    let forward = can_recv(ft) && can_send(bt);
    let backward = can_recv(bt) && can_send(ft);
    if !forward && !backward {
        return Err(CliError::usage(format!(
            "nothing can flow between a {ft} frontend and a {bt} backend"
        )));
    }
    let r = serve(&frontend, &backend, capture.as_ref());
    for s in [Some(&frontend), Some(&backend), capture.as_ref()]
        .into_iter()
        .flatten()
    {
        s.set_linger(Some(std::time::Duration::ZERO));
    }
    r
}

/// zmtp-std's proxy, stopped by Ctrl-C.
fn serve(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result {
    let mut proxy = Proxy::new(frontend, backend).stop_when(SLICE, interrupted);
    if let Some(c) = capture {
        proxy = proxy.capture(c);
    }
    proxy.run().map_err(|e| CliError::socket("proxying", e))?;
    Err(CliError::Interrupted)
}
