//! A message queue over a caller slice: whole multipart messages in, whole messages out.
//!
//! Frames are stored contiguously as `len: u32 LE, flags: u8, body`; a message ends at the
//! first frame without MORE. A direct frame (its body held by the driver, see
//! [`super::stream`]) is a record with the DIRECT flag whose 8-byte body is its length. A message is visible to `pop` only once its last frame is in
//! (atomicity), and an unfinished one can be dropped with [`MsgQueue::drop_partial`].
//! Memory: the live bytes sit in `[head, tail)`; when the end is reached the live part is
//! moved to the front (the queue never wraps, so every frame is one slice).

const RECORD: usize = 5;
const MORE: u8 = 1;
const DIRECT: u8 = 2;
/// Bytes a direct frame's record body takes (its length, u64 LE).
pub(crate) const DIRECT_RECORD: usize = 8;

/// Bytes a message of `frames` frames totalling `bytes` takes in a queue.
pub const fn stored_len(frames: usize, bytes: usize) -> usize {
    frames.saturating_mul(RECORD).saturating_add(bytes)
}

#[derive(Debug)]
pub(crate) struct MsgQueue<'b> {
    /// Records in `buf[head..tail]`; `head <= complete_end <= tail <= buf.len()` always, and
    /// every move of these positions is checked against the room there is first: arithmetic
    /// on them is `wrapping_*` (exact; smaller than `saturating_*` on 32-bit targets).
    buf: &'b mut [u8],
    head: usize,
    tail: usize,
    /// End of the last complete message (`head <= complete_end <= tail`).
    complete_end: usize,
    /// Complete messages in the queue.
    count: usize,
    /// The frame being written.
    writing: Option<Writing>,
}

#[derive(Clone, Copy, Debug)]
struct Writing {
    at: usize,
    left: usize,
    more: bool,
}

