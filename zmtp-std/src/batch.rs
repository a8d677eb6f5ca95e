//! [`Batch`]: a queue of multipart messages in a few reusable allocations, the unit the
//! application and the I/O thread hand each other (see [`crate::shared`]).
//!
//! Short frames are copied back to back into one byte buffer; frames of at least
//! [`OWN_FRAME`] bytes keep an allocation of their own, which moves between the threads
//! without being copied. A batch is filled by one side and, once handed over whole (a swap
//! under the queue's lock), read front to back by the other; a consumed batch is cleared
//! and handed back, keeping its capacity. So in a steady stream of small messages no
//! allocation is made per message, and the two threads take a lock per batch, not per
//! message.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use zmtp_core::socket::Part;

/// Frames of this many bytes or more travel in their own `Vec` (moved, not copied); shorter
/// ones are copied into the batch's byte buffer. At this size a copy costs about what an
/// allocation does.
pub(crate) const OWN_FRAME: usize = 8 * 1024;

/// A cleared batch keeps at most this much byte capacity (a burst of large messages does
/// not pin its memory for good).
const KEEP_BYTES: usize = 4 << 20;

/// A cleared batch keeps at most this many frame and message records.
const KEEP_RECORDS: usize = 64 * 1024;

/// At most this many bytes of spare bodies are kept per socket ([`Spares`]): enough for
/// the long messages one turn of the I/O loop reads or writes.
const SPARE_BYTES: usize = 4 << 20;

/// Spare bodies of more than this capacity are not kept (a burst of huge messages does not
/// pin its memory).
const SPARE_MAX: usize = 1 << 20;

/// Allocations of long frames' bodies, used again instead of being freed: the `Vec` that
/// `recv_into` replaces with a received long frame, a sent long frame's body once it is
/// written. The other side of the socket takes them for its next long frame (a body to
/// read a frame into, a copy of a frame to send), so a steady stream of long messages
/// makes no allocation per message: no page faults from memory the allocator handed back
/// to the system and takes again, and a recycled body that is already as long as the next
/// one is read into without being zeroed first (its old bytes are overwritten before
/// anyone sees them). Bodies of at most [`SPARE_MAX`] bytes each, [`SPARE_BYTES`] in all.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    bodies: Vec<Vec<u8>>,
    /// Their capacities' sum.
    bytes: usize,
}

impl Spares {
    /// Keeps `body` for later (or drops it: too short to be worth it, too large, or
    /// enough kept already).
    pub(crate) fn put(&self, body: Vec<u8>) {
        let cap = body.capacity();
        if !(OWN_FRAME..=SPARE_MAX).contains(&cap) {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.bytes.saturating_add(cap) <= SPARE_BYTES {
            kept.bytes += cap;
            kept.bodies.push(body);
        } else {
            // Freed after the lock is let go.
            drop(kept);
            drop(body);
        }
    }

    /// A kept body with room for at least `min` bytes, if there is one (its length and
    /// contents are whatever it held: the caller sets both).
    pub(crate) fn get(&self, min: usize) -> Option<Vec<u8>> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let i = kept.bodies.iter().rposition(|b| b.capacity() >= min)?;
        let body = kept.bodies.swap_remove(i);
        kept.bytes = kept.bytes.saturating_sub(body.capacity());
        Some(body)
    }
}

#[derive(Debug)]
enum Frame {
    /// `bytes[start..start + len]`.
    Inline {
        start: usize,
        len: usize,
    },
    Own(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    /// One past the message's last frame in `frames` (its first is the previous message's
    /// end, or 0).
    end: usize,
    /// What the producer tagged it with (see `Shared::deliver`).
    tag: u64,
}

/// Multipart messages, filled at the back and read from the front.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    frames: Vec<Frame>,
    msgs: Vec<Rec>,
    /// Messages before this one have been read.
    head: usize,
    /// Frames of message `head` already read (one at a time, `Socket::recv`).
    frame_head: usize,
    /// Messages read and already reported to the producer (see
    /// [`take_read`](Self::take_read)).
    released: usize,
}

