//! Direct frames: large frame bodies that never enter the core's memory.
//!
//! A driver that owns large message bodies anyway (in a heap buffer, a DMA region, a memory
//! map) can move them between its memory and the transport itself, with no copy through the
//! peer queues and session buffers:
//!
//! - **Sending**: [`Socket::send_parts`] takes a message whose large frames are
//!   [`Part::Direct`]`(len)`: the core routes it (round robin, ROUTER ids), applies the
//!   high-water mark and queues it atomically as it would any message, but keeps only the
//!   lengths of the direct frames. When such a frame's turn comes,
//!   [`Socket::poll_transmit_direct`] returns the bytes to write (the frame's header last) and
//!   how many body bytes must follow them ([`Transmit::direct`]); the driver writes both,
//!   ideally with one vectored write, and reports the total with
//!   [`Socket::mark_transmitted_direct`]. Bodies go out in the order their messages were
//!   queued for a peer, so a driver keeps one FIFO of bodies per peer
//!   ([`send_parts`](Socket::send_parts) says which peer got the message).
//! - **Receiving**: with [`SocketConfig::direct_threshold`](super::SocketConfig) set, a data
//!   frame of at least that many bytes is not copied into the peer's receive queue: once its
//!   header is in (and checked against the message size limit, RFC 23 §"Error Handling":
//!   the limit protects us before any body byte is stored), [`Socket::direct_body`] shows its
//!   length, the body bytes already read into the session's buffer (copy them first) and
//!   what is still owed, which the driver reads from the transport straight into its own
//!   memory, reporting each step with [`Socket::commit_direct`]. The message is queued with
//!   a placeholder for the frame: [`Received::parts`](super::Received::parts) shows it as
//!   [`Part::Direct`], in the order the driver completed the bodies of that peer.
//!
//! Frame and message atomicity, back-pressure and limits stay the core's: a message with
//! direct frames is delivered whole or not at all (a peer that vanishes mid-message leaves
//! only bodies the driver must drop with the peer), and no other frame or command is
//! interleaved with a direct body on the wire (RFC 23 §"Framing": a frame is sent whole).
//!
//! Not with CURVE (its frames are sealed and opened in the session's buffers), and not for
//! the socket types that look into or copy messages: PUB, XPUB, SUB and XSUB (fan-out,
//! subscriptions), REQ and REP (envelopes). [`Socket::supports_direct`] tells.
//!
//! # Example
//!
//! A PUSH sends a 100 000-byte body from its own memory; a PULL reads it into its own.
//! Both drive their sessions by hand (no transport: bytes move between two `Vec`s).
//!
//! ```
//! use zmtp_core::socket::{Part, PeerMemory, PeerSlot, Socket, SocketConfig};
//! use zmtp_core::{Config, Instant, Role, SocketType};
//!
//! // Each peer's memory: receive and transmit buffers, receive and send queues.
//! let (mut a, mut b) = ([[0u8; 4096]; 2], [[0u8; 4096]; 2]);
//! let (mut qa, mut qb) = ([[0u8; 8192]; 2], [[0u8; 8192]; 2]);
//! fn mem<'a>(m: &'a mut [[u8; 4096]; 2], q: &'a mut [[u8; 8192]; 2]) -> PeerMemory<'a> {
//!     let ([rx, tx], [rq, sq]) = (m, q);
//!     PeerMemory { rx, tx, recv_queue: rq, send_queue: sq }
//! }
//! let mut push_slots = [PeerSlot::new(mem(&mut a, &mut qa))];
//! let mut pull_slots = [PeerSlot::new(mem(&mut b, &mut qb))];
//! let mut push = Socket::new(SocketConfig::new(Config::new(SocketType::Push)), &mut push_slots);
//! let mut pull_cfg = SocketConfig::new(Config::new(SocketType::Pull));
//! pull_cfg.direct_threshold = Some(8192);
//! let mut pull = Socket::new(pull_cfg, &mut pull_slots);
//! let now = Instant::ZERO;
//! let hp = push.add_peer(Role::Connected, now).unwrap();
//! let hq = pull.add_peer(Role::Accepted, now).unwrap();
//!
//! let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
//! let mut wire = Vec::new(); // PUSH -> PULL
//! let mut sent_body = false;
//! let mut got: Vec<u8> = Vec::new();
//! for _ in 0..100 {
//!     // PUSH: queue the message once its peer is ready, then write what is due.
//!     while push.poll_event().is_some() {}
//!     if !sent_body && push.send_parts(&[Part::Direct(body.len() as u64)]).is_ok() {
//!         sent_body = true;
//!     }
//!     loop {
//!         let t = push.poll_transmit_direct(hp);
//!         let (bytes, direct) = (t.bytes.to_vec(), t.direct);
//!         if bytes.is_empty() && direct == 0 {
//!             break;
//!         }
//!         // A vectored write of `bytes` then the body's next `direct` bytes.
//!         wire.extend_from_slice(&bytes);
//!         let off = body.len() - direct as usize;
//!         wire.extend_from_slice(&body[off..]);
//!         push.mark_transmitted_direct(hp, bytes.len() + direct as usize).unwrap();
//!     }
//!     // PULL: the greeting and READY go back the other way.
//!     let back = pull.poll_transmit(hq).to_vec();
//!     pull.mark_transmitted(hq, back.len()).unwrap();
//!     push.feed(hp, &back, now);
//!     // Read: large bodies straight into `got`, everything else through the window.
//!     loop {
//!         if let Some(d) = pull.direct_body(hq) {
//!             let (buffered, owed) = (d.buffered.len(), d.owed() as usize);
//!             got.extend_from_slice(d.buffered); // bytes that came with the header
//!             let from_wire = (owed - buffered).min(wire.len());
//!             got.extend(wire.drain(..from_wire)); // a read into `got`'s memory
//!             pull.commit_direct(hq, buffered + from_wire, now).unwrap();
//!             if from_wire == 0 && buffered == 0 {
//!                 break;
//!             }
//!             continue;
//!         }
//!         let n = pull.feed(hq, &wire, now);
//!         wire.drain(..n);
//!         if n == 0 {
//!             break;
//!         }
//!     }
//!     while pull.poll_event().is_some() {}
//!     if let Ok(m) = pull.recv() {
//!         assert_eq!(m.parts().collect::<Vec<_>>(), [Part::Direct(100_000)]);
//!         break;
//!     }
//! }
//! assert_eq!(got, body);
//! ```

