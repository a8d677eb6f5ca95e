//! PUB, XPUB, SUB and XSUB (RFC 29/PUBSUB, PROTOCOL.md "Subscriptions").
//!
//! # Where subscriptions live
//!
//! The socket keeps one [`Trie`] in caller memory ([`SubscriptionMemory`]):
//!
//! - PUB, XPUB: a member-set trie whose members are the peer slots. Each peer has a *set* of
//!   topics (libzmq's behaviour: SUBSCRIBE A, SUBSCRIBE A, CANCEL A leaves nothing); a message
//!   goes to every active peer with a topic that prefixes its first frame.
//! - SUB, XSUB: a counted trie of our own subscriptions. Every subscribe goes on the wire;
//!   only the unsubscribe that brings a count to zero sends CANCEL. It also filters what a
//!   SUB receives, and is resent (each topic once) to every peer whose handshake completes.
//!
//! # Subscriptions to send (SUB, XSUB)
//!
//! A subscribe or cancel goes straight into the peer's session when nothing is queued before
//! it and the session has room ([`crate::Session::send_subscribe`] picks a SUBSCRIBE/CANCEL command
//! for a ZMTP 3.1 peer, a `01`/`00` message for a 3.0 peer). Otherwise it is queued in the
//! peer's send queue as the single frame `01 topic` / `00 topic`, in order with data, and
//! [`Socket::poll_transmit`] moves it into the session later. Subscriptions ignore the send
//! high-water mark (they are control traffic); only the queue's bytes limit them.
//!
//! The resend to a new peer is lazy: the peer gets a cursor over the trie's node indices, and
//! `poll_transmit` stages the topics from the cursor on into the (empty) send queue as room
//! allows. A node holding a topic keeps its index while the topic stays, so every topic
//! present throughout the resend is sent; one added meanwhile at an index the cursor has
//! passed goes out as an ordinary subscribe.
//!
//! If a peer's send queue cannot take a subscription (the publisher does not read), a lost
//! SUBSCRIBE restarts that peer's resend from the first topic (the publisher's set semantics
//! make the repeats harmless), and a lost CANCEL closes the connection (`CloseReason::Local`):
//! no later message could repair it, and a reconnect starts from a clean set.
//!
//! # XPUB notifications
//!
//! Subscriptions reach an XPUB application through a socket-wide queue in caller memory
//! ([`SubscriptionMemory::notifications`]), in the order the peers' commands were processed,
//! as `01 topic` / `00 topic`. By default only the first subscription to a topic (across all
//! peers) and the cancel that removes its last subscriber are shown (libzmq's duplicate
//! filter); [`SocketConfig::xpub_verbose`] shows every subscription, `xpub_verboser` every
//! cancel too. A peer that goes away cancels its topics. While the queue is full, XPUB stops
//! reading from its peers (back-pressure); a notification that cannot fit an empty queue,
//! or one from a departing peer that finds the queue full, is dropped and counted
//! ([`SubscriptionStats::lost_notifications`]).
//!
//! Other messages from subscribers are delivered to an XPUB application as they are, after
//! the pending notifications; a PUB drops them.

use super::kind::Kind;
use super::trie::{self, Trie};
use super::{
    enqueue_slot, queue::MsgQueue, stored_len, Conn, MsgLen, PeerHandle, PeerSlot, Socket,
    SocketConfig, SocketSendError,
};
use crate::error::SendError;
use crate::wire::SocketType;

/// Upper bound of a subscription's wire size beyond its topic (an 8-byte size, flags, the
/// command name).
const SUB_WIRE_OVERHEAD: usize = 20;

/// The caller memory a publish-subscribe socket keeps its subscriptions in
/// ([`Socket::with_subscriptions`]).
///
/// # Sizing
///
/// - `trie`: nodes of [`trie::NODE_HEADER`] + 4 bytes (SUB, XSUB) or [`trie::NODE_HEADER`] +
///   `ceil(slots / 8)` bytes (PUB, XPUB, plus one `ceil(slots / 8)` scratch mask). A topic of
///   `n` bytes needs at most `1 + ceil(n / 11)` nodes, fewer when topics share prefixes (a
///   PUB stores each distinct topic once, whatever the number of peers subscribed to it),
///   plus one root node. [`subscription_memory`] computes the size for a node count.
/// - `notifications` (XPUB only; may be empty otherwise): holds pending `01`/`00`
///   notifications, each taking its topic + 15 bytes. Give it at least a session receive
///   buffer + 15 bytes, or long topics cannot be shown.
#[derive(Debug)]
pub struct SubscriptionMemory<'s> {
    /// The subscription trie's arena.
    pub trie: &'s mut [u8],
    /// XPUB: notifications waiting for [`Socket::recv`].
    pub notifications: &'s mut [u8],
}

