//! `zmtp proxy`: zmq_proxy (zmtp-std's [`Proxy`]). Messages from the frontend go to the
//! backend and the other way; an optional capture socket gets a copy of each (a copy it has
//! no room for is dropped). With XSUB/XPUB, subscriptions (messages
//! `\x01topic`, `\x00topic` received by the XPUB) travel to the XSUB like any message.

use zmtp_std::{Context, Proxy, Socket, SocketType};

use crate::cli::{parse_side, ProxyArgs};
use crate::error::{CliError, Result};
use crate::interrupted;
use crate::output::announce_bound;
use crate::security;
use crate::sock::{apply_tuning, SLICE};

fn can_recv(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Push | SocketType::Pub)
}

fn can_send(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Pull | SocketType::Sub)
}

/// A side of the proxy: made, tuned, secured if `--secure` covers it (`secured`: whether
/// it is the frontend, `None` for the capture), bound or connected. Returns the socket,
/// whether it is secured, and the notes to print once all is bound.
fn side(
    ctx: &Context,
    a: &ProxyArgs,
    spec: &str,
    name: &str,
    secured: Option<bool>,
) -> Result<(Socket, bool, Vec<String>)> {
    let (ty, ep, bind) = parse_side(spec).map_err(|e| CliError::usage(format!("--{name} {e}")))?;
    let s = ctx
        .socket(ty)
        .map_err(|e| CliError::socket(format!("making the {name} socket"), e))?;
    apply_tuning(&s, &a.tuning)?;
    let (watched, notes) = match secured {
        Some(frontend) => {
            security::apply_side(ctx, &s, frontend, bind, a.verbose, &a.side, &a.security)?
        }
        None => (false, Vec::new()),
    };
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
    Ok((s, watched, notes))
}

/// `zmtp proxy`.
pub fn run(a: ProxyArgs) -> Result {
    let ctx = Context::new().map_err(|e| CliError::failed(format!("starting: {e}")))?;
    let (frontend, front_secured, mut notes) = side(&ctx, &a, &a.frontend, "frontend", Some(true))?;
    let (backend, back_secured, back_notes) = side(&ctx, &a, &a.backend, "backend", Some(false))?;
    notes.extend(back_notes);
    let capture = match &a.capture {
        Some(c) => Some(side(&ctx, &a, c, "capture", None)?.0),
        None => None,
    };
    for n in notes {
        eprintln!("{n}");
    }
    let secured: Vec<&Socket> = [(front_secured, &frontend), (back_secured, &backend)]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect();
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
    let r = serve(&frontend, &backend, capture.as_ref(), &secured);
    for s in [Some(&frontend), Some(&backend), capture.as_ref()]
        .into_iter()
        .flatten()
    {
        s.set_linger(Some(std::time::Duration::ZERO));
    }
    r
}

/// zmtp-std's proxy, stopped by Ctrl-C, or by a client side that every server refused.
fn serve(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    secured: &[&Socket],
) -> Result {
    let mut refused = None;
    let stop = || {
        if let Some(Err(e)) = secured
            .iter()
            .map(|s| security::check(s))
            .find(Result::is_err)
        {
            refused = Some(e);
        }
        refused.is_some() || interrupted()
    };
    let mut proxy = Proxy::new(frontend, backend).stop_when(SLICE, stop);
    if let Some(c) = capture {
        proxy = proxy.capture(c);
    }
    let r = proxy.run();
    r.map_err(|e| CliError::socket("proxying", e))?;
    Err(refused.take().unwrap_or(CliError::Interrupted))
}