impl Batch {
    /// Unread messages (a partly read one counts).
    pub(crate) fn len(&self) -> usize {
        self.msgs.len().saturating_sub(self.head)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every message, keeping (a bounded amount of) the capacity.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
        self.msgs.clear();
        self.head = 0;
        self.frame_head = 0;
        self.released = 0;
        if self.bytes.capacity() > KEEP_BYTES {
            self.bytes.shrink_to(KEEP_BYTES);
        }
        if self.frames.capacity() > KEEP_RECORDS {
            self.frames.shrink_to(KEEP_RECORDS);
        }
        if self.msgs.capacity() > KEEP_RECORDS {
            self.msgs.shrink_to(KEEP_RECORDS);
        }
    }

    // ------------------------------------------------------------ filling

    /// Adds a frame to the message being built (see [`end_msg`](Self::end_msg)): copied
    /// into the byte buffer, or into its own allocation if long.
    pub(crate) fn push_frame(&mut self, f: &[u8]) {
        if f.len() >= OWN_FRAME {
            self.frames.push(Frame::Own(f.to_vec()));
        } else {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(f);
            self.frames.push(Frame::Inline {
                start,
                len: f.len(),
            });
        }
    }

    /// Adds a frame already copied into its own allocation (long frames: the copy was made
    /// outside the queue's lock).
    pub(crate) fn push_frame_vec(&mut self, v: Vec<u8>) {
        if v.len() >= OWN_FRAME {
            self.frames.push(Frame::Own(v));
        } else {
            self.push_frame(&v);
        }
    }

    /// Adds a whole message of one short frame (shorter than [`OWN_FRAME`] goes inline,
    /// as [`push_frame`](Self::push_frame)), tagged `tag`.
    pub(crate) fn push_msg(&mut self, f: &[u8], tag: u64) {
        self.push_frame(f);
        self.end_msg(tag);
    }

    /// Ends the message made of the frames pushed since the last one ended.
    pub(crate) fn end_msg(&mut self, tag: u64) {
        self.msgs.push(Rec {
            end: self.frames.len(),
            tag,
        });
    }

    /// Moves `other`'s unread messages to the back of `self` (`other` is left cleared).
    pub(crate) fn append(&mut self, other: &mut Batch) {
        if self.msgs.is_empty() && self.frames.is_empty() {
            // Nothing here (and no message being built): take `other` whole.
            std::mem::swap(self, other);
            other.clear();
            return;
        }
        // `other`'s front message may be partly read: only its unread frames move.
        let first_frame = other.first_frame(other.head) + other.frame_head;
        let frame_base = self.frames.len();
        let byte_base = self.bytes.len();
        // Only the unread part of `other`'s bytes is needed, but bytes are shared between
        // frames: copying from the first unread inline frame's start is enough.
        let byte_from = other
            .frames
            .get(first_frame..)
            .unwrap_or(&[])
            .iter()
            .find_map(|f| match f {
                Frame::Inline { start, .. } => Some(*start),
                Frame::Own(_) => None,
            })
            .unwrap_or(other.bytes.len());
        self.bytes
            .extend_from_slice(other.bytes.get(byte_from..).unwrap_or(&[]));
        for f in other.frames.drain(first_frame..) {
            self.frames.push(match f {
                Frame::Inline { start, len } => Frame::Inline {
                    start: start - byte_from + byte_base,
                    len,
                },
                own => own,
            });
        }
        for r in other.msgs.get(other.head..).unwrap_or(&[]) {
            self.msgs.push(Rec {
                end: r.end - first_frame + frame_base,
                tag: r.tag,
            });
        }
        other.clear();
    }

    // ------------------------------------------------------------ reading

    /// Index in `frames` of message `i`'s first frame.
    fn first_frame(&self, i: usize) -> usize {
        match i.checked_sub(1) {
            Some(p) => self.msgs.get(p).map_or(0, |r| r.end),
            None => 0,
        }
    }

    fn frame<'a>(&'a self, f: &'a Frame) -> &'a [u8] {
        match f {
            Frame::Inline { start, len } => self
                .bytes
                .get(*start..start.saturating_add(*len))
                .unwrap_or(&[]),
            Frame::Own(v) => v,
        }
    }

    /// The unread frames of the front message.
    fn front_range(&self) -> Option<std::ops::Range<usize>> {
        let rec = self.msgs.get(self.head)?;
        Some(self.first_frame(self.head) + self.frame_head..rec.end)
    }

    /// The front message's tag.
    pub(crate) fn front_tag(&self) -> Option<u64> {
        self.msgs.get(self.head).map(|r| r.tag)
    }

