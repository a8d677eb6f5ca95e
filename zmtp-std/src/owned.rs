//! A zmtp-core [`Socket`] together with the memory it borrows.
//!
//! `Socket<'s, 'b>` borrows its peer slots (`'s`) and their buffers (`'b`) from the caller:
//! on a microcontroller those are `static` arrays. Here the I/O thread allocates them and
//! hands the core `'static` references to them: the slots and the subscription memory when
//! the socket is built, and each connection's buffers and queues (one allocation) when the
//! connection arrives ([`OwnedSocket::add_peer`], into an empty slot with
//! [`Socket::add_peer_with`]). When a connection leaves ([`OwnedSocket::remove_peer`]) the
//! core hands its memory back: it is kept for the next connection (at most [`POOL`] such)
//! or freed. Everything left is freed when the socket goes. That needs the only `unsafe`
//! code of this crate, kept in this module:
//!
//! 1. every allocation is leaked and turned into a raw pointer ([`NonNull`]) at once, and the
//!    `&'static mut` the core gets is derived from that kept pointer (the pointer is the
//!    parent of the reference, so freeing through it later invalidates nothing still in use);
//! 2. the core socket, the only holder of those references, is dropped first
//!    ([`ManuallyDrop`]), then the slots, then the byte buffers;
//! 3. the core socket never leaves an [`OwnedSocket`]: it is only lent out by
//!    [`OwnedSocket::core`], and no zmtp-core method hands out a reference with the `'b`
//!    lifetime (everything it returns borrows the socket), except the memory `remove_peer`
//!    and a refused `add_peer_with` give back *by value*;
//! 4. a connection's allocation is freed before the socket only when all of it has come
//!    back: the four `&'static mut` pieces returned must lie inside the allocation and their
//!    lengths must add up to all of it. Mutable references are never aliased and cannot be
//!    copied, so pieces that tile the allocation are the only references into it: once they
//!    are dropped nothing can touch it, whatever the core did. Memory that does not come
//!    back whole (never, in practice) is freed with the socket, as in 2.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::security::Material;
use zmtp_core::socket::{
    AddPeerError, PeerHandle, PeerMemory, PeerSlot, Socket, SocketConfig, SubscriptionMemory,
};
use zmtp_core::{Instant, Role};

/// Memory of connections gone kept for the next ones (per socket): a reconnecting or
/// churning peer does not allocate each time; more than this is freed.
pub(crate) const POOL: usize = 2;

/// Sizes of the memory of one socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Peer slots (the most connections at once).
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

impl Layout {
    /// Bytes of one connection's memory: two buffers and two queues.
    fn per_peer(&self) -> usize {
        self.buffer
            .saturating_mul(2)
            .saturating_add(self.queue.saturating_mul(2))
    }
}

/// One connection's allocation: the kept pointer, and how many of its bytes are lent (the
/// allocation has at least one byte, so no two share an address).
struct PeerAlloc {
    ptr: NonNull<[u8]>,
    used: usize,
}

