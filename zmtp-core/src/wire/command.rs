//! Commands (RFC 37 §"Commands", §"The READY Command", §"The ERROR Command",
//! §"Connection Heartbeating", §"The SUBSCRIBE Command").
//!
//! ```text
//! command      = command-size command-body
//! command-body = command-name command-data
//! command-name = OCTET 1*255command-name-char
//! command-name-char = ALPHA
//! ```

use super::metadata::{Metadata, MetadataError};
use super::BufferTooSmall;

/// Longest PING context (RFC 37: "ping-context = 0*16OCTET").
pub const MAX_PING_CONTEXT: usize = 16;

/// A malformed command. The connection must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CommandError {
    /// The body is empty or the name length is 0 (`04 00` is not a command).
    EmptyName,
    /// The name length runs past the body.
    NameOverrun,
    /// A name byte that is not an ASCII letter.
    InvalidName,
    /// READY's property list is malformed.
    Metadata(MetadataError),
    /// ERROR's reason length does not match its body.
    MalformedError,
    /// PING shorter than its 2-byte TTL, or with a context over 16 bytes.
    MalformedPing,
    /// PONG with a context over 16 bytes.
    MalformedPong,
}

/// A command, borrowed from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Command<'a> {
    /// READY with its metadata.
    Ready(Metadata<'a>),
    /// ERROR with its reason (RFC 37: "error-reason = OCTET 0*255VCHAR").
    Error {
        /// Why the peer is closing.
        reason: &'a [u8],
    },
    /// PING (RFC 37 §"Connection Heartbeating").
    Ping {
        /// Time-to-live in deciseconds; 0 means none.
        ttl_deciseconds: u16,
        /// 0-16 bytes the PONG must echo.
        context: &'a [u8],
    },
    /// PONG echoing a PING's context.
    Pong {
        /// The echoed context.
        context: &'a [u8],
    },
    /// SUBSCRIBE (ZMTP 3.1) with its topic prefix.
    Subscribe(&'a [u8]),
    /// CANCEL (ZMTP 3.1) with its topic prefix.
    Cancel(&'a [u8]),
    /// Any other well-formed command, kept as name and data (HELLO, WELCOME, INITIATE, MESSAGE
    /// and names we do not know).
    Other {
        /// Command name (1-255 ASCII letters).
        name: &'a [u8],
        /// Everything after the name.
        data: &'a [u8],
    },
}

/// Splits a command body into its name and data, checking the name.
pub fn split_command(body: &[u8]) -> Result<(&[u8], &[u8]), CommandError> {
    let (&len, rest) = body
        .split_first()
        .filter(|(&len, _)| len != 0)
        .ok_or(CommandError::EmptyName)?;
    let (name, data) = rest
        .split_at_checked(usize::from(len))
        .ok_or(CommandError::NameOverrun)?;
    if !name.iter().all(u8::is_ascii_alphabetic) {
        return Err(CommandError::InvalidName);
    }
    Ok((name, data))
}

/// The names of the commands [`Command::parse`] knows, in the order of its `match`
/// (RFC 37 §"Commands"; SUBSCRIBE and CANCEL from ZMTP 3.1).
pub(crate) const KNOWN_COMMANDS: [&[u8]; 6] = [
    b"READY",
    b"ERROR",
    b"PING",
    b"PONG",
    b"SUBSCRIBE",
    b"CANCEL",
];

impl<'a> Command<'a> {
    /// Parses a whole command body (the bytes after the frame header). Names are compared
    /// case-sensitively: `ping` is an unknown command.
    pub fn parse(body: &'a [u8]) -> Result<Command<'a>, CommandError> {
        let (name, data) = split_command(body)?;
        // The known names by table (one compare loop; a `match` on byte strings unrolls
        // every comparison, which firmware pays for in flash).
        let known = KNOWN_COMMANDS
            .iter()
            .position(|k| super::same_bytes(k, name));
        Ok(match known {
            Some(0) => Command::Ready(Metadata::parse(data).map_err(CommandError::Metadata)?),
            Some(1) => {
                // error = command-size %d5 "ERROR" error-reason; error-reason = OCTET 0*255VCHAR
                let (len, reason) = data.split_first().ok_or(CommandError::MalformedError)?;
                if reason.len() != usize::from(*len) {
                    return Err(CommandError::MalformedError);
                }
                Command::Error { reason }
            }
            Some(2) => {
                // ping = command-size %d4 "PING" ping-ttl ping-context
                let (ttl, context) = data
                    .split_first_chunk::<2>()
                    .ok_or(CommandError::MalformedPing)?;
                if context.len() > MAX_PING_CONTEXT {
                    return Err(CommandError::MalformedPing);
                }
                Command::Ping {
                    ttl_deciseconds: u16::from_be_bytes(*ttl),
                    context,
                }
            }
            Some(3) => {
                if data.len() > MAX_PING_CONTEXT {
                    return Err(CommandError::MalformedPong);
                }
                Command::Pong { context: data }
            }
            Some(4) => Command::Subscribe(data),
            Some(5) => Command::Cancel(data),
            _ => Command::Other { name, data },
        })
    }

    /// Name of this command.
    pub fn name(&self) -> &'a [u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error { .. } => b"ERROR",
            Command::Ping { .. } => b"PING",
            Command::Pong { .. } => b"PONG",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Other { name, .. } => name,
        }
    }

    /// The body after the name: a fixed prefix (ERROR's reason length, PING's TTL; `len`
    /// bytes of the array) and the variable part.
    fn data(&self) -> (([u8; 2], usize), &'a [u8]) {
        match *self {
            Command::Ready(m) => (([0; 2], 0), m.as_bytes()),
            Command::Error { reason } => (([reason.len() as u8, 0], 1), reason),
            Command::Ping {
                ttl_deciseconds,
                context,
            } => ((ttl_deciseconds.to_be_bytes(), 2), context),
            Command::Pong { context: data }
            | Command::Subscribe(data)
            | Command::Cancel(data)
            | Command::Other { data, .. } => (([0; 2], 0), data),
        }
    }

    /// Length of the command body (name length octet, name, data).
    pub fn body_len(&self) -> usize {
        let ((_, plen), data) = self.data();
        1usize
            .saturating_add(self.name().len())
            .saturating_add(plen)
            .saturating_add(data.len())
    }

    /// Length of the whole frame (header and body) [`emit`](Self::emit) writes.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        super::frame::FrameHeader::command(body as u64)
            .encoded_len()
            .saturating_add(body)
    }

    /// Writes the whole command frame. Returns the bytes written.
    ///
    /// Fails with [`BufferTooSmall`] when `buf` is shorter than [`encoded_len`](Self::encoded_len)
    /// or a field cannot be encoded (a name over 255 bytes, an ERROR reason over 255 bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let name = self.name();
        let ((prefix, plen), data) = self.data();
        let name_len = match u8::try_from(name.len()) {
            Ok(0) | Err(_) => return Err(BufferTooSmall),
            Ok(n) => n,
        };
        // An ERROR's reason length is its one-byte prefix.
        if plen == 1 && data.len() > 255 {
            return Err(BufferTooSmall);
        }
        emit_parts(
            buf,
            &[&[name_len], name, prefix.get(..plen).unwrap_or(&[]), data],
        )
        .ok_or(BufferTooSmall)
    }
}