    /// Messages read since the last call (or since the batch was filled), if they are at
    /// least half of the batch; they are then counted as reported.
    pub(crate) fn take_read(&mut self) -> Option<usize> {
        let read = self.head.saturating_sub(self.released);
        if read == 0 || read.saturating_mul(2) < self.msgs.len() {
            return None;
        }
        self.released = self.head;
        Some(read)
    }

    /// Whether the front message has been partly read (frames of it were taken, more
    /// follow).
    pub(crate) fn mid_message(&self) -> bool {
        self.frame_head > 0
    }

    /// Calls `f` with the front message's unread frames (no message: not called); the
    /// slices are on the stack for up to 8 frames.
    pub(crate) fn with_front<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> Option<R> {
        let range = self.front_range()?;
        let frames = self.frames.get(range).unwrap_or(&[]);
        if let [one] = frames {
            return Some(f(&[self.frame(one)]));
        }
        let mut on_stack: [&[u8]; 8] = [&[]; 8];
        if let Some(refs) = on_stack.get_mut(..frames.len()) {
            for (r, fr) in refs.iter_mut().zip(frames) {
                *r = self.frame(fr);
            }
            return Some(f(refs));
        }
        let on_heap: Vec<&[u8]> = frames.iter().map(|fr| self.frame(fr)).collect();
        Some(f(&on_heap))
    }

    /// Whether the front message has a frame of at least `min` bytes in its own allocation.
    pub(crate) fn front_has_own(&self, min: usize) -> bool {
        let Some(range) = self.front_range() else {
            return false;
        };
        self.frames
            .get(range)
            .unwrap_or(&[])
            .iter()
            .any(|f| matches!(f, Frame::Own(v) if v.len() >= min))
    }

