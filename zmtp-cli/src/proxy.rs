//! `zmtp proxy`: zmq_proxy. Messages from the frontend go to the backend and the other way;
//! an optional capture socket gets a copy of each. With XSUB/XPUB, subscriptions (messages
//! `\x01topic`, `\x00topic` received by the XPUB) travel to the XSUB like any message.

use zmtp_std::{poll, Context, PollEvents, Socket, SocketType};

use crate::cli::{parse_side, ProxyArgs, Tuning};
use crate::error::{CliError, Result};
use crate::interrupted;
use crate::output::announce_bound;
use crate::sock::{apply_tuning, wait_send, SLICE};

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
    let r = serve(&frontend, &backend, capture.as_ref(), forward, backward);
    for s in [Some(&frontend), Some(&backend), capture.as_ref()]
        .into_iter()
        .flatten()
    {
        s.set_linger(Some(std::time::Duration::ZERO));
    }
    r
}

fn serve(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    forward: bool,
    backward: bool,
) -> Result {
    let events = |on: bool| {
        if on {
            PollEvents::IN
        } else {
            PollEvents::empty()
        }
    };
    loop {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        let mut items = [
            frontend.as_poll_item(events(forward)),
            backend.as_poll_item(events(backward)),
        ];
        poll(&mut items, Some(SLICE)).map_err(|e| CliError::socket("polling", e))?;
        let ready = [items[0].is_readable(), items[1].is_readable()];
        for (readable, from, to) in [(ready[0], frontend, backend), (ready[1], backend, frontend)] {
            if !readable {
                continue;
            }
            let msg = from
                .try_recv_multipart()
                .map_err(|e| CliError::socket("receiving", e))?;
            if let Some(c) = capture {
                // The capture never holds the proxy up: a copy it has no room for is lost.
                match c.try_send_multipart(&msg) {
                    Ok(()) | Err(zmtp_std::Error::WouldBlock) => {}
                    Err(e) => eprintln!("zmtp: warning: capture: {e}"),
                }
            }
            match wait_send(to, &msg, None) {
                Ok(()) => {}
                Err(CliError::Interrupted) => return Err(CliError::Interrupted),
                Err(e) => eprintln!("zmtp: warning: message not forwarded: {e}"),
            }
        }
    }
}