impl<'s> SubscriptionMemory<'s> {
    /// Memory for the trie only (no XPUB notification queue).
    pub fn new(trie: &'s mut [u8]) -> Self {
        SubscriptionMemory {
            trie,
            notifications: &mut [],
        }
    }

    /// The same, with a notification queue for XPUB.
    pub fn with_notifications(self, notifications: &'s mut [u8]) -> Self {
        SubscriptionMemory {
            trie: self.trie,
            notifications,
        }
    }
}

/// Bytes of trie memory a socket of type `ty` over `slots` peer slots needs for `nodes` trie
/// nodes (the root included; see [`SubscriptionMemory`] for nodes per topic).
pub const fn subscription_memory(ty: SocketType, slots: usize, nodes: usize) -> usize {
    match ty {
        SocketType::Pub | SocketType::XPub => trie::sets_memory(slots, nodes),
        _ => trie::counted_memory(nodes),
    }
}

/// Counters of a publish-subscribe socket ([`Socket::subscription_stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct SubscriptionStats {
    /// Distinct topics held.
    pub topics: usize,
    /// Trie nodes in use (the root included).
    pub nodes_used: usize,
    /// Trie nodes the memory holds.
    pub nodes_capacity: usize,
    /// PUB, XPUB: peer subscriptions ignored because the trie was full.
    pub ignored_subscriptions: u32,
    /// XPUB: notifications dropped because the notification queue had no room.
    pub lost_notifications: u32,
}

/// The socket's publish-subscribe state.
#[derive(Debug)]
pub(super) struct PubSub<'s> {
    pub(super) subs: Trie<'s>,
    pub(super) notes: MsgQueue<'s>,
    verbose: bool,
    verboser: bool,
    ignored: u32,
    lost: u32,
}

impl<'s> PubSub<'s> {
    pub(super) fn new(cfg: &SocketConfig<'_>, slots: usize, mem: SubscriptionMemory<'s>) -> Self {
        let subs = match cfg.session.socket_type {
            SocketType::Pub | SocketType::XPub => Trie::sets(mem.trie, slots),
            _ => Trie::counted(mem.trie),
        };
        PubSub {
            subs,
            notes: MsgQueue::new(mem.notifications),
            verbose: cfg.xpub_verbose || cfg.xpub_verboser,
            verboser: cfg.xpub_verboser,
            ignored: 0,
            lost: 0,
        }
    }

    /// XPUB: room to keep before taking the next event from a peer whose receive buffer is
    /// `rx_len` bytes (a subscription's topic is at most that long).
    pub(super) fn blocks(&self, ty: SocketType, rx_len: usize) -> bool {
        if ty != SocketType::XPub || self.notes.messages() == 0 {
            return false;
        }
        let room = stored_len(2, rx_len.saturating_add(5)).min(self.notes.capacity());
        self.notes.free() < room
    }

    /// A SUBSCRIBE/CANCEL (3.1 command or 3.0 message) from the peer in slot `member`.
    /// RFC 29 §"The PUB Socket Type" / §"The XPUB Socket Type", "For processing
    /// subscriptions": PUB and XPUB keep the peer's subscriptions (XPUB also delivers them to
    /// the application, normalized unless verbose); SUB and XSUB ignore them.
    pub(super) fn on_peer_subscription(
        &mut self,
        ty: SocketType,
        member: usize,
        h: PeerHandle,
        subscribe: bool,
        topic: &[u8],
    ) {
        if !ty.receives_subscriptions() {
            return;
        }
        let show = if subscribe {
            match self.subs.insert_member(topic, member) {
                Ok(added) => added.new_topic || self.verbose,
                Err(trie::TrieFull) => {
                    // PUB side, trie full: the subscription is ignored (counted).
                    self.ignored = self.ignored.saturating_add(1);
                    false
                }
            }
        } else {
            self.subs.remove_member(topic, member).topic_gone || self.verboser
        };
        if show && ty == SocketType::XPub {
            let need = stored_len(2, topic.len().saturating_add(5));
            if need > self.notes.free() {
                self.lost = self.lost.saturating_add(1);
                return;
            }
            self.notes.push_frame(&handle_bytes(h), true);
            if self.notes.begin_frame(topic.len().saturating_add(1), false) {
                self.notes.write_body(&[u8::from(subscribe)]);
                self.notes.write_body(topic);
                self.notes.end_frame();
            }
        }
    }

