//! Subscriptions as a path-compressed trie (a radix tree) laid out in caller memory.
//!
//! RFC 29 §"The PUB Socket Type": "SHALL perform a binary comparison of the subscription
//! against the start of the first frame of the message": a message matches when a
//! subscription is a byte prefix of its first frame; the empty subscription matches everything, the
//! empty message included. A lookup walks the trie along the key, so its cost grows with the
//! key's length and the branching met on the way, never with the number of subscriptions that
//! cannot match.
//!
//! # Two flavours
//!
//! - **Counted** ([`Trie::counted`]): each topic carries a count (SUB, XSUB: subscribing twice
//!   needs two unsubscribes, PROTOCOL.md "Subscriptions").
//! - **Member sets** ([`Trie::sets`]): each topic carries a set of members, as a bitmask (PUB,
//!   XPUB: the peers subscribed to it; set semantics per peer, like libzmq's `mtrie`).
//!
//! # Memory layout
//!
//! The caller's byte slice holds, in sets mode, a `ceil(members / 8)`-byte scratch mask
//! first (the result of [`Trie::match_members`]), then an array of fixed-size nodes:
//!
//! | bytes        | field                                                          |
//! |--------------|----------------------------------------------------------------|
//! | 0..4         | parent node index (u32 LE)                                     |
//! | 4..8         | first child (u32 LE; 0 = none)                                 |
//! | 8..12        | next sibling (u32 LE; 0 = none; next free node when free)      |
//! | 12           | label length, 0..=[`LABEL_LEN`] (0xFF: the node is free)       |
//! | 13..24       | label: the bytes of the key this edge consumes                 |
//! | 24..         | value: a u32 LE count (counted) or the member bitmask (sets)   |
//!
//! Node 0 is the root (the empty topic) and is never anyone's child or sibling, so index 0
//! doubles as "none". Children are kept sorted by their label's first byte (a child search
//! stops early). Freed nodes go on a free list threaded through the sibling field.
//!
//! # Sizing
//!
//! A node is [`NODE_HEADER`] + 4 bytes (counted) or [`NODE_HEADER`] + `ceil(members / 8)`
//! bytes (sets); see [`counted_memory`] and [`sets_memory`]. Adding a topic of `n` bytes takes
//! at most `1 + ceil(n / LABEL_LEN)` new nodes (fewer when it shares a prefix with topics
//! already there: the shared part is stored once), plus the root once. Removing topics frees
//! their nodes and merges single-child chains back where the labels fit.
//!
//! When no node is left an insertion fails with [`TrieFull`] and changes nothing.
//!
//! # Complexity
//!
//! Lookup, insertion and removal: O(key length + sum of the sibling lists walked), at most
//! 256 siblings per level. Removing a member everywhere ([`Trie::remove_member_everywhere`])
//! scans every node once.

/// Bytes of key a node's label holds at most (path compression: longer runs take a chain of
/// nodes).
pub const LABEL_LEN: usize = 11;

/// Bytes of a node before its value.
pub const NODE_HEADER: usize = 13 + LABEL_LEN;

const NIL: u32 = 0;
const FREE: u8 = 0xFF;
const PARENT: usize = 0;
const CHILD: usize = 4;
const SIBLING: usize = 8;
const LEN: usize = 12;
const LABEL: usize = 13;
const VALUE: usize = NODE_HEADER;

/// Bytes needed for a counted trie of `nodes` nodes (root included).
pub const fn counted_memory(nodes: usize) -> usize {
    nodes.saturating_mul(NODE_HEADER + 4)
}

/// Bytes needed for a member-set trie of `nodes` nodes (root included) over `members`
/// members (scratch mask included).
pub const fn sets_memory(members: usize, nodes: usize) -> usize {
    let w = members.div_ceil(8);
    nodes.saturating_mul(NODE_HEADER + w).saturating_add(w)
}

/// The trie's memory has no node left for a new topic. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrieFull;