    /// Calls `f` with the front message's unread frames as the core's parts: frames of at
    /// least `min` bytes in their own allocation as [`Part::Direct`] (their bodies stay
    /// here, see [`take_front_own`](Self::take_front_own)), the others as bytes.
    pub(crate) fn with_front_parts<R>(
        &self,
        min: usize,
        f: impl FnOnce(&[Part<'_>]) -> R,
    ) -> Option<R> {
        let range = self.front_range()?;
        let frames = self.frames.get(range).unwrap_or(&[]);
        let part = |fr| self.part(fr, min);
        let mut on_stack: [Part<'_>; 8] = [Part::Bytes(&[]); 8];
        if let Some(parts) = on_stack.get_mut(..frames.len()) {
            for (p, fr) in parts.iter_mut().zip(frames) {
                *p = part(fr);
            }
            return Some(f(parts));
        }
        let on_heap: Vec<Part<'_>> = frames.iter().map(part).collect();
        Some(f(&on_heap))
    }

    fn part<'a>(&'a self, fr: &'a Frame, min: usize) -> Part<'a> {
        match fr {
            Frame::Own(v) if v.len() >= min => Part::Direct(v.len() as u64),
            other => Part::Bytes(self.frame(other)),
        }
    }

    /// Moves the front message's frames of at least `min` bytes in their own allocation
    /// (the [`Part::Direct`]s of [`with_front_parts`](Self::with_front_parts)), in order,
    /// to the back of `out`. The message stays (drop it with
    /// [`skip_front`](Self::skip_front)).
    pub(crate) fn take_front_own(&mut self, min: usize, out: &mut VecDeque<Vec<u8>>) {
        let Some(range) = self.front_range() else {
            return;
        };
        for fr in self.frames.get_mut(range).unwrap_or(&mut []) {
            if let Frame::Own(v) = fr {
                if v.len() >= min {
                    out.push_back(std::mem::take(v));
                }
            }
        }
    }

    /// Drops the front message (or what is left of it).
    pub(crate) fn skip_front(&mut self) {
        if self.head < self.msgs.len() {
            self.head += 1;
            self.frame_head = 0;
        }
    }

    /// Takes the next frame of the front message, and whether more frames of it follow;
    /// the message leaves the batch with its last frame.
    pub(crate) fn take_frame(&mut self) -> Option<(Vec<u8>, bool)> {
        let range = self.front_range()?;
        let more = range.len() > 1;
        let v = match self.frames.get_mut(range.start) {
            Some(Frame::Own(v)) => std::mem::take(v),
            Some(Frame::Inline { start, len }) => {
                let (s, l) = (*start, *len);
                self.bytes
                    .get(s..s.saturating_add(l))
                    .unwrap_or(&[])
                    .to_vec()
            }
            // A message without frames: never made (every message has one).
            None => Vec::new(),
        };
        if more {
            self.frame_head += 1;
        } else {
            self.skip_front();
        }
        Some((v, more))
    }

    /// Takes the next frame of the front message into `out` (its old contents replaced,
    /// its allocation reused for a short frame; a long frame's own allocation replaces it,
    /// and `out`'s old one, if long, goes to `spare`), and whether more frames of it
    /// follow; the message leaves the batch with its last frame.
    pub(crate) fn take_frame_into(
        &mut self,
        out: &mut Vec<u8>,
        spare: &mut Option<Vec<u8>>,
    ) -> Option<bool> {
        let range = self.front_range()?;
        let more = range.len() > 1;
        match self.frames.get_mut(range.start) {
            Some(Frame::Own(v)) => {
                let old = std::mem::replace(out, std::mem::take(v));
                if old.capacity() >= OWN_FRAME {
                    *spare = Some(old);
                }
            }
            Some(Frame::Inline { start, len }) => {
                let (s, l) = (*start, *len);
                out.clear();
                out.extend_from_slice(self.bytes.get(s..s.saturating_add(l)).unwrap_or(&[]));
            }
            None => out.clear(),
        }
        if more {
            self.frame_head += 1;
        } else {
            self.skip_front();
        }
        Some(more)
    }

    /// Takes the front message's unread frames into `out`, reusing its frames'
    /// allocations (`out` ends up with exactly the message's frames; long allocations
    /// replaced, as in [`take_frame_into`](Self::take_frame_into), or dropped go to
    /// `spare`).
    pub(crate) fn take_msg_into(
        &mut self,
        out: &mut Vec<Vec<u8>>,
        spare: &mut Vec<Vec<u8>>,
    ) -> Option<()> {
        self.front_range()?;
        let mut n = 0;
        loop {
            if out.len() <= n {
                out.push(Vec::new());
            }
            let Some(slot) = out.get_mut(n) else { break };
            n += 1;
            let mut replaced = None;
            let more = self.take_frame_into(slot, &mut replaced);
            spare.extend(replaced);
            if more != Some(true) {
                break;
            }
        }
        spare.extend(out.drain(n..).filter(|f| f.capacity() >= OWN_FRAME));
        Some(())
    }

    /// Takes the front message's unread frames.
    pub(crate) fn take_msg(&mut self) -> Option<Vec<Vec<u8>>> {
        let n = self.front_range()?.len();
        let mut out = Vec::with_capacity(n.max(1));
        while let Some((f, more)) = self.take_frame() {
            out.push(f);
            if !more {
                break;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(b: &mut Batch, msgs: &[&[&[u8]]], tag: u64) {
        for m in msgs {
            for f in *m {
                b.push_frame(f);
            }
            b.end_msg(tag);
        }
    }

    #[test]
    fn frames_come_out_as_they_went_in() {
        let big = vec![7u8; OWN_FRAME + 1];
        let mut b = Batch::default();
        fill(&mut b, &[&[b"a", b"", b"bc"], &[&big], &[b"d"]], 3);
        assert_eq!(b.len(), 3);
        assert_eq!(b.front_tag(), Some(3));
        assert_eq!(
            b.take_msg().unwrap(),
            vec![b"a".to_vec(), vec![], b"bc".to_vec()]
        );
        assert_eq!(b.take_frame().unwrap(), (big.clone(), false));
        assert_eq!(b.take_frame().unwrap(), (b"d".to_vec(), false));
        assert!(b.is_empty());
        assert!(b.take_frame().is_none());
    }

    #[test]
    fn taking_into_reuses_the_callers_buffers() {
        let big = vec![7u8; OWN_FRAME + 1];
        let mut b = Batch::default();
        fill(
            &mut b,
            &[&[b"ab"], &[b"c", b"", &big], &[b"x", b"y"], &[b"z"]],
            0,
        );
        let mut spare = Vec::new();
        let mut replaced = None;
        let mut frame = Vec::with_capacity(64);
        let cap = frame.capacity();
        assert_eq!(b.take_frame_into(&mut frame, &mut replaced), Some(false));
        assert_eq!(frame, b"ab");
        assert_eq!(frame.capacity(), cap);
        let mut msg = vec![b"old".to_vec(); 5];
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), Some(()));
        assert_eq!(msg, vec![b"c".to_vec(), vec![], big.clone()]);
        // A partly read message: the rest of it.
        assert_eq!(b.take_frame_into(&mut frame, &mut replaced), Some(true));
        assert_eq!(frame, b"x");
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), Some(()));
        assert_eq!(msg, vec![b"y".to_vec()]);
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), Some(()));
        assert_eq!(msg, vec![b"z".to_vec()]);
        assert_eq!(b.take_frame_into(&mut frame, &mut replaced), None);
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), None);
        assert_eq!(
            msg,
            vec![b"z".to_vec()],
            "untouched when there is no message"
        );
        assert_eq!(spare, vec![big], "the long frame dropped from `msg`");
        assert_eq!(replaced, None, "`frame` only took short frames");
    }

    #[test]
    fn replaced_long_allocations_become_spares() {
        let big = vec![7u8; OWN_FRAME];
        let mut b = Batch::default();
        fill(&mut b, &[&[&big], &[b"a", &big], &[b"b"]], 0);
        let mut spare = Vec::new();
        let mut frame = vec![1u8; OWN_FRAME];
        let mut replaced = None;
        assert_eq!(b.take_frame_into(&mut frame, &mut replaced), Some(false));
        assert_eq!(frame, big);
        assert_eq!(replaced, Some(vec![1u8; OWN_FRAME]));
        // Long frames replaced and long frames dropped from `msg` go to the spares.
        let mut msg = vec![vec![2u8; OWN_FRAME], vec![3u8; OWN_FRAME], vec![4u8; 10]];
        spare.clear();
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), Some(()));
        assert_eq!(msg, vec![b"a".to_vec(), big.clone()]);
        assert_eq!(spare, vec![vec![3u8; OWN_FRAME]]);
        spare.clear();
        assert_eq!(b.take_msg_into(&mut msg, &mut spare), Some(()));
        assert_eq!(msg, vec![b"b".to_vec()]);
        assert_eq!(spare, vec![big.clone()], "the dropped long frame");
    }

    #[test]
    fn spares_keep_a_bounded_amount_of_bounded_bodies() {
        let s = Spares::default();
        s.put(vec![0; 100]);
        s.put(Vec::with_capacity(SPARE_MAX + 1));
        assert!(s.get(0).is_none(), "too short, too long: not kept");
        let n = SPARE_BYTES / OWN_FRAME;
        for _ in 0..n + 2 {
            s.put(vec![1; OWN_FRAME]);
        }
        s.put(Vec::with_capacity(2 * OWN_FRAME));
        assert!(s.get(2 * OWN_FRAME).is_none(), "full: not kept");
        for _ in 0..n {
            let b = s.get(OWN_FRAME).unwrap();
            assert!(b.capacity() >= OWN_FRAME);
            assert_eq!(b, vec![1; OWN_FRAME], "kept as it was");
        }
        assert!(s.get(1).is_none());
        s.put(Vec::with_capacity(2 * OWN_FRAME));
        assert!(s.get(2 * OWN_FRAME).is_some(), "room again");
    }

    #[test]
    fn partial_reads_and_append_keep_order() {
        let mut a = Batch::default();
        fill(&mut a, &[&[b"1", b"2", b"3"]], 1);
        assert_eq!(a.take_frame().unwrap(), (b"1".to_vec(), true));
        let mut other = Batch::default();
        fill(&mut other, &[&[b"x"], &[b"y", b"z"]], 2);
        assert_eq!(other.take_frame().unwrap(), (b"x".to_vec(), false));
        a.append(&mut other);
        assert!(other.is_empty());
        assert_eq!(a.len(), 2);
        assert_eq!(a.take_msg().unwrap(), vec![b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(a.front_tag(), Some(2));
        let got = a.with_front(|fs| fs.iter().map(|f| f.to_vec()).collect::<Vec<_>>());
        assert_eq!(got.unwrap(), vec![b"y".to_vec(), b"z".to_vec()]);
        a.skip_front();
        assert!(a.is_empty());
        // Appending into an empty batch takes the other whole.
        let mut e = Batch::default();
        fill(&mut other, &[&[b"q"]], 9);
        e.append(&mut other);
        assert_eq!(e.take_frame().unwrap(), (b"q".to_vec(), false));
    }
}
