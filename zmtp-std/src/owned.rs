//! A zmtp-core [`Socket`] together with the memory it borrows.
//!
//! `Socket<'s, 'b>` borrows its peer slots (`'s`) and their buffers (`'b`) from the caller:
//! on a microcontroller those are `static` arrays. Here the I/O thread allocates them per
//! socket, hands the core `'static` references to them, and frees them when the socket goes.
//! That needs the only `unsafe` code of this crate, kept in this module:
//!
//! 1. every allocation is leaked and turned into a raw pointer ([`NonNull`]) at once, and the
//!    `&'static mut` the core gets is derived from that kept pointer (the pointer is the
//!    parent of the reference, so freeing through it later invalidates nothing still in use);
//! 2. the core socket, the only holder of those references, is dropped first
//!    ([`ManuallyDrop`]), then the slots, then the byte buffers;
//! 3. the core socket never leaves an [`OwnedSocket`]: it is only lent out by
//!    [`OwnedSocket::core`], and no zmtp-core method hands out a reference with the `'b`
//!    lifetime (everything it returns borrows the socket), so no `'static` reference outlives
//!    the memory.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::security::Material;
use zmtp_core::socket::{PeerMemory, PeerSlot, Socket, SocketConfig, SubscriptionMemory};

/// Sizes of the memory of one socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Peer slots.
    pub peers: usize,
    /// Each session's receive and transmit buffer.
    pub buffer: usize,
    /// Each peer's receive and send queue.
    pub queue: usize,
    /// PUB, XPUB, SUB, XSUB: the subscription tree's bytes (0: none, other types).
    pub trie: usize,
    /// XPUB: the notification queue's bytes (0 otherwise).
    pub notifications: usize,
}

/// A zmtp-core socket that owns its peer slots, their buffers, its subscription memory and
/// its identity.
pub(crate) struct OwnedSocket {
    /// Borrows everything below: dropped first, by hand.
    socket: ManuallyDrop<Socket<'static, 'static>>,
    slots: NonNull<[PeerSlot<'static>]>,
    buffers: Vec<NonNull<[u8]>>,
    identity: NonNull<[u8]>,
    /// PLAIN/CURVE keys and credentials the socket's `Security` borrows (wiped on drop).
    security: Option<NonNull<Material>>,
}

/// Allocates `len` zeroed bytes and leaks them: the pointer, and a `'static` reference
/// derived from it.
fn leak_bytes(len: usize, keep: &mut Vec<NonNull<[u8]>>) -> &'static mut [u8] {
    // `vec![0; n]` allocates zeroed memory: the system maps large buffers lazily, so pages
    // a connection never touches cost no RAM.
    let ptr = NonNull::from(Box::leak(vec![0u8; len].into_boxed_slice()));
    keep.push(ptr);
    // SAFETY: `ptr` is a fresh, unaliased allocation; the reference is derived from the kept
    // pointer (see the module docs, 1) and is only used by the core socket, which is dropped
    // before the allocation is freed in `Drop` (2).
    unsafe { &mut *ptr.as_ptr() }
}

impl OwnedSocket {
    /// Allocates the memory for `layout` and builds a core socket over it with `cfg`, whose
    /// identity is replaced by a copy of `identity` owned here.
    #[cfg(test)]
    pub(crate) fn new(cfg: SocketConfig<'static>, identity: &[u8], layout: Layout) -> Self {
        Self::with_security(cfg, identity, layout, None)
    }