impl<'b> MsgQueue<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        MsgQueue {
            buf,
            head: 0,
            tail: 0,
            complete_end: 0,
            count: 0,
            writing: None,
        }
    }

    /// The memory, handed back; the queue is left empty, without memory.
    pub fn take_buf(&mut self) -> &'b mut [u8] {
        self.clear();
        core::mem::take(&mut self.buf)
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Complete messages queued.
    pub fn messages(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Whether a message is partly in.
    pub fn has_partial(&self) -> bool {
        self.complete_end != self.tail || self.writing.is_some()
    }

    /// Bytes free for new records (after compaction).
    pub fn free(&self) -> usize {
        self.buf
            .len()
            .wrapping_sub(self.tail.wrapping_sub(self.head))
    }

    /// Bytes free for new records once every complete message is gone: what the rest of
    /// the message being written can ever have.
    pub fn free_when_drained(&self) -> usize {
        self.buf
            .len()
            .wrapping_sub(self.tail.wrapping_sub(self.complete_end))
    }

    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail = self.tail.wrapping_sub(self.head);
            self.complete_end = self.complete_end.wrapping_sub(self.head);
            self.head = 0;
        }
    }

    /// Starts a frame of `len` body bytes: reserves its room, to be filled with
    /// [`write_body`](Self::write_body) and closed with [`end_frame`](Self::end_frame).
    /// `false` if it does not fit. Until the message's last frame ends, `pop` cannot see it.
    pub fn begin_frame(&mut self, len: usize, more: bool) -> bool {
        self.begin_record(len, if more { MORE } else { 0 })
    }

    /// Starts a direct frame of `len` bytes (body elsewhere): its record is in, and
    /// [`end_frame`](Self::end_frame) completes it once the driver has the body. `false` if
    /// it does not fit.
    pub fn begin_direct_frame(&mut self, len: u64, more: bool) -> bool {
        let flags = DIRECT | if more { MORE } else { 0 };
        if !self.begin_record(DIRECT_RECORD, flags) {
            return false;
        }
        self.write_body(&len.to_le_bytes());
        true
    }

    /// Appends a whole direct frame; `false` if it does not fit.
    pub fn push_direct_frame(&mut self, len: u64, more: bool) -> bool {
        if !self.begin_direct_frame(len, more) {
            return false;
        }
        self.end_frame();
        true
    }

    fn begin_record(&mut self, len: usize, flags: u8) -> bool {
        let more = flags & MORE != 0;
        let Some(need) = len.checked_add(RECORD) else {
            return false;
        };
        if self.buf.len().wrapping_sub(self.tail) < need {
            self.compact();
        }
        let start = self.tail;
        let Some(end) = start.checked_add(need) else {
            return false;
        };
        let (Some(rec), Ok(l)) = (self.buf.get_mut(start..end), u32::try_from(len)) else {
            return false;
        };
        let [a, b, c, d, f, ..] = rec else {
            return false;
        };
        [*a, *b, *c, *d] = l.to_le_bytes();
        *f = flags;
        self.tail = end;
        self.writing = Some(Writing {
            at: start.wrapping_add(RECORD),
            left: len,
            more,
        });
        true
    }

    /// Copies the next part of the current frame's body; returns how much was taken (no more
    /// than the frame still needs).
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn write_body(&mut self, data: &[u8]) -> usize {
        let Some(w) = self.writing.as_mut() else {
            return 0;
        };
        let n = data.len().min(w.left);
        // Both exactly `n` long (no length check left to fail).
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(w.at..).and_then(|b| b.get_mut(..n)),
            data.get(..n),
        ) {
            dst.copy_from_slice(src);
            w.at = w.at.wrapping_add(n);
            w.left = w.left.wrapping_sub(n);
            return n;
        }
        0
    }

    /// Ends the current frame (its body must be complete); a frame without MORE completes
    /// the message.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn end_frame(&mut self) {
        if let Some(w) = self.writing.take() {
            if !w.more {
                self.complete_end = self.tail;
                self.count = self.count.wrapping_add(1);
            }
        }
    }

    /// Appends a whole frame; `false` if it does not fit.
    pub fn push_frame(&mut self, data: &[u8], more: bool) -> bool {
        if !self.begin_frame(data.len(), more) {
            return false;
        }
        self.write_body(data);
        self.end_frame();
        true
    }

    /// Drops the partial message (a peer vanished mid-message).
    pub fn drop_partial(&mut self) {
        self.tail = self.complete_end;
        self.writing = None;
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
        self.complete_end = 0;
        self.count = 0;
        self.writing = None;
    }

    /// The oldest complete message, without removing it.
    pub fn front(&self) -> Option<Message<'_>> {
        if self.count == 0 {
            return None;
        }
        let bytes = self.buf.get(self.head..self.complete_end)?;
        let len = message_len(bytes)?;
        Some(Message {
            bytes: bytes.get(..len)?,
        })
    }

    /// Removes the oldest complete message.
    pub fn pop(&mut self) {
        let _ = self.pop_front();
    }

    /// Removes the oldest complete message and returns it (valid until the queue is next
    /// changed).
    pub fn pop_front(&mut self) -> Option<Message<'_>> {
        let len = self.front()?.bytes.len();
        let start = self.head;
        self.head = self.head.wrapping_add(len);
        self.count = self.count.wrapping_sub(1);
        if self.head == self.tail {
            // Empty: start again at the front (only indices move; the bytes lent out stay).
            self.head = 0;
            self.tail = 0;
            self.complete_end = 0;
        }
        let bytes = self.buf.get(start..start.wrapping_add(len))?;
        Some(Message { bytes })
    }
}

/// Length of the first message in `bytes` (which holds only whole records).
fn message_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    loop {
        let hdr = bytes.get(at..at.checked_add(RECORD)?)?;
        let len = u32::from_le_bytes([*hdr.first()?, *hdr.get(1)?, *hdr.get(2)?, *hdr.get(3)?]);
        let more = hdr.get(4)? & MORE != 0;
        at = at
            .checked_add(RECORD)?
            .checked_add(usize::try_from(len).ok()?)?;
        if !more {
            return Some(at);
        }
    }
}

