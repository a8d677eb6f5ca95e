//! `zmtp broker`: the ZeroMQ Guide's load-balancing broker (chapter 3, "A Load Balancing
//! Message Broker"), over zmtp-std's `poll`.
//!
//! ```text
//!  REQ clients ──► frontend ROUTER ──[broker]──► backend ROUTER ◄── REQ workers
//!  [client, "", request]            [worker, "", client, "", request]
//! ```
//!
//! A worker announces itself with "READY" and is ready again after each reply; requests go
//! to the ready worker that has waited longest (least recently used). While no worker is
//! ready the frontend is not read, so requests wait in it and TCP pushes back on clients.

use std::collections::VecDeque;

use zmtp_std::{poll, Context, PollEvents, Socket, SocketType};

use crate::cli::BrokerArgs;
use crate::error::{CliError, Result};
use crate::interrupted;
use crate::output::{announce_bound, to_hex};
use crate::security;
use crate::sock::{apply_tuning, SLICE};

/// A bound ROUTER, secured if `--secure` covers its side: the socket, whether it is
/// secured, and the notes to print once everything is bound.
fn router(
    ctx: &Context,
    a: &BrokerArgs,
    ep: &str,
    name: &str,
) -> Result<(Socket, bool, Vec<String>)> {
    let s = ctx
        .socket(SocketType::Router)
        .map_err(|e| CliError::socket("making a ROUTER socket", e))?;
    apply_tuning(&s, &a.tuning)?;
    let (watched, notes) = security::apply_side(
        ctx,
        &s,
        name == "frontend",
        true,
        a.verbose,
        &a.side,
        &a.security,
    )?;
    // A worker that has gone is noticed when a request cannot be routed to it.
    s.set_router_mandatory(true)
        .map_err(|e| CliError::socket("router_mandatory", e))?;
    let bound = s
        .bind(ep)
        .map_err(|e| CliError::socket(format!("binding the {name} to {ep}"), e))?;
    announce_bound(&bound);
    Ok((s, watched, notes))
}

/// Splits `[id, "", rest...]`; `None` for a message without that envelope.
fn envelope(mut msg: Vec<Vec<u8>>) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    if msg.len() < 3 || !msg[1].is_empty() {
        return None;
    }
    let rest = msg.split_off(2);
    let id = msg.swap_remove(0);
    Some((id, rest))
}

/// `zmtp broker`.
pub fn run(a: BrokerArgs) -> Result {
    let ctx = Context::new().map_err(|e| CliError::failed(format!("starting: {e}")))?;
    let (frontend, front_secured, mut notes) = router(&ctx, &a, &a.frontend, "frontend")?;
    let (backend, back_secured, back_notes) = router(&ctx, &a, &a.backend, "backend")?;
    notes.extend(back_notes);
    for n in notes {
        eprintln!("{n}");
    }
    let secured: Vec<&Socket> = [(front_secured, &frontend), (back_secured, &backend)]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect();
    let mut ready: VecDeque<Vec<u8>> = VecDeque::new();
    let r = serve(&frontend, &backend, &secured, &mut ready);
    frontend.set_linger(Some(std::time::Duration::ZERO));
    backend.set_linger(Some(std::time::Duration::ZERO));
    r
}

fn serve(
    frontend: &Socket,
    backend: &Socket,
    secured: &[&Socket],
    ready: &mut VecDeque<Vec<u8>>,
) -> Result {
    loop {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        for s in secured {
            security::check(s)?;
        }
        let front_events = if ready.is_empty() {
            PollEvents::empty()
        } else {
            PollEvents::IN
        };
        let mut items = [
            backend.as_poll_item(PollEvents::IN),
            frontend.as_poll_item(front_events),
        ];
        poll(&mut items, Some(SLICE)).map_err(|e| CliError::socket("polling", e))?;
        let (from_workers, from_clients) = (items[0].is_readable(), items[1].is_readable());
        if from_workers {
            let msg = backend
                .try_recv_multipart()
                .map_err(|e| CliError::socket("receiving from a worker", e))?;
            match envelope(msg) {
                Some((worker, rest)) => {
                    if rest != [b"READY".to_vec()] {
                        // [client, "", reply...] back to the client; a client that has gone
                        // loses its reply.
                        match frontend.try_send_multipart(&rest) {
                            Ok(()) | Err(zmtp_std::Error::HostUnreachable) => {}
                            Err(e) => eprintln!("zmtp: warning: reply not forwarded: {e}"),
                        }
                    }
                    if !ready.contains(&worker) {
                        ready.push_back(worker);
                    }
                }
                None => eprintln!(
                    "zmtp: warning: a worker sent a message without the REQ envelope; dropped"
                ),
            }
        }
        if from_clients {
            let msg = frontend
                .try_recv_multipart()
                .map_err(|e| CliError::socket("receiving from a client", e))?;
            let Some((client, request)) = envelope(msg) else {
                eprintln!(
                    "zmtp: warning: a client sent a message without the REQ envelope; dropped"
                );
                continue;
            };
            dispatch(backend, ready, client, request);
        }
    }
}

/// Sends a request to the least recently used worker, skipping workers that have gone.
fn dispatch(
    backend: &Socket,
    ready: &mut VecDeque<Vec<u8>>,
    client: Vec<u8>,
    request: Vec<Vec<u8>>,
) {
    while let Some(worker) = ready.pop_front() {
        let mut msg = Vec::with_capacity(request.len() + 4);
        msg.push(worker.clone());
        msg.push(Vec::new());
        msg.push(client.clone());
        msg.push(Vec::new());
        msg.extend(request.iter().cloned());
        match backend.try_send_multipart(&msg) {
            Ok(()) => return,
            Err(zmtp_std::Error::HostUnreachable) => {
                eprintln!("zmtp: worker {} has gone", to_hex(&worker));
            }
            Err(e) => eprintln!(
                "zmtp: warning: request not sent to worker {}: {e}",
                to_hex(&worker)
            ),
        }
    }
    eprintln!("zmtp: warning: no worker left for a request; dropped (the client will time out)");
}