    /// [`new`](Self::new) with the socket's security material, owned here: the core's
    /// [`Security`](zmtp_core::Security) borrows it.
    pub(crate) fn with_security(
        mut cfg: SocketConfig<'static>,
        identity: &[u8],
        layout: Layout,
        material: Option<Material>,
    ) -> Self {
        let security = material.map(|m| NonNull::from(Box::leak(Box::new(m))));
        if let Some(m) = security {
            // SAFETY: as for the identity below: a fresh allocation, freed only after the
            // socket, the only holder of references into it.
            let m: &'static Material = unsafe { &*m.as_ptr() };
            cfg.session.security = m.security();
        }
        let identity = NonNull::from(Box::leak(identity.to_vec().into_boxed_slice()));
        // SAFETY: as for `leak_bytes`: a fresh allocation, freed only after the socket.
        let identity_ref: &'static [u8] = unsafe { &*identity.as_ptr() };
        cfg.session = cfg.session.with_identity(identity_ref);

        let mut buffers = Vec::with_capacity(layout.peers.saturating_mul(4).saturating_add(2));
        let slots: Vec<PeerSlot<'static>> = (0..layout.peers)
            .map(|_| {
                PeerSlot::new(PeerMemory {
                    rx: leak_bytes(layout.buffer, &mut buffers),
                    tx: leak_bytes(layout.buffer, &mut buffers),
                    recv_queue: leak_bytes(layout.queue, &mut buffers),
                    send_queue: leak_bytes(layout.queue, &mut buffers),
                })
            })
            .collect();
        let slots = NonNull::from(Box::leak(slots.into_boxed_slice()));
        // SAFETY: a fresh allocation, referenced only by the socket built here, which is
        // dropped before the slots are freed.
        let slots_ref: &'static mut [PeerSlot<'static>] = unsafe { &mut *slots.as_ptr() };
        let socket = if layout.trie > 0 {
            let memory = SubscriptionMemory::new(leak_bytes(layout.trie, &mut buffers))
                .with_notifications(leak_bytes(layout.notifications, &mut buffers));
            Socket::with_subscriptions(cfg, slots_ref, memory)
        } else {
            Socket::new(cfg, slots_ref)
        };
        OwnedSocket {
            socket: ManuallyDrop::new(socket),
            slots,
            buffers,
            identity,
            security,
        }
    }

    /// The core socket. Callers use it in place and never move it out (no `mem::swap` or
    /// `mem::replace`): it must be dropped here, before its memory.
    pub(crate) fn core(&mut self) -> &mut Socket<'static, 'static> {
        &mut self.socket
    }
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        // SAFETY: the socket is dropped exactly once, here, and not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.socket) };
        // SAFETY: each pointer came from `Box::leak` of a boxed slice of the same type, is
        // freed once, and nothing references the memory any more: the socket, the only
        // holder of references into it, is gone (the slots are freed before the buffers
        // their sessions pointed into).
        unsafe {
            drop(Box::from_raw(self.slots.as_ptr()));
            for b in self.buffers.drain(..) {
                drop(Box::from_raw(b.as_ptr()));
            }
            drop(Box::from_raw(self.identity.as_ptr()));
            if let Some(m) = self.security.take() {
                drop(Box::from_raw(m.as_ptr()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zmtp_core::{Config, Instant, Role, SocketType};

    #[test]
    fn builds_uses_and_frees() {
        for _ in 0..3 {
            let cfg = SocketConfig::new(Config::new(SocketType::Dealer));
            let layout = Layout {
                peers: 2,
                buffer: 1024,
                queue: 4096,
                trie: 0,
                notifications: 0,
            };
            let mut s = OwnedSocket::new(cfg, b"me", layout);
            let h = s.core().add_peer(Role::Connected, Instant::ZERO).unwrap();
            assert!(!s.core().poll_transmit(h).is_empty(), "greeting queued");
            drop(s);
        }
    }

    #[test]
    fn builds_pubsub_with_subscription_memory() {
        for ty in [SocketType::Sub, SocketType::XPub] {
            let cfg = SocketConfig::new(Config::new(ty));
            let layout = Layout {
                peers: 2,
                buffer: 1024,
                queue: 4096,
                trie: zmtp_core::socket::subscription_memory(ty, 2, 16),
                notifications: if ty == SocketType::XPub { 4096 } else { 0 },
            };
            let mut s = OwnedSocket::new(cfg, b"", layout);
            if ty == SocketType::Sub {
                s.core().subscribe(b"topic").unwrap();
                assert_eq!(s.core().subscription_stats().topics, 1);
            }
            let h = s.core().add_peer(Role::Connected, Instant::ZERO).unwrap();
            assert!(!s.core().poll_transmit(h).is_empty(), "greeting queued");
            drop(s);
        }
    }
}
