//! The I/O thread's side of PLAIN and CURVE: fresh CURVE randomness per connection, the
//! server's decision on each client (allow-lists, then the ZAP thread, never blocking this
//! thread), ZAP timeouts, and handshake failures reported to the application.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use zmtp_core::socket::{AddPeerError, PeerHandle};
use zmtp_core::{CloseReason, ProtocolError, Role};

use super::IoSocket;
use crate::owned::OwnedSocket;
use crate::security::{AuthFailure, AuthFailureKind, Mechanism};
use crate::zap::{ContextAuth, Credentials, Job, ZapReply, ZapRequest};

/// A client waiting for the ZAP thread.
#[derive(Clone, Copy, Debug)]
struct Pending {
    peer: PeerHandle,
    deadline: Instant,
}

/// A socket's authentication state.
#[derive(Default)]
pub(super) struct AuthState {
    /// The context's allow-list and ZAP thread.
    pub(super) context: Option<Arc<ContextAuth>>,
    /// Requests with the ZAP thread, by request number.
    pending: HashMap<u64, Pending>,
    next: u64,
}

/// Why a peer could not be added.
pub(super) enum AddError {
    /// The core refused (no free slot).
    Core(AddPeerError),
    /// The operating system's RNG failed (CURVE).
    Random(std::io::Error),
}

/// `add_peer`, with fresh randomness from the OS for a CURVE connection.
pub(super) fn add_peer(
    core: &mut OwnedSocket,
    mechanism: Mechanism,
    role: Role,
    now: zmtp_core::Instant,
) -> Result<PeerHandle, AddError> {
    let random = if mechanism == Mechanism::Curve {
        Some(crate::security::curve_random().map_err(AddError::Random)?)
    } else {
        None
    };
    core.add_peer(role, now, random).map_err(AddError::Core)
}

impl std::fmt::Debug for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Core(e) => write!(f, "{e:?}"),
            AddError::Random(e) => write!(f, "no randomness from the OS for CURVE: {e}"),
        }
    }
}

impl IoSocket {
    fn peer_addr(&self, h: PeerHandle) -> Option<SocketAddr> {
        self.conns
            .values()
            .find(|c| c.peer == Some(h))
            .and_then(|c| c.stream.peer_addr().ok())
    }

    /// A client presented its credentials (`SocketEvent::Authenticate`): decide now from an
    /// allow-list, or ask the ZAP thread, or let it in (no handler, as libzmq).
    pub(super) fn authenticate(&mut self, h: PeerHandle, now: Instant) {
        let Some(req) = self.core.core().pending_auth(h) else {
            return;
        };
        let credentials = match req.public_key {
            Some(public_key) => Credentials::Curve { public_key },
            None => Credentials::Plain {
                username: req.username.to_vec(),
                password: crate::security::SecretBytes::new(req.password),
            },
        };
        let ctx = self.auth.context.clone();
        let verdict = self
            .shared
            .security
            .allow
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(&credentials)
            .or_else(|| {
                ctx.as_ref().and_then(|c| {
                    c.allow
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .decide(&credentials)
                })
            });
        match verdict {
            Some(true) => {
                self.core.core().accept_peer(h);
                return;
            }
            Some(false) => {
                self.reject(h, &ZapReply::deny("not in the allow-list"));
                return;
            }
            None => {}
        }
        let Some(ctx) = ctx.filter(|c| c.has_handler()) else {
            // RFC 27 leaves this to the server; libzmq without a ZAP handler lets all in.
            self.core.core().accept_peer(h);
            return;
        };
        let request = self.auth.next;
        self.auth.next = request.wrapping_add(1);
        let deadline = now.checked_add(ctx.timeout()).unwrap_or(now);
        let zap = ZapRequest {
            domain: self.opts.security.zap_domain().to_vec(),
            address: self
                .peer_addr(h)
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            routing_id: self.opts.routing_id.clone(),
            credentials,
        };
        let job = Job {
            socket: self.id,
            request,
            deadline,
            zap,
        };
        if ctx.submit(job) {
            self.auth
                .pending
                .insert(request, Pending { peer: h, deadline });
        } else {
            self.reject(h, &ZapReply::with_status(500, "ZAP handler gone"));
        }
    }

    /// Turns a client away: ERROR with the status code (RFC 27 §"Reply", as libzmq), and a
    /// failure for the application.
    fn reject(&mut self, h: PeerHandle, reply: &ZapReply) {
        let peer = self.peer_addr(h);
        self.core.core().reject_peer(h, reply.error_reason());
        self.shared.security.record(AuthFailure {
            peer,
            kind: AuthFailureKind::Rejected {
                status_code: reply.status_code,
                status_text: reply.status_text.clone(),
            },
        });
    }

    /// The ZAP thread answered request `request`.
    pub(super) fn zap_reply(&mut self, request: u64, reply: &ZapReply) {
        let Some(p) = self.auth.pending.remove(&request) else {
            // Timed out, or the client left.
            return;
        };
        if self.core.core().pending_auth(p.peer).is_none() {
            return;
        }
        if reply.is_accepted() {
            self.core.core().accept_peer(p.peer);
        } else {
            self.reject(p.peer, reply);
        }
    }

    /// Rejects clients whose ZAP answer is overdue; whether any was.
    pub(super) fn expire_zap(&mut self, now: Instant) -> bool {
        let overdue: Vec<u64> = self
            .auth
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(r, _)| *r)
            .collect();
        for r in &overdue {
            if let Some(p) = self.auth.pending.remove(r) {
                if self.core.core().pending_auth(p.peer).is_some() {
                    self.reject(
                        p.peer,
                        &ZapReply::with_status(500, "no answer from the ZAP handler in time"),
                    );
                }
            }
        }
        !overdue.is_empty()
    }

    /// The earliest ZAP deadline.
    pub(super) fn zap_deadline(&self) -> Option<Instant> {
        self.auth.pending.values().map(|p| p.deadline).min()
    }

    /// A peer closed: forget its ZAP request; report a failed security handshake.
    pub(super) fn note_closed(&mut self, h: PeerHandle, reason: &CloseReason) {
        self.auth.pending.retain(|_, p| p.peer != h);
        let ready = self
            .conns
            .values()
            .find(|c| c.peer == Some(h))
            .is_some_and(|c| c.ready);
        if ready {
            return;
        }
        let secure = self.opts.security.mechanism() != Mechanism::Null;
        let kind = match reason {
            // Recorded with its status when we rejected; we closed it ourselves.
            CloseReason::AuthRejected | CloseReason::Local => return,
            CloseReason::AuthFailed => AuthFailureKind::RefusedByServer {
                reason: String::from_utf8_lossy(
                    self.core.core().peer_error_reason(h).unwrap_or_default(),
                )
                .into_owned(),
            },
            CloseReason::Protocol(ProtocolError::MechanismMismatch) => {
                AuthFailureKind::Handshake(*reason)
            }
            // libzmq hangs up without a word on a mechanism mismatch (it has not sent its
            // mechanism yet) and on a HELLO sealed for another server key (RFC 26).
            _ if secure => AuthFailureKind::Handshake(*reason),
            _ => return,
        };
        let peer = self.peer_addr(h);
        self.shared.security.record(AuthFailure { peer, kind });
    }
}