/// A zmtp-core socket that owns its peer slots, their memory, its subscription memory and
/// its identity.
pub(crate) struct OwnedSocket {
    /// Borrows everything below: dropped first, by hand.
    socket: ManuallyDrop<Socket<'static, 'static>>,
    slots: NonNull<[PeerSlot<'static>]>,
    /// Allocations for the socket's life (subscription memory).
    buffers: Vec<NonNull<[u8]>>,
    /// Each connection's allocation, lent to the core or in `pool`, by its address.
    peers: HashMap<usize, PeerAlloc>,
    /// Memory of connections gone, for the next ones (references into `peers`).
    pool: Vec<PeerMemory<'static>>,
    layout: Layout,
    identity: NonNull<[u8]>,
    /// PLAIN/CURVE keys and credentials the socket's `Security` borrows (wiped on drop).
    security: Option<NonNull<Material>>,
}

// SAFETY: an `OwnedSocket` owns everything its pointers point to, exclusively, as a `Box`
// would: the core socket (the only holder of references into that memory) lives inside it
// and is only lent out by `&mut self` (rule 3 above), so moving the whole to another
// thread moves every reference along with the memory, and no other thread keeps one. What
// the pointers point to is plain bytes, peer slots and `Material` (keys), all `Send`; the
// core socket itself holds only references to them and plain data. The I/O loop that owns
// the sockets is run by one thread at a time, under a mutex (application threads may run
// it in the I/O thread's place: `shared::Lead`).
unsafe impl Send for OwnedSocket {}

// The claims above, checked by the compiler: what the pointers own, and the core socket.
const _: () = {
    fn send<T: Send>() {}
    #[allow(dead_code)]
    fn check() {
        send::<Socket<'static, 'static>>();
        send::<PeerSlot<'static>>();
        send::<PeerMemory<'static>>();
        send::<Material>();
    }
};

/// Allocates `len` zeroed bytes and leaks them: the pointer, and a `'static` reference
/// derived from it.
fn leak_bytes(len: usize, keep: &mut Vec<NonNull<[u8]>>) -> &'static mut [u8] {
    // `vec![0; n]` allocates zeroed memory: the system maps large buffers lazily, so pages
    // never touched cost no RAM.
    let ptr = NonNull::from(Box::leak(vec![0u8; len].into_boxed_slice()));
    keep.push(ptr);
    // SAFETY: `ptr` is a fresh, unaliased allocation; the reference is derived from the kept
    // pointer (see the module docs, 1) and is only used by the core socket, which is dropped
    // before the allocation is freed in `Drop` (2).
    unsafe { &mut *ptr.as_ptr() }
}

/// Whether `piece` lies inside `[start, start + len)`.
fn inside(piece: &[u8], start: usize, len: usize) -> bool {
    let p = piece.as_ptr() as usize;
    p >= start
        && p.checked_add(piece.len())
            .is_some_and(|end| end <= start.saturating_add(len))
}

impl OwnedSocket {
    /// Builds a core socket over `layout` with `cfg`, whose identity is replaced by a copy
    /// of `identity` owned here. Connections' memory is allocated as they arrive.
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