/// A whole message in a queue: its frames, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// The frames, in order.
    pub fn frames(&self) -> Frames<'a> {
        Frames { rest: self.bytes }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames().count()
    }

    /// Whether the message has no frames (never true for a queued message).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Total body bytes.
    pub fn size(&self) -> usize {
        self.frames().map(<[u8]>::len).sum()
    }

    /// The first frame.
    pub fn first(&self) -> Option<&'a [u8]> {
        self.frames().next()
    }

    /// The frames, direct ones (bodies the driver holds) told apart.
    pub fn parts(&self) -> Parts<'a> {
        Parts { rest: self.bytes }
    }

    /// Whether a frame of the message is direct.
    pub fn has_direct(&self) -> bool {
        self.parts().any(|p| matches!(p, Part::Direct(_)))
    }
}

/// Iterator over a [`Message`]'s frames as [`Part`]s ([`Message::parts`]).
#[derive(Clone, Debug)]
pub struct Parts<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Parts<'a> {
    type Item = Part<'a>;
    fn next(&mut self) -> Option<Part<'a>> {
        let (body, flags, rest) = split_record(self.rest)?;
        self.rest = rest;
        if flags & DIRECT != 0 {
            let len = body.first_chunk::<DIRECT_RECORD>().copied()?;
            Some(Part::Direct(u64::from_le_bytes(len)))
        } else {
            Some(Part::Bytes(body))
        }
    }
}

/// The first record of `bytes`: its body, its flags and what follows it in the message
/// (nothing after its last frame).
fn split_record(bytes: &[u8]) -> Option<(&[u8], u8, &[u8])> {
    let (hdr, rest) = bytes.split_at_checked(RECORD)?;
    let len = u32::from_le_bytes([*hdr.first()?, *hdr.get(1)?, *hdr.get(2)?, *hdr.get(3)?]);
    let (body, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
    let flags = *hdr.get(4)?;
    let rest = if flags & MORE != 0 { rest } else { &[] };
    Some((body, flags, rest))
}

use super::stream::Part;

/// Iterator over a [`Message`]'s frames. A direct frame (body held by the driver) shows as
/// an empty slice: see [`Message::parts`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (body, flags, rest) = split_record(self.rest)?;
        self.rest = rest;
        // A direct frame's body is not here: it shows as empty (see `Message::parts`).
        Some(if flags & DIRECT != 0 { &[] } else { body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(q: &MsgQueue<'_>) -> Vec<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        let b = q.buf.get(q.head..q.complete_end).unwrap();
        let mut at = 0;
        while at < b.len() {
            let len = message_len(&b[at..]).unwrap();
            v.push(
                Message {
                    bytes: &b[at..at + len],
                }
                .frames()
                .map(<[u8]>::to_vec)
                .collect(),
            );
            at += len;
        }
        v
    }

    #[test]
    fn whole_messages_only() {
        let mut buf = [0u8; 64];
        let mut q = MsgQueue::new(&mut buf);
        assert!(q.push_frame(b"a", true));
        assert!(q.front().is_none(), "a partial message is invisible");
        assert!(q.push_frame(b"bc", false));
        assert_eq!(q.messages(), 1);
        assert_eq!(msgs(&q), [vec![b"a".to_vec(), b"bc".to_vec()]]);
        assert!(q.push_frame(b"x", true));
        q.drop_partial();
        assert_eq!(q.messages(), 1);
        let m = q.pop_front().unwrap();
        assert_eq!(m.frames().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
        assert!(q.is_empty());
    }

    #[test]
    fn compacts_instead_of_wrapping() {
        let mut buf = [0u8; 32];
        let mut q = MsgQueue::new(&mut buf);
        for i in 0..100u8 {
            assert!(q.push_frame(&[i; 10], false), "{i}");
            assert_eq!(q.front().unwrap().first(), Some(&[i; 10][..]));
            q.pop();
        }
        assert!(q.push_frame(&[0; 27], false));
        assert!(!q.push_frame(&[], false), "full");
    }
}