/// What [`Trie::insert_member`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemberAdded {
    /// No member had this topic before (libzmq XPUB: a "unique" subscription).
    pub new_topic: bool,
    /// The member already had this topic (nothing changed).
    pub already_member: bool,
}

/// What [`Trie::remove_member`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemberRemoved {
    /// The member had this topic (and no longer has).
    pub was_member: bool,
    /// The topic has no member left (it was the last one).
    pub topic_gone: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counted,
    Sets,
}

/// Read access to the node array.
#[derive(Clone, Copy)]
struct View<'a> {
    nodes: &'a [u8],
    node_len: usize,
}

fn read_u32(n: &[u8], at: usize) -> u32 {
    match n.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => NIL,
    }
}

fn write_u32(n: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = n.get_mut(at..at.saturating_add(4)) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

fn label_of(n: &[u8]) -> &[u8] {
    let len = usize::from(n.get(LEN).copied().unwrap_or(0));
    if len > LABEL_LEN {
        return &[];
    }
    n.get(LABEL..LABEL.saturating_add(len)).unwrap_or(&[])
}

fn value_of(n: &[u8]) -> &[u8] {
    n.get(VALUE..).unwrap_or(&[])
}

fn nonzero(v: &[u8]) -> bool {
    v.iter().any(|&b| b != 0)
}

fn bit(mask: &[u8], i: usize) -> bool {
    mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl<'a> View<'a> {
    #[inline]
    fn node(self, i: u32) -> Option<&'a [u8]> {
        let start = (i as usize).checked_mul(self.node_len)?;
        self.nodes.get(start..start.checked_add(self.node_len)?)
    }

    /// The child of `n` whose label starts with `b`, with the sibling before it (or the
    /// sibling after which a child starting with `b` would go, and `None`).
    #[inline]
    fn find_child(self, n: &[u8], b: u8) -> (u32, Option<u32>) {
        let mut prev = NIL;
        let mut c = read_u32(n, CHILD);
        while c != NIL {
            let Some(cn) = self.node(c) else {
                return (prev, None);
            };
            let first = label_of(cn).first().copied().unwrap_or(0);
            if first == b {
                return (prev, Some(c));
            }
            if first > b {
                break;
            }
            prev = c;
            c = read_u32(cn, SIBLING);
        }
        (prev, None)
    }

    /// Walks `key` from the root, calling `visit` with the value of every node whose path is
    /// a prefix of `key` (the root first); stops early when `visit` returns true.
    #[inline]
    fn walk(self, key: &[u8], mut visit: impl FnMut(&[u8]) -> bool) -> bool {
        let mut node = 0u32;
        let mut rest = key;
        loop {
            let Some(n) = self.node(node) else {
                return false;
            };
            if visit(value_of(n)) {
                return true;
            }
            let Some(&b) = rest.first() else {
                return false;
            };
            let (_, Some(c)) = self.find_child(n, b) else {
                return false;
            };
            let Some(cn) = self.node(c) else {
                return false;
            };
            match rest.strip_prefix(label_of(cn)) {
                Some(r) => {
                    rest = r;
                    node = c;
                }
                None => return false,
            }
        }
    }

    /// The node whose path is exactly `topic`.
    fn find(self, topic: &[u8]) -> Option<u32> {
        let mut node = 0u32;
        let mut rest = topic;
        loop {
            let n = self.node(node)?;
            let Some(&b) = rest.first() else {
                return Some(node);
            };
            let c = self.find_child(n, b).1?;
            rest = rest.strip_prefix(label_of(self.node(c)?))?;
            node = c;
        }
    }
}

/// A set of subscriptions in caller memory. See the [module documentation](self).
// `repr(C)`, in this order: an empty trie's zero fields are short runs around `kind`,
// stored in place, not 20 bytes in a row that become a call to a `memclr` variant a
// firmware may not otherwise link (174 bytes).
#[repr(C)]
pub struct Trie<'m> {
    scratch: &'m mut [u8],
    nodes: &'m mut [u8],
    node_len: usize,
    /// Members a set can hold (sets mode).
    members: usize,
    /// Nodes the memory holds.
    cap: u32,
    /// Nodes ever handed out (`0..top` are in use or on the free list).
    top: u32,
    kind: Kind,
    free_head: u32,
    free_count: u32,
    /// Nodes with a non-zero value.
    topics: usize,
}