        let mut buffers = Vec::with_capacity(2);
        let slots: Vec<PeerSlot<'static>> = (0..layout.peers).map(|_| PeerSlot::empty()).collect();
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
            peers: HashMap::new(),
            pool: Vec::new(),
            layout,
            identity,
            security,
        }
    }

    /// The core socket. Callers use it in place and never move it out (no `mem::swap` or
    /// `mem::replace`): it must be dropped here, before its memory.
    pub(crate) fn core(&mut self) -> &mut Socket<'static, 'static> {
        &mut self.socket
    }

    /// Starts a session with a new peer (see [`Socket::add_peer`]), in memory of its own:
    /// from the pool, or allocated now. A CURVE socket passes the connection's randomness.
    pub(crate) fn add_peer(
        &mut self,
        role: Role,
        now: Instant,
        curve: Option<zmtp_core::mechanism::curve::CurveRandom>,
    ) -> Result<PeerHandle, AddPeerError> {
        if self.socket.peers().count() >= self.layout.peers {
            // Do not allocate for a connection that has no slot.
            return Err(AddPeerError::NoFreeSlot);
        }
        let memory = match self.pool.pop() {
            Some(m) => m,
            None => self.allocate_peer(),
        };
        let added = match curve {
            Some(r) => self.socket.add_peer_curve_with(memory, role, now, r),
            None => self.socket.add_peer_with(memory, role, now),
        };
        match added {
            Ok(h) => Ok(h),
            Err((e, memory)) => {
                if let Some(alloc) = self.take_back(memory) {
                    free(alloc);
                }
                Err(e)
            }
        }
    }

    /// Frees a peer's slot (see [`Socket::remove_peer`]); its memory goes to the pool or is
    /// freed.
    pub(crate) fn remove_peer(&mut self, h: PeerHandle) {
        if let Some(memory) = self.socket.remove_peer(h) {
            if let Some(alloc) = self.take_back(memory) {
                free(alloc);
            }
        }
    }

    /// Bytes allocated for connections now (lent and pooled).
    #[cfg(test)]
    fn peer_bytes(&self) -> usize {
        self.peers.values().map(|a| a.used).sum()
    }

    /// One connection's memory: a zeroed allocation split into two buffers and two queues.
    fn allocate_peer(&mut self) -> PeerMemory<'static> {
        let used = self.layout.per_peer();
        // At least one byte: every allocation has its own address (the map's key).
        let ptr = NonNull::from(Box::leak(vec![0u8; used.max(1)].into_boxed_slice()));
        self.peers
            .insert(ptr.as_ptr() as *mut u8 as usize, PeerAlloc { ptr, used });
        // SAFETY: a fresh, unaliased allocation; the reference is derived from the kept
        // pointer (module docs, 1) and split into the pieces lent to the core, freed only
        // once they all came back (4) or after the socket is dropped (2).
        let all: &'static mut [u8] = unsafe { &mut *ptr.as_ptr() };
        let (all, _) = all.split_at_mut(used);
        let (rx, rest) = all.split_at_mut(self.layout.buffer);
        let (tx, rest) = rest.split_at_mut(self.layout.buffer);
        let (recv_queue, send_queue) = rest.split_at_mut(self.layout.queue);
        PeerMemory {
            rx,
            tx,
            recv_queue,
            send_queue,
        }
    }

    /// Memory a connection no longer uses: into the pool; or, if it all came back, out of
    /// `peers`, for the caller to [`free`] once this call (whose argument holds the pieces,
    /// references that must stay valid while it runs) has returned.
    fn take_back(&mut self, memory: PeerMemory<'static>) -> Option<PeerAlloc> {
        if self.pool.len() < POOL {
            self.pool.push(memory);
            return None;
        }
        let key = memory.rx.as_ptr() as usize;
        // Not ours whole (cannot happen): freed with the socket.
        let alloc = self.peers.get(&key)?;
        let start = alloc.ptr.as_ptr() as *mut u8 as usize;
        let pieces = [
            &*memory.rx,
            &*memory.tx,
            &*memory.recv_queue,
            &*memory.send_queue,
        ];
        let whole = pieces.iter().all(|p| inside(p, start, alloc.used))
            && pieces.iter().map(|p| p.len()).sum::<usize>() == alloc.used;
        debug_assert!(whole, "a connection's memory came back in part");
        // The pieces were the only references into the allocation (module docs, 4); they
        // are not used after this.
        whole.then(|| self.peers.remove(&key)).flatten()
    }
}