    /// The peer in slot `member` is gone: PUB and XPUB forget its subscriptions; XPUB shows
    /// the cancel of each topic nobody else has (all of them with `xpub_verboser`).
    pub(super) fn drop_member(&mut self, ty: SocketType, member: usize, h: PeerHandle) {
        if !ty.receives_subscriptions() {
            return;
        }
        let xpub = ty == SocketType::XPub;
        let verboser = self.verboser;
        let PubSub {
            subs, notes, lost, ..
        } = self;
        subs.remove_member_everywhere(member, |t, n, gone| {
            if !xpub || !(gone || verboser) {
                return;
            }
            let len = t.topic_len(n);
            if stored_len(2, len.saturating_add(5)) > notes.free() {
                *lost = lost.saturating_add(1);
                return;
            }
            notes.push_frame(&handle_bytes(h), true);
            if notes.begin_frame(len.saturating_add(1), false) {
                notes.write_body(&[0]);
                t.topic_pieces(n, |p| {
                    notes.write_body(p);
                });
                notes.end_frame();
            }
        });
    }
}

fn handle_bytes(h: PeerHandle) -> [u8; 4] {
    let [a, b] = h.index.to_le_bytes();
    let [c, d] = h.generation.to_le_bytes();
    [a, b, c, d]
}

fn handle_from(b: &[u8]) -> Option<PeerHandle> {
    match b {
        &[a, b, c, d] => Some(PeerHandle {
            index: u16::from_le_bytes([a, b]),
            generation: u16::from_le_bytes([c, d]),
        }),
        _ => None,
    }
}

/// What a SUB/XSUB does with a subscription that a peer cannot take now.
enum Overflow {
    None,
    /// The peer must be closed (a CANCEL was lost).
    Close,
}

/// Sends `01 topic` (subscribe) or `00 topic` (cancel) to one peer: straight into the session
/// when nothing is queued before it, else into the send queue (see the module docs).
fn send_subscription(slot: &mut PeerSlot<'_>, subscribe: bool, topic: &[u8]) -> Overflow {
    if !slot.is_active() {
        return Overflow::None;
    }
    let PeerSlot {
        conn: Conn::Live(session),
        send,
        progress,
        resync,
        ..
    } = slot
    else {
        return Overflow::None;
    };
    if send.is_empty()
        && progress.is_none()
        && topic.len().saturating_add(SUB_WIRE_OVERHEAD) <= session.frame_space()
    {
        let r = if subscribe {
            session.send_subscribe(topic)
        } else {
            session.send_cancel(topic)
        };
        if r.is_ok() {
            return Overflow::None;
        }
    }
    if stored_len(1, topic.len().saturating_add(1)) <= send.free()
        && send.begin_frame(topic.len().saturating_add(1), false)
    {
        send.write_body(&[u8::from(subscribe)]);
        send.write_body(topic);
        send.end_frame();
        return Overflow::None;
    }
    if subscribe {
        // Resend everything from the first topic: the lost one is among them.
        *resync = Some(0);
        Overflow::None
    } else {
        Overflow::Close
    }
}

/// If the front message of a SUB/XSUB send queue is a queued subscription, moves it into the
/// session. `Some(true)`: done (popped), `Some(false)`: no room yet, `None`: not one.
pub(super) fn pump_subscription(slot: &mut PeerSlot<'_>) -> Option<bool> {
    let PeerSlot {
        conn: Conn::Live(session),
        send,
        progress,
        ..
    } = slot
    else {
        return None;
    };
    if progress.is_some() {
        return None;
    }
    let msg = send.front()?;
    if msg.len() != 1 {
        return None;
    }
    let (&tag, topic) = msg.first()?.split_first()?;
    if tag > 1 {
        return None;
    }
    let wire = topic.len().saturating_add(SUB_WIRE_OVERHEAD);
    if wire > session.frame_space() {
        if wire.saturating_add(super::CONTROL_MARGIN) <= session.tx_capacity() {
            return Some(false);
        }
        // Can never fit this peer's transmit buffer: dropped.
        send.pop();
        return Some(true);
    }
    let r = if tag == 1 {
        session.send_subscribe(topic)
    } else {
        session.send_cancel(topic)
    };
    match r {
        Err(SendError::WouldBlock | SendError::FrameInProgress | SendError::NotReady) => {
            Some(false)
        }
        _ => {
            send.pop();
            Some(true)
        }
    }
}