/// Writes a command frame whose body is `parts` back to back (name length, name, data) into
/// `buf`; returns the frame's length. `None`, with nothing written, if it does not fit. One
/// writer for every command we send, handshake commands included.
pub(crate) fn emit_parts(buf: &mut [u8], parts: &[&[u8]]) -> Option<usize> {
    let body = parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))?;
    let header = super::frame::FrameHeader::command(body as u64);
    let total = header.encoded_len().checked_add(body)?;
    let out = buf.get_mut(..total)?;
    let mut at = header.emit(out).ok()?;
    for part in parts {
        let end = at.checked_add(part.len())?;
        out.get_mut(at..end)?.copy_from_slice(part);
        at = end;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Command<'_>) {
        let mut b = [0u8; 600];
        let n = c.emit(&mut b).unwrap();
        assert_eq!(n, c.encoded_len());
        let (h, hl) = match crate::wire::FrameHeader::parse(&b[..n]).unwrap() {
            crate::wire::Status::Complete(x) => x,
            crate::wire::Status::Partial => panic!("partial"),
        };
        assert!(h.command);
        assert_eq!(Command::parse(&b[hl..n]).unwrap(), c);
        assert_eq!(c.emit(&mut b[..n - 1]), Err(BufferTooSmall));
    }

    #[test]
    fn commands_round_trip() {
        round_trip(Command::Ping {
            ttl_deciseconds: 300,
            context: b"abc",
        });
        round_trip(Command::Pong { context: b"abc" });
        round_trip(Command::Error { reason: b"bad" });
        round_trip(Command::Subscribe(b"topic"));
        round_trip(Command::Cancel(b""));
        round_trip(Command::Other {
            name: b"HELLO",
            data: &[1, 2, 3],
        });
        round_trip(Command::Ready(
            Metadata::parse(&[1, b'a', 0, 0, 0, 1, b'x']).unwrap(),
        ));
        round_trip(Command::Other {
            name: b"X",
            data: &[0; 300],
        });
    }

    #[test]
    fn malformed() {
        assert_eq!(Command::parse(&[]), Err(CommandError::EmptyName));
        assert_eq!(Command::parse(&[0]), Err(CommandError::EmptyName));
        assert_eq!(Command::parse(&[5, b'P']), Err(CommandError::NameOverrun));
        assert_eq!(
            Command::parse(&[2, b'P', b'1']),
            Err(CommandError::InvalidName)
        );
        assert_eq!(
            Command::parse(b"\x04PING\x00"),
            Err(CommandError::MalformedPing)
        );
        assert_eq!(
            Command::parse(b"\x05ERROR\x03ab"),
            Err(CommandError::MalformedError)
        );
        assert_eq!(
            Command::parse(b"\x04ping\x00\x00"),
            Ok(Command::Other {
                name: b"ping",
                data: b"\x00\x00"
            })
        );
    }
}