impl core::fmt::Debug for Trie<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Trie")
            .field("kind", &self.kind)
            .field("capacity", &self.cap)
            .field("used", &self.nodes_used())
            .field("topics", &self.topics)
            .finish()
    }
}

impl<'m> Trie<'m> {
    /// A counted trie (SUB, XSUB) over `mem`: each topic has a use count.
    pub fn counted(mem: &'m mut [u8]) -> Self {
        Self::build(mem, Kind::Counted, 0, 4)
    }

    /// A member-set trie (PUB, XPUB) over `mem` for members `0..members`: each topic has the
    /// set of members subscribed to it.
    pub fn sets(mem: &'m mut [u8], members: usize) -> Self {
        let w = members.div_ceil(8);
        Self::build(mem, Kind::Sets, members, w)
    }

    fn build(mem: &'m mut [u8], kind: Kind, members: usize, value_len: usize) -> Self {
        let scratch_len = if kind == Kind::Sets {
            value_len.min(mem.len())
        } else {
            0
        };
        let (scratch, nodes) = mem.split_at_mut(scratch_len);
        let node_len = NODE_HEADER.saturating_add(value_len);
        let cap = u32::try_from(nodes.len() / node_len).unwrap_or(u32::MAX);
        let mut t = Trie {
            scratch,
            nodes,
            kind,
            node_len,
            members,
            cap,
            top: 0,
            free_head: NIL,
            free_count: 0,
            topics: 0,
        };
        if cap > 0 {
            t.top = 1;
            t.init(0, NIL, &[]);
        }
        t
    }