use super::kind::Kind;
use super::queue::{stored_len, DIRECT_RECORD};
use super::{PeerHandle, PeerSlot, Socket, SocketSendError};
use crate::session::DirectBody;
use crate::time::Instant;
use crate::wire::SocketType;
use crate::UsageError;

/// One frame of a message given to [`Socket::send_parts`] or shown by
/// [`Received::parts`](super::Received::parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Part<'a> {
    /// A frame whose body the core holds (copied into its queue).
    Bytes(&'a [u8]),
    /// A frame of this many bytes whose body the driver holds.
    Direct(u64),
}

/// What to write to a peer's transport now ([`Socket::poll_transmit_direct`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Bytes from the session (may be empty).
    pub bytes: &'a [u8],
    /// Body bytes of a direct frame due right after `bytes`, from the driver's memory: the
    /// last `direct` bytes of the front body of the peer's FIFO. 0: none.
    pub direct: u64,
}

impl Transmit<'_> {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.direct == 0
    }
}

/// Whether a socket type can use direct frames (see the [module docs](self)).
fn type_supports_direct(ty: SocketType) -> bool {
    matches!(
        ty,
        SocketType::Push
            | SocketType::Pull
            | SocketType::Dealer
            | SocketType::Router
            | SocketType::Pair
    )
}