/// Stages topics of a resend into the peer's send queue from its cursor on, while they fit.
/// Returns whether anything was staged.
pub(super) fn stage_resync(subs: &Trie<'_>, slot: &mut PeerSlot<'_>) -> bool {
    let Some(mut at) = slot.resync else {
        return false;
    };
    let mut any = false;
    while let Some(n) = subs.next_topic(at) {
        let len = subs.topic_len(n);
        let need = stored_len(1, len.saturating_add(1));
        at = n.saturating_add(1);
        if need > slot.send.capacity() {
            continue; // cannot be staged at all (subscribe refuses such topics)
        }
        if need > slot.send.free() {
            slot.resync = Some(n);
            return any;
        }
        if slot.send.begin_frame(len.saturating_add(1), false) {
            slot.send.write_body(&[1]);
            let send = &mut slot.send;
            subs.topic_pieces(n, |p| {
                send.write_body(p);
            });
            slot.send.end_frame();
            any = true;
        }
    }
    slot.resync = None;
    any
}

impl<'s, 'b> Socket<'s, 'b> {
    /// A socket over `slots` whose subscriptions live in `memory`: PUB, XPUB, SUB and XSUB
    /// need this (with [`Socket::new`] their trie has no room: a SUB cannot subscribe and a
    /// PUB ignores every subscription). Other types ignore `memory`.
    ///
    /// # Publish-subscribe (RFC 29, PROTOCOL.md "Subscriptions")
    ///
    /// - Matching: a subscription matches when it is a byte prefix of a message's first
    ///   frame; the empty subscription matches everything, the empty message included. The
    ///   subscriptions live in a radix tree in `memory` ([`trie`]): a lookup costs
    ///   O(length of the first frame), whatever the number of subscriptions. Size it with
    ///   [`subscription_memory`] (see [`SubscriptionMemory`]).
    /// - PUB, XPUB: a set of topics per peer (SUBSCRIBE A twice then CANCEL A leaves nothing);
    ///   [`send`](Self::send) copies a message to every ready peer with a matching topic and
    ///   drops it for a peer without room for all of it (HWM or bytes), never blocking. A full
    ///   trie ignores new topics ([`SubscriptionStats::ignored_subscriptions`]). A PUB drops
    ///   what subscribers send; an XPUB delivers it. A peer's topics go with it.
    /// - XPUB: [`recv`](Self::recv) yields `01 topic` / `00 topic` for a topic's first
    ///   subscriber and its last cancel (or every one with `xpub_verbose`/`xpub_verboser`),
    ///   also when a peer leaves, from the notification queue in `memory`, before other
    ///   messages. While that queue is full the XPUB stops reading its peers.
    /// - SUB: [`subscribe`](Self::subscribe) / [`unsubscribe`](Self::unsubscribe) are
    ///   counted; [`recv`](Self::recv) filters by them. XSUB: the same through
    ///   [`send`](Self::send) of `01 topic` / `00 topic`, and no filter.
    /// - Subscriptions to send go into the peer's session at once if they fit, else into its
    ///   send queue in order (outside the send HWM); to a ZMTP 3.0 peer as `01`/`00`
    ///   messages, to a 3.1 peer as SUBSCRIBE/CANCEL commands. A peer whose handshake
    ///   completes gets every topic once, staged through its send queue as it drains (so a
    ///   SUB/XSUB slot's send queue must hold the longest topic + 6 bytes). A peer whose send
    ///   queue overflows gets a full resend after a lost SUBSCRIBE (duplicates are harmless
    ///   at a publisher) and is closed after a lost CANCEL (a reconnect starts clean).
    pub fn with_subscriptions(
        cfg: SocketConfig<'b>,
        slots: &'s mut [PeerSlot<'b>],
        memory: SubscriptionMemory<'s>,
    ) -> Self {
        Self::typed_with_subscriptions(super::kind::Any, cfg, slots, memory)
    }
}

impl<K: Kind> Socket<'_, '_, K> {
    /// SUB, XSUB: subscribes to messages whose first frame starts with `topic` (the empty
    /// topic: everything). Every call puts a SUBSCRIBE on the wire to each ready peer (RFC
    /// 29; PROTOCOL.md: subscriptions are counted). Peers that connect later get every topic.
    ///
    /// Errors: `NotAllowed` for other socket types; `SubscriptionsFull` when the trie has no
    /// room (nothing changed); `TooLarge` when the topic (+ 6 bytes) cannot fit a peer slot's
    /// send queue, through which resends go.
    pub fn subscribe(&mut self, topic: &[u8]) -> Result<(), SocketSendError> {
        self.change_subscription(true, topic)
    }