    fn view(&self) -> View<'_> {
        View {
            nodes: self.nodes,
            node_len: self.node_len,
        }
    }

    fn node(&self, i: u32) -> Option<&[u8]> {
        self.view().node(i)
    }

    fn node_mut(&mut self, i: u32) -> Option<&mut [u8]> {
        let start = (i as usize).checked_mul(self.node_len)?;
        let end = start.checked_add(self.node_len)?;
        self.nodes.get_mut(start..end)
    }

    fn get(&self, i: u32, field: usize) -> u32 {
        self.node(i).map_or(NIL, |n| read_u32(n, field))
    }

    fn set(&mut self, i: u32, field: usize, v: u32) {
        if let Some(n) = self.node_mut(i) {
            write_u32(n, field, v);
        }
    }

    fn label(&self, i: u32) -> &[u8] {
        self.node(i).map_or(&[], label_of)
    }

    fn value(&self, i: u32) -> &[u8] {
        self.node(i).map_or(&[], value_of)
    }

    fn is_live(&self, i: u32) -> bool {
        i < self.top && self.node(i).is_some_and(|n| n.get(LEN) != Some(&FREE))
    }

    fn set_label(&mut self, i: u32, label: &[u8]) {
        let len = label.len().min(LABEL_LEN);
        if let Some(n) = self.node_mut(i) {
            if let (Some(dst), Some(src)) = (
                n.get_mut(LABEL..LABEL.saturating_add(len)),
                label.get(..len),
            ) {
                dst.copy_from_slice(src);
            }
            if let Some(l) = n.get_mut(LEN) {
                *l = len as u8;
            }
        }
    }

    /// Fills node `i` as a fresh node under `parent` with `label` and a zero value.
    fn init(&mut self, i: u32, parent: u32, label: &[u8]) {
        if let Some(n) = self.node_mut(i) {
            n.fill(0);
            write_u32(n, PARENT, parent);
        }
        self.set_label(i, label);
    }

    /// Nodes that can still be handed out.
    fn available(&self) -> usize {
        let unused = self.cap.saturating_sub(self.top) as usize;
        unused.saturating_add(self.free_count as usize)
    }

    /// A free node (the caller checked [`available`](Self::available)).
    fn alloc(&mut self, parent: u32, label: &[u8]) -> Result<u32, TrieFull> {
        let i = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.get(i, SIBLING);
            self.free_count = self.free_count.saturating_sub(1);
            i
        } else if self.top < self.cap {
            let i = self.top;
            self.top = self.top.saturating_add(1);
            i
        } else {
            return Err(TrieFull);
        };
        self.init(i, parent, label);
        Ok(i)
    }

    fn free(&mut self, i: u32) {
        if i == 0 || !self.is_live(i) {
            return;
        }
        let head = self.free_head;
        if let Some(n) = self.node_mut(i) {
            n.fill(0);
            write_u32(n, SIBLING, head);
            if let Some(l) = n.get_mut(LEN) {
                *l = FREE;
            }
        }
        self.free_head = i;
        self.free_count = self.free_count.saturating_add(1);
    }

    /// Points whatever pointed at `old` in `parent`'s child list at `new` instead (`new`'s
    /// sibling must already be `old`'s, or `old`'s sibling when unlinking).
    fn relink(&mut self, parent: u32, old: u32, new: u32) {
        let mut prev = NIL;
        let mut c = self.get(parent, CHILD);
        let mut guard = self.top;
        while c != NIL && c != old && guard > 0 {
            prev = c;
            c = self.get(c, SIBLING);
            guard = guard.saturating_sub(1);
        }
        if c != old {
            return;
        }
        if prev == NIL {
            self.set(parent, CHILD, new);
        } else {
            self.set(prev, SIBLING, new);
        }
    }

    /// The node whose path is exactly `topic`, created (with a zero value) if missing.
    /// Checks first that every node it needs is available: on `TrieFull` nothing changed.
    fn insert_path(&mut self, topic: &[u8]) -> Result<u32, TrieFull> {
        if self.top == 0 {
            return Err(TrieFull);
        }
        let mut node = 0u32;
        let mut pos = 0usize;
        loop {
            let rest = topic.get(pos..).unwrap_or(&[]);
            let Some(&b) = rest.first() else {
                return Ok(node);
            };
            let n = self.node(node).ok_or(TrieFull)?;
            let (prev, found) = self.view().find_child(n, b);
            if let Some(c) = found {
                let label = self.label(c);
                let common = label
                    .iter()
                    .zip(rest.iter())
                    .take_while(|(a, b)| a == b)
                    .count();
                let label_len = label.len();
                if common == label_len {
                    node = c;
                    pos = pos.saturating_add(common);
                    continue;
                }
                // Split `c`: a new node `p` takes the common part, `c` keeps the rest (and
                // its index, its value and its children).
                let tail = rest.len().saturating_sub(common);
                let need = 1usize.saturating_add(tail.div_ceil(LABEL_LEN));
                if self.available() < need {
                    return Err(TrieFull);
                }
                let mut head = [0u8; LABEL_LEN];
                let mut suffix = [0u8; LABEL_LEN];
                let (Some(h), Some(s), Some(lh), Some(ls)) = (
                    head.get_mut(..common),
                    suffix.get_mut(..label_len.saturating_sub(common)),
                    label.get(..common),
                    label.get(common..),
                ) else {
                    return Err(TrieFull);
                };
                h.copy_from_slice(lh);
                s.copy_from_slice(ls);
                let suffix_len = s.len();
                let p = self.alloc(node, head.get(..common).unwrap_or(&[]))?;
                let c_sibling = self.get(c, SIBLING);
                self.set(p, SIBLING, c_sibling);
                self.set(p, CHILD, c);
                if prev == NIL {
                    self.set(node, CHILD, p);
                } else {
                    self.set(prev, SIBLING, p);
                }
                self.set(c, PARENT, p);
                self.set(c, SIBLING, NIL);
                self.set_label(c, suffix.get(..suffix_len).unwrap_or(&[]));
                node = p;
                pos = pos.saturating_add(common);
                continue;
            }
            // A new chain under `node`, its head between `prev` and prev's next sibling.
            let need = rest.len().div_ceil(LABEL_LEN);
            if self.available() < need {
                return Err(TrieFull);
            }
            let next = if prev == NIL {
                self.get(node, CHILD)
            } else {
                self.get(prev, SIBLING)
            };
            let mut parent = node;
            let mut first = true;
            for label in rest.chunks(LABEL_LEN) {
                let c = self.alloc(parent, label)?;
                if first {
                    first = false;
                    self.set(c, SIBLING, next);
                    if prev == NIL {
                        self.set(parent, CHILD, c);
                    } else {
                        self.set(prev, SIBLING, c);
                    }
                } else {
                    self.set(parent, CHILD, c);
                }
                parent = c;
            }
            return Ok(parent);
        }
    }

    /// Frees `i` and its ancestors while they hold no value and no child, and merges a
    /// value-less node with its only child when their labels fit one node (the child keeps
    /// its index: nodes with a value never move).
    pub(crate) fn prune(&mut self, i: u32) {
        let mut n = i;
        let mut guard = self.top;
        while guard > 0 {
            guard = guard.saturating_sub(1);
            if n == 0 || !self.is_live(n) || nonzero(self.value(n)) {
                return;
            }
            let parent = self.get(n, PARENT);
            let child = self.get(n, CHILD);
            if child == NIL {
                let sibling = self.get(n, SIBLING);
                self.relink(parent, n, sibling);
                self.free(n);
                n = parent;
                continue;
            }
            let n_len = self.label(n).len();
            let c_len = self.label(child).len();
            if self.get(child, SIBLING) == NIL && n_len.saturating_add(c_len) <= LABEL_LEN {
                let mut joined = [0u8; LABEL_LEN];
                let (Some(a), Some(b)) = (
                    joined.get_mut(..n_len),
                    self.node(n).map(label_of).filter(|l| l.len() == n_len),
                ) else {
                    return;
                };
                a.copy_from_slice(b);
                let (Some(a), Some(b)) = (
                    joined.get_mut(n_len..n_len.saturating_add(c_len)),
                    self.node(child).map(label_of).filter(|l| l.len() == c_len),
                ) else {
                    return;
                };
                a.copy_from_slice(b);
                let sibling = self.get(n, SIBLING);
                self.set_label(
                    child,
                    joined.get(..n_len.saturating_add(c_len)).unwrap_or(&[]),
                );
                self.set(child, PARENT, parent);
                self.set(child, SIBLING, sibling);
                self.relink(parent, n, child);
                self.free(n);
            }
            return;
        }
    }

    fn count_at(&self, i: u32) -> u32 {
        self.node(i).map_or(0, |n| read_u32(n, VALUE))
    }

    // ------------------------------------------------------------ public queries

    /// Nodes the memory holds (0: the memory cannot even hold the root, every insertion
    /// fails and nothing matches).
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Nodes in use, the root included.
    pub fn nodes_used(&self) -> usize {
        (self.top as usize).saturating_sub(self.free_count as usize)
    }

    /// Distinct topics held (with a non-zero count, or at least one member).
    pub fn topics(&self) -> usize {
        self.topics
    }

    /// Whether some topic is a prefix of `key` (RFC 29 matching of a message's first frame).
    #[inline]
    pub fn matches(&self, key: &[u8]) -> bool {
        self.view().walk(key, nonzero)
    }

    // ------------------------------------------------------------ counted

    /// Counted: adds one use of `topic`; returns its new count.
    pub fn add(&mut self, topic: &[u8]) -> Result<u32, TrieFull> {
        self.add_node(topic).map(|(_, c)| c)
    }

    /// Counted: adds one use of `topic`; returns its node and new count.
    pub(crate) fn add_node(&mut self, topic: &[u8]) -> Result<(u32, u32), TrieFull> {
        if self.kind != Kind::Counted {
            return Err(TrieFull);
        }
        let n = self.insert_path(topic)?;
        let old = self.count_at(n);
        let new = old.saturating_add(1);
        if let Some(node) = self.node_mut(n) {
            write_u32(node, VALUE, new);
        }
        if old == 0 {
            self.topics = self.topics.saturating_add(1);
        }
        Ok((n, new))
    }

    /// Counted: removes one use of `topic`; returns its new count, or `None` if it was not
    /// there. At 0 the topic is gone and its nodes freed.
    pub fn remove(&mut self, topic: &[u8]) -> Option<u32> {
        if self.kind != Kind::Counted {
            return None;
        }
        let n = self.view().find(topic)?;
        let old = self.count_at(n);
        if old == 0 {
            return None;
        }
        let new = old.saturating_sub(1);
        if let Some(node) = self.node_mut(n) {
            write_u32(node, VALUE, new);
        }
        if new == 0 {
            self.topics = self.topics.saturating_sub(1);
            self.prune(n);
        }
        Some(new)
    }

    /// Counted: the count of `topic` (0 if absent).
    pub fn count(&self, topic: &[u8]) -> u32 {
        self.view().find(topic).map_or(0, |n| self.count_at(n))
    }

    // ------------------------------------------------------------ sets

    /// Sets: adds `member` to `topic`'s set.
    pub fn insert_member(&mut self, topic: &[u8], member: usize) -> Result<MemberAdded, TrieFull> {
        if self.kind != Kind::Sets || member >= self.members {
            return Err(TrieFull);
        }
        let n = self.insert_path(topic)?;
        let value = self.value(n);
        let new_topic = !nonzero(value);
        let already_member = bit(value, member);
        if let Some(b) = self
            .node_mut(n)
            .and_then(|node| node.get_mut(VALUE.saturating_add(member / 8)))
        {
            *b |= 1 << (member % 8);
        }
        if new_topic {
            self.topics = self.topics.saturating_add(1);
        }
        Ok(MemberAdded {
            new_topic,
            already_member,
        })
    }

    /// Sets: removes `member` from `topic`'s set.
    pub fn remove_member(&mut self, topic: &[u8], member: usize) -> MemberRemoved {
        let none = MemberRemoved {
            was_member: false,
            topic_gone: false,
        };
        if self.kind != Kind::Sets {
            return none;
        }
        let Some(n) = self.view().find(topic) else {
            return none;
        };
        if !bit(self.value(n), member) {
            return none;
        }
        let topic_gone = self.clear_member(n, member);
        if topic_gone {
            self.prune(n);
        }
        MemberRemoved {
            was_member: true,
            topic_gone,
        }
    }

    /// Sets: whether `member` has `topic`.
    pub fn is_member(&self, topic: &[u8], member: usize) -> bool {
        self.view()
            .find(topic)
            .is_some_and(|n| bit(self.value(n), member))
    }

    /// Sets: the members with a topic that is a prefix of `key`, as a bitmask (bit `i % 8`
    /// of byte `i / 8` is member `i`), valid until the next call.
    #[inline]
    pub fn match_members(&mut self, key: &[u8]) -> &[u8] {
        self.scratch.fill(0);
        if self.kind == Kind::Sets {
            let view = View {
                nodes: self.nodes,
                node_len: self.node_len,
            };
            let scratch = &mut *self.scratch;
            view.walk(key, |v| {
                for (a, b) in scratch.iter_mut().zip(v) {
                    *a |= b;
                }
                false
            });
        }
        self.scratch
    }

    /// Sets: removes `member` from every topic; `gone` is called with each topic that had
    /// `member` and whether it now has no member left (before that topic's nodes are freed:
    /// [`topic_len`](Self::topic_len) and [`topic_pieces`](Self::topic_pieces) work on it).
    pub fn remove_member_everywhere(
        &mut self,
        member: usize,
        mut gone: impl FnMut(&Self, u32, bool),
    ) {
        let mut from = 0u32;
        while let Some(n) = self.next_with_member(from, member) {
            let emptied = self.clear_member(n, member);
            gone(self, n, emptied);
            if emptied {
                self.prune(n);
            }
            from = n.saturating_add(1);
        }
    }

    fn next_with_member(&self, from: u32, member: usize) -> Option<u32> {
        (from..self.top).find(|&i| self.is_live(i) && bit(self.value(i), member))
    }

    /// Clears `member`'s bit at node `n`; true if the node's set is now empty.
    fn clear_member(&mut self, n: u32, member: usize) -> bool {
        if let Some(b) = self
            .node_mut(n)
            .and_then(|node| node.get_mut(VALUE.saturating_add(member / 8)))
        {
            *b &= !(1 << (member % 8));
        }
        let emptied = !nonzero(self.value(n));
        if emptied {
            self.topics = self.topics.saturating_sub(1);
        }
        emptied
    }

    // ------------------------------------------------------------ topics by node

    /// The first node at index `from` or later that holds a topic (counted: count > 0;
    /// sets: a member). Nodes with a topic keep their index while the topic stays, so a
    /// scan by index sees every topic that is present throughout the scan.
    pub fn next_topic(&self, from: u32) -> Option<u32> {
        (from..self.top).find(|&i| self.is_live(i) && nonzero(self.value(i)))
    }

    /// Length of the topic of node `n`.
    pub fn topic_len(&self, n: u32) -> usize {
        let mut len = 0usize;
        let mut i = n;
        let mut guard = self.top;
        while i != 0 && guard > 0 && self.is_live(i) {
            len = len.saturating_add(self.label(i).len());
            i = self.get(i, PARENT);
            guard = guard.saturating_sub(1);
        }
        len
    }

    /// Calls `sink` with the pieces of node `n`'s topic, in order (no buffer needed: the path
    /// is walked down from the root, O(depth²) node reads).
    pub fn topic_pieces(&self, n: u32, mut sink: impl FnMut(&[u8])) {
        if !self.is_live(n) {
            return;
        }
        let mut at = 0u32;
        let mut outer = self.top;
        while at != n && outer > 0 {
            outer = outer.saturating_sub(1);
            // The ancestor of `n` (or `n` itself) whose parent is `at`.
            let mut a = n;
            let mut inner = self.top;
            while self.get(a, PARENT) != at && inner > 0 {
                a = self.get(a, PARENT);
                inner = inner.saturating_sub(1);
                if a == 0 {
                    return;
                }
            }
            sink(self.label(a));
            at = a;
        }
    }

    /// Counted: the count at node `n`.
    pub fn count_of(&self, n: u32) -> u32 {
        if self.kind == Kind::Counted && self.is_live(n) {
            self.count_at(n)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &Trie<'_>, n: u32) -> Vec<u8> {
        let mut v = Vec::new();
        t.topic_pieces(n, |p| v.extend_from_slice(p));
        assert_eq!(v.len(), t.topic_len(n));
        v
    }

    #[test]
    fn counted_prefix_matching_and_counts() {
        let mut mem = vec![0u8; counted_memory(64)];
        let mut t = Trie::counted(&mut mem);
        assert!(!t.matches(b""));
        assert_eq!(t.add(b"abc"), Ok(1));
        assert_eq!(t.add(b"abc"), Ok(2));
        assert!(t.matches(b"abcdef"));
        assert!(t.matches(b"abc"));
        assert!(!t.matches(b"ab"));
        assert!(!t.matches(b"abd"));
        assert_eq!(t.add(b"ab"), Ok(1));
        assert!(t.matches(b"ab"));
        assert_eq!(t.remove(b"abc"), Some(1));
        assert_eq!(t.remove(b"abc"), Some(0));
        assert_eq!(t.remove(b"abc"), None);
        assert!(!t.matches(b"abd") || t.matches(b"ab"));
        assert_eq!(t.remove(b"ab"), Some(0));
        assert_eq!(t.nodes_used(), 1, "only the root is left");
        assert_eq!(t.add(b""), Ok(1));
        assert!(t.matches(b""));
        assert!(t.matches(b"anything"));
    }

    #[test]
    fn long_topics_split_and_merge() {
        let mut mem = vec![0u8; counted_memory(64)];
        let mut t = Trie::counted(&mut mem);
        let long = b"0123456789abcdefghijklmnopqrstuvwxyz";
        t.add(long).unwrap();
        assert_eq!(t.nodes_used(), 1 + long.len().div_ceil(LABEL_LEN));
        for k in 0..=long.len() {
            assert_eq!(t.matches(&long[..k]), k == long.len(), "{k}");
        }
        t.add(b"0123").unwrap();
        t.add(b"0124").unwrap();
        t.add(b"012345678X").unwrap();
        for (k, want) in [
            (&b"0123"[..], 1),
            (b"0124", 1),
            (b"012345678X", 1),
            (b"01234", 0),
            (long, 1),
        ] {
            assert_eq!(t.count(k), want, "{:?}", core::str::from_utf8(k));
        }
        let n = t.view().find(long).unwrap();
        assert_eq!(topic(&t, n), long);
        for k in [&b"0123"[..], b"0124", b"012345678X"] {
            assert_eq!(t.remove(k), Some(0));
        }
        assert!(t.matches(long));
        assert_eq!(
            t.view().find(long),
            Some(n),
            "a node with a value keeps its index"
        );
        assert_eq!(t.remove(long), Some(0));
        assert_eq!(t.nodes_used(), 1);
    }

    #[test]
    fn full_fails_cleanly() {
        let mut mem = vec![0u8; counted_memory(3)];
        let mut t = Trie::counted(&mut mem);
        t.add(b"abcdefghijk").unwrap(); // one node
        t.add(b"x").unwrap(); // one node
        assert_eq!(t.add(b"yy"), Err(TrieFull));
        assert_eq!(t.add(b"abcXX"), Err(TrieFull), "a split needs two nodes");
        assert_eq!(t.count(b"abcdefghijk"), 1);
        assert_eq!(t.topics(), 2);
        assert!(!t.matches(b"abcX"));
        t.remove(b"x");
        t.add(b"abcdefghijkl").unwrap();
        let mut none: [u8; 0] = [];
        let mut z = Trie::counted(&mut none);
        assert_eq!(z.add(b""), Err(TrieFull));
        assert!(!z.matches(b""));
    }

    #[test]
    fn sets_per_member() {
        let mut mem = vec![0u8; sets_memory(10, 64)];
        let mut t = Trie::sets(&mut mem, 10);
        let a = t.insert_member(b"a", 3).unwrap();
        assert!(a.new_topic && !a.already_member);
        let a = t.insert_member(b"a", 3).unwrap();
        assert!(!a.new_topic && a.already_member);
        let a = t.insert_member(b"a", 9).unwrap();
        assert!(!a.new_topic && !a.already_member);
        t.insert_member(b"", 1).unwrap();
        assert_eq!(t.match_members(b"abc"), &[0b0000_1010, 0b10]);
        assert_eq!(t.match_members(b"b"), &[0b0000_0010, 0]);
        let r = t.remove_member(b"a", 3);
        assert!(r.was_member && !r.topic_gone);
        let r = t.remove_member(b"a", 3);
        assert!(!r.was_member);
        let mut seen = Vec::new();
        t.remove_member_everywhere(9, |t, n, gone| seen.push((topic(t, n), gone)));
        assert_eq!(seen, [(b"a".to_vec(), true)]);
        assert_eq!(t.match_members(b"abc"), &[0b10, 0]);
        assert_eq!(t.nodes_used(), 1);
        assert!(t.insert_member(b"x", 10).is_err());
    }
}