/// Frees a connection's allocation that [`OwnedSocket::take_back`] took out of `peers`.
fn free(alloc: PeerAlloc) {
    // SAFETY: from `Box::leak` of a boxed slice in `allocate_peer`, freed once (it left the
    // map), and nothing references it any more (module docs, 4).
    drop(unsafe { Box::from_raw(alloc.ptr.as_ptr()) });
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        // SAFETY: the socket is dropped exactly once, here, and not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.socket) };
        // References into the connections' memory end before it is freed.
        self.pool.clear();
        // SAFETY: each pointer came from `Box::leak` of a boxed slice (or box) of the same
        // type, is freed once, and nothing references the memory any more: the socket, the
        // only holder of references into it, is gone, and so is the pool (the slots are
        // freed before the buffers their sessions pointed into).
        unsafe {
            drop(Box::from_raw(self.slots.as_ptr()));
            for b in self.buffers.drain(..) {
                drop(Box::from_raw(b.as_ptr()));
            }
            for (_, a) in self.peers.drain() {
                drop(Box::from_raw(a.ptr.as_ptr()));
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
    use zmtp_core::{Config, SocketType};

    fn layout(peers: usize) -> Layout {
        Layout {
            peers,
            buffer: 1024,
            queue: 4096,
            trie: 0,
            notifications: 0,
        }
    }

    #[test]
    fn builds_uses_and_frees() {
        for _ in 0..3 {
            let cfg = SocketConfig::new(Config::new(SocketType::Dealer));
            let mut s = OwnedSocket::new(cfg, b"me", layout(2));
            assert_eq!(s.peer_bytes(), 0, "nothing allocated before a connection");
            let h = s.add_peer(Role::Connected, Instant::ZERO, None).unwrap();
            assert!(!s.core().poll_transmit(h).is_empty(), "greeting queued");
            assert_eq!(s.peer_bytes(), 2 * 1024 + 2 * 4096);
            // Dropped with a connection in place: its memory goes with the socket.
            drop(s);
        }
    }

    #[test]
    fn connection_memory_is_pooled_then_freed() {
        let per_peer = 2 * 1024 + 2 * 4096;
        let cfg = SocketConfig::new(Config::new(SocketType::Dealer));
        let mut s = OwnedSocket::new(cfg, b"", layout(4));
        let hs: Vec<_> = (0..4)
            .map(|_| s.add_peer(Role::Connected, Instant::ZERO, None).unwrap())
            .collect();
        assert_eq!(s.peer_bytes(), 4 * per_peer);
        assert_eq!(
            s.add_peer(Role::Connected, Instant::ZERO, None),
            Err(AddPeerError::NoFreeSlot)
        );
        assert_eq!(s.peer_bytes(), 4 * per_peer, "no allocation without a slot");
        for h in &hs {
            s.core().close_peer(*h);
            s.remove_peer(*h);
        }
        assert_eq!(s.pool.len(), POOL);
        assert_eq!(s.peer_bytes(), POOL * per_peer, "the rest is freed");
        // The pool serves the next connections; then new memory.
        for _ in 0..3 {
            let h = s.add_peer(Role::Accepted, Instant::ZERO, None).unwrap();
            assert!(!s.core().poll_transmit(h).is_empty());
        }
        assert!(s.pool.is_empty());
        assert_eq!(s.peer_bytes(), 3 * per_peer);
    }

    #[test]
    fn refused_memory_is_taken_back() {
        // A receive buffer too small for a session: the core refuses the peer.
        let cfg = SocketConfig::new(Config::new(SocketType::Dealer));
        let mut s = OwnedSocket::new(
            cfg,
            b"",
            Layout {
                buffer: 16,
                ..layout(1)
            },
        );
        for _ in 0..3 {
            assert!(matches!(
                s.add_peer(Role::Connected, Instant::ZERO, None),
                Err(AddPeerError::Config(_))
            ));
        }
        assert_eq!(s.pool.len(), 1, "the one allocation is reused");
        assert_eq!(s.peers.len(), 1);
    }

    #[test]
    fn builds_pubsub_with_subscription_memory() {
        for ty in [SocketType::Sub, SocketType::XPub] {
            let cfg = SocketConfig::new(Config::new(ty));
            let layout = Layout {
                trie: zmtp_core::socket::subscription_memory(ty, 2, 16),
                notifications: if ty == SocketType::XPub { 4096 } else { 0 },
                ..layout(2)
            };
            let mut s = OwnedSocket::new(cfg, b"", layout);
            if ty == SocketType::Sub {
                s.core().subscribe(b"topic").unwrap();
                assert_eq!(s.core().subscription_stats().topics, 1);
            }
            let h = s.add_peer(Role::Connected, Instant::ZERO, None).unwrap();
            assert!(!s.core().poll_transmit(h).is_empty(), "greeting queued");
            drop(s);
        }
    }
}