    /// SUB, XSUB: drops one use of `topic`; the use that brings its count to zero sends
    /// CANCEL to each ready peer. Unsubscribing a topic not subscribed does nothing (libzmq).
    pub fn unsubscribe(&mut self, topic: &[u8]) -> Result<(), SocketSendError> {
        self.change_subscription(false, topic)
    }

    /// Subscription counters (all zero for other socket types).
    pub fn subscription_stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            topics: self.ps.subs.topics(),
            nodes_used: self.ps.subs.nodes_used(),
            nodes_capacity: self.ps.subs.capacity(),
            ignored_subscriptions: self.ps.ignored,
            lost_notifications: self.ps.lost,
        }
    }

    pub(super) fn change_subscription(
        &mut self,
        subscribe: bool,
        topic: &[u8],
    ) -> Result<(), SocketSendError> {
        if !matches!(self.ty(), SocketType::Sub | SocketType::XSub) {
            return Err(SocketSendError::NotAllowed);
        }
        let mut close = false;
        if subscribe {
            let need = stored_len(1, topic.len().saturating_add(1));
            if self
                .slots
                .iter()
                .any(|s| s.has_memory() && need > s.send.capacity())
            {
                return Err(SocketSendError::TooLarge);
            }
            let (node, _) = self
                .ps
                .subs
                .add_node(topic)
                .map_err(|_| SocketSendError::SubscriptionsFull)?;
            for slot in self.slots.iter_mut() {
                // A resend still to reach this node will carry it.
                if slot.resync.is_some_and(|c| node >= c) {
                    continue;
                }
                if let Overflow::Close = send_subscription(slot, true, topic) {
                    close = true;
                }
            }
        } else {
            if self.ps.subs.remove(topic) != Some(0) {
                return Ok(());
            }
            // Sent even to a peer whose resend has not reached the topic yet: a publisher
            // ignores a CANCEL for a topic it does not have.
            for slot in self.slots.iter_mut() {
                if let Overflow::Close = send_subscription(slot, false, topic) {
                    if let Some(s) = slot.session() {
                        s.close();
                    }
                    close = true;
                }
            }
        }
        if close {
            for i in 0..self.slots.len() {
                if let Some(h) = self.handle_of(i) {
                    self.pump_in(h);
                }
            }
        }
        Ok(())
    }

    /// PUB, XPUB, XSUB data: a copy to every ready peer that wants it (PUB, XPUB: a topic
    /// prefixing the first frame; XSUB: all), dropped for a peer without room for the whole
    /// message (RFC 29 §"The PUB Socket Type", §"The XSUB Socket Type": "SHALL silently
    /// drop the message if the queue for a subscriber is full", "SHALL NOT block on sending").
    pub(super) fn distribute(&mut self, frames: &[&[u8]]) -> Result<(), SocketSendError> {
        let hwm = self.cfg.send_hwm;
        let len = MsgLen::of(&[], frames);
        if self.ty() == SocketType::XSub {
            let span = self.span;
            for slot in self.slots.iter_mut().take(span).filter(|s| s.is_active()) {
                let _ = enqueue_slot(slot, hwm, &[], frames, len);
            }
            return Ok(());
        }
        let first = frames.first().copied().unwrap_or(&[]);
        let mask = self.ps.subs.match_members(first);
        let span = self.span;
        for (i, slot) in self.slots.iter_mut().take(span).enumerate() {
            let wanted = mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
            if wanted && slot.is_active() {
                let _ = enqueue_slot(slot, hwm, &[], frames, len);
            }
        }
        Ok(())
    }

    /// XPUB: the oldest pending notification, as `01 topic` / `00 topic` from the peer that
    /// caused it.
    pub(super) fn next_notification(&mut self) -> Option<super::Received<'_>> {
        let msg = self.ps.notes.pop_front()?;
        let peer = msg.first().and_then(handle_from)?;
        Some(super::Received {
            peer,
            routing_id: None,
            message: msg,
            skip: 1,
        })
    }

    /// XPUB: the next notification, left queued.
    pub(super) fn front_notification(&self) -> Option<super::Received<'_>> {
        let msg = self.ps.notes.front()?;
        let peer = msg.first().and_then(handle_from)?;
        Some(super::Received {
            peer,
            routing_id: None,
            message: msg,
            skip: 1,
        })
    }

    /// The peer in slot `h` is gone for good: forget what it subscribed to.
    pub(super) fn forget_subscriptions(&mut self, h: PeerHandle) {
        let ty = self.ty();
        self.ps.drop_member(ty, h.index(), h);
    }
}