/// A message's sizes when its direct frames stay outside.
fn parts_len(parts: &[Part<'_>]) -> (usize, usize) {
    let mut bytes = 0usize;
    for p in parts {
        bytes = bytes.saturating_add(match p {
            Part::Bytes(b) => b.len(),
            Part::Direct(_) => DIRECT_RECORD,
        });
    }
    (parts.len(), bytes)
}

impl<'s, 'b, K: Kind> Socket<'s, 'b, K> {
    /// Whether this socket can use direct frames: its type sends or receives whole
    /// messages to or from one peer (PUSH, PULL, DEALER, ROUTER, PAIR) and its security
    /// is not CURVE.
    pub fn supports_direct(&self) -> bool {
        #[cfg(feature = "curve")]
        if self.cfg.session.security.is_curve() {
            return false;
        }
        type_supports_direct(self.ty())
    }

    /// The receive threshold the sessions get (`None` where direct frames do not apply).
    pub(super) fn direct_recv_threshold(&self) -> Option<u64> {
        let t = self.cfg.direct_threshold?;
        (self.supports_direct() && self.ty() != SocketType::Push).then_some(t)
    }

    /// Sends a message whose [`Part::Direct`] frames' bodies stay with the caller (see the
    /// [module docs](self)); routes and queues it like [`send`](Self::send): PUSH and
    /// DEALER round robin, PAIR to its peer, ROUTER by the routing id in the first part
    /// (which must be [`Part::Bytes`]). The message always goes through the peer's send
    /// queue, which holds its inline frames and 13 bytes per direct frame.
    ///
    /// `Ok(Some(peer))`: queued for `peer`, whose transmit calls will ask for the direct
    /// bodies in order; `Ok(None)`: dropped (ROUTER: unknown routing id or full peer,
    /// without `router_mandatory`). Errors as for [`send`](Self::send), and `NotAllowed`
    /// when [`supports_direct`](Self::supports_direct) is false, `Empty` for a
    /// `Direct(0)` part (send an empty [`Part::Bytes`]).
    pub fn send_parts(
        &mut self,
        parts: &[Part<'_>],
    ) -> Result<Option<PeerHandle>, SocketSendError> {
        if !self.supports_direct() || self.ty() == SocketType::Pull {
            return Err(SocketSendError::NotAllowed);
        }
        if parts.is_empty() || parts.contains(&Part::Direct(0)) {
            return Err(SocketSendError::Empty);
        }
        let (target, body) = if self.ty() == SocketType::Router {
            let Some((Part::Bytes(id), body)) = parts.split_first() else {
                return Err(SocketSendError::NotAllowed);
            };
            if body.is_empty() {
                return Err(SocketSendError::Empty);
            }
            let found = (0..self.span).find(|&i| {
                self.slots
                    .get(i)
                    .is_some_and(|s| s.is_active() && s.routing_id.as_slice() == *id)
            });
            match found {
                Some(i) => (Some(i), body),
                None if self.cfg.router_mandatory => return Err(SocketSendError::HostUnreachable),
                None => return Ok(None),
            }
        } else {
            (None, parts)
        };
        let (frames, bytes) = parts_len(body);
        let need = stored_len(frames, bytes);
        let hwm = self.cfg.send_hwm;
        let room = |s: &PeerSlot<'_>| {
            s.is_active() && (hwm == 0 || s.send.messages() < hwm) && need <= s.send.free()
        };
        let index = match target {
            Some(i) => {
                let Some(s) = self.slots.get(i) else {
                    return Ok(None);
                };
                if need > s.send.capacity() {
                    return Err(SocketSendError::TooLarge);
                }
                if !room(s) {
                    // ROUTER drops when the peer is full, unless mandatory (libzmq).
                    return if self.cfg.router_mandatory {
                        Err(SocketSendError::WouldBlock)
                    } else {
                        Ok(None)
                    };
                }
                i
            }
            None => {
                let mut any_ready = false;
                let mut any_fits_ever = false;
                let mut chosen = None;
                for i in self.round_from(self.lb) {
                    let Some(s) = self.slots.get(i).filter(|s| s.is_active()) else {
                        continue;
                    };
                    any_ready = true;
                    any_fits_ever |= need <= s.send.capacity();
                    if room(s) {
                        chosen = Some(i);
                        break;
                    }
                }
                match chosen {
                    Some(i) => {
                        self.lb = i.wrapping_add(1);
                        i
                    }
                    None if any_ready && !any_fits_ever => return Err(SocketSendError::TooLarge),
                    None => return Err(SocketSendError::WouldBlock),
                }
            }
        };
        let peer = self.handle_of(index).ok_or(SocketSendError::WouldBlock)?;
        let slot = self.slot_mut(peer).ok_or(SocketSendError::WouldBlock)?;
        let last = body.len().saturating_sub(1);
        for (k, p) in body.iter().enumerate() {
            // Fits: checked above.
            let _ = match p {
                Part::Bytes(b) => slot.send.push_frame(b, k < last),
                Part::Direct(len) => slot.send.push_direct_frame(*len, k < last),
            };
        }
        Ok(Some(peer))
    }

    /// Like [`poll_transmit`](Self::poll_transmit), plus the body bytes of a direct frame
    /// due right after the returned bytes ([`Transmit::direct`]). Write `bytes` then
    /// those body bytes (a vectored write), any prefix of the two, then call
    /// [`mark_transmitted_direct`](Self::mark_transmitted_direct).
    pub fn poll_transmit_direct(&mut self, h: PeerHandle) -> Transmit<'_> {
        self.pump_out(h);
        let Some(slot) = self.slot_mut(h) else {
            return Transmit {
                bytes: &[],
                direct: 0,
            };
        };
        let direct = direct_owed(slot);
        let bytes = match slot.session() {
            Some(s) => s.poll_transmit(),
            None => &[],
        };
        Transmit { bytes, direct }
    }

    /// Records that `n` bytes of what [`poll_transmit_direct`](Self::poll_transmit_direct)
    /// gave were written: first its `bytes`, then body bytes of the direct frame. A body
    /// is done when the peer's [`Transmit::direct`] for it has been written whole.
    pub fn mark_transmitted_direct(&mut self, h: PeerHandle, n: usize) -> Result<(), UsageError> {
        let slot = self.slot_mut(h).ok_or(UsageError::TransmitExceedsPending)?;
        let direct = direct_owed(slot);
        let session = slot.session().ok_or(UsageError::TransmitExceedsPending)?;
        if direct == 0 {
            return session.mark_transmitted(n);
        }
        // A direct body is owed, so no control command can be added to the output now
        // (they wait for the frame's end): this is what the caller was shown.
        let pending = session.poll_transmit().len();
        let head = n.min(pending);
        let body = n.saturating_sub(head);
        if body as u64 > direct {
            return Err(UsageError::TransmitExceedsPending);
        }
        session.mark_transmitted(head)?;
        session.mark_body_transmitted(body)?;
        if body as u64 == direct {
            // The frame is out: the rest of its message may follow.
            self.pump_out(h);
        }
        Ok(())
    }

    /// The direct frame being received from the peer (see the [module docs](self)), or
    /// `None`. Copy its [`buffered`](DirectBody::buffered) bytes, or once there are none
    /// read up to [`owed`](DirectBody::owed) bytes from the transport, into your memory,
    /// then [`commit_direct`](Self::commit_direct).
    pub fn direct_body(&self, h: PeerHandle) -> Option<DirectBody<'_>> {
        self.slot(h)?.session_ref()?.direct_body()
    }

    /// Records `n` more body bytes of the peer's direct frame taken (see
    /// [`Session::commit_direct`](crate::Session::commit_direct)); once the body is
    /// complete, the frame is in the peer's queue and its input is processed further.
    pub fn commit_direct(
        &mut self,
        h: PeerHandle,
        n: usize,
        now: Instant,
    ) -> Result<(), UsageError> {
        let slot = self.slot_mut(h).ok_or(UsageError::CommitExceedsWindow)?;
        let session = slot.session().ok_or(UsageError::CommitExceedsWindow)?;
        session.commit_direct(n, now)?;
        if session.direct_body().is_none() {
            slot.recv.end_frame();
            self.pump_in(h);
        }
        Ok(())
    }
}

/// Body bytes of a direct frame the peer's session has started and still owes.
fn direct_owed(slot: &PeerSlot<'_>) -> u64 {
    let Some((fi, off)) = slot.progress else {
        return 0;
    };
    if off == 0 {
        return 0;
    }
    let direct = slot
        .send
        .front()
        .and_then(|m| m.parts().nth(fi))
        .is_some_and(|p| matches!(p, Part::Direct(_)));
    match (direct, slot.session_ref()) {
        (true, Some(s)) => s.frame_body_remaining(),
        _ => 0,
    }
}
