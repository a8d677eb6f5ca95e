//! Frame headers (RFC 37 §"Framing").
//!
//! ```text
//! frame      = flags size body
//! flags      = %x00-07: bit 0 MORE, bit 1 LONG, bit 2 COMMAND, bits 3-7 reserved
//! short-size = OCTET          (LONG clear)
//! long-size  = 8OCTET         (LONG set, network byte order)
//! ```

use super::{BufferTooSmall, Status};

/// Flag bit 0: more frames follow in this message (RFC 37 §"Framing").
pub const FLAG_MORE: u8 = 0x01;
/// Flag bit 1: the size is 8 octets (RFC 37 §"Framing").
pub const FLAG_LONG: u8 = 0x02;
/// Flag bit 2: the frame is a command (RFC 37 §"Framing").
pub const FLAG_COMMAND: u8 = 0x04;
const RESERVED_FLAGS: u8 = !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND);

/// Largest header: one flags octet and an 8-octet size.
pub const MAX_HEADER_LEN: usize = 9;

/// A malformed frame header. The connection must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// One of the reserved flag bits 3-7 is set (RFC 37: "bits 7-3 are reserved ... MUST be zero").
    ReservedFlags(u8),
    /// COMMAND and MORE are both set: a command is always a single frame (RFC 37).
    CommandWithMore,
    /// A long size with its most significant bit set (RFC 37: "the most significant bit ...
    /// MUST be zero"); also the CVE-2019-6250 class of size overflow.
    SizeOverflow,
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHeader {
    /// More frames follow in this message.
    pub more: bool,
    /// This frame is a command.
    pub command: bool,
    /// Body length in bytes.
    pub size: u64,
}

impl FrameHeader {
    /// A data frame header.
    pub const fn data(size: u64, more: bool) -> Self {
        FrameHeader {
            more,
            command: false,
            size,
        }
    }

    /// A command frame header.
    pub const fn command(size: u64) -> Self {
        FrameHeader {
            more: false,
            command: true,
            size,
        }
    }

    /// Parses a header at the start of `bytes`.
    ///
    /// Returns the header and its encoded length (2 or 9), or [`Status::Partial`] when more bytes
    /// are needed. A LONG size below 256 is accepted (it is a valid encoding).
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<Status<(FrameHeader, usize)>, FrameError> {
        let Some((&flags, rest)) = bytes.split_first() else {
            return Ok(Status::Partial);
        };
        Self::check_flags(flags)?;
        let more = flags & FLAG_MORE != 0;
        let command = flags & FLAG_COMMAND != 0;
        if flags & FLAG_LONG == 0 {
            match rest.first() {
                Some(&s) => Ok(Status::Complete((
                    FrameHeader {
                        more,
                        command,
                        size: u64::from(s),
                    },
                    2,
                ))),
                None => Ok(Status::Partial),
            }
        } else {
            let Some(size) = rest.first_chunk::<8>() else {
                return Ok(Status::Partial);
            };
            let size = u64::from_be_bytes(*size);
            if size >> 63 != 0 {
                return Err(FrameError::SizeOverflow);
            }
            Ok(Status::Complete((
                FrameHeader {
                    more,
                    command,
                    size,
                },
                MAX_HEADER_LEN,
            )))
        }
    }

    /// Validates a flags octet on its own (useful before the size has arrived).
    #[inline]
    pub fn check_flags(flags: u8) -> Result<(), FrameError> {
        if flags & RESERVED_FLAGS != 0 {
            return Err(FrameError::ReservedFlags(flags));
        }
        if flags & (FLAG_COMMAND | FLAG_MORE) == (FLAG_COMMAND | FLAG_MORE) {
            return Err(FrameError::CommandWithMore);
        }
        Ok(())
    }

    /// Bytes [`emit`](Self::emit) writes: 2 for bodies of 0-255 bytes, 9 above.
    #[inline]
    pub const fn encoded_len(&self) -> usize {
        if self.size <= 255 {
            2
        } else {
            MAX_HEADER_LEN
        }
    }

    /// The flags octet this header is sent with.
    #[inline]
    pub const fn flags(&self) -> u8 {
        let mut f = 0;
        if self.more {
            f |= FLAG_MORE;
        }
        if self.command {
            f |= FLAG_COMMAND;
        }
        if self.size > 255 {
            f |= FLAG_LONG;
        }
        f
    }

    /// Writes the header: a 1-octet size for 0-255, an 8-octet size otherwise.
    /// Returns the number of bytes written, [`encoded_len`](Self::encoded_len).
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let flags = self.flags();
        if self.size <= 255 {
            let [f, s, ..] = buf else {
                return Err(BufferTooSmall);
            };
            *f = flags;
            *s = self.size as u8;
            Ok(2)
        } else {
            let Some((f, rest)) = buf.split_first_mut() else {
                return Err(BufferTooSmall);
            };
            let Some(size) = rest.first_chunk_mut::<8>() else {
                return Err(BufferTooSmall);
            };
            *f = flags;
            *size = self.size.to_be_bytes();
            Ok(MAX_HEADER_LEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_round_trip() {
        for (size, len) in [(0u64, 2), (255, 2), (256, 9), (1 << 40, 9)] {
            let h = FrameHeader::data(size, true);
            let mut b = [0u8; 9];
            assert_eq!(h.emit(&mut b), Ok(len));
            assert_eq!(
                FrameHeader::parse(&b[..len]),
                Ok(Status::Complete((h, len)))
            );
            for cut in 0..len {
                assert_eq!(FrameHeader::parse(&b[..cut]), Ok(Status::Partial));
            }
        }
    }

    #[test]
    fn long_size_below_256_accepted() {
        let b = [0x02, 0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(
            FrameHeader::parse(&b),
            Ok(Status::Complete((FrameHeader::data(5, false), 9)))
        );
    }

    #[test]
    fn reserved_bits_and_command_more_rejected() {
        for f in 0x08..=0xffu8 {
            assert_eq!(
                FrameHeader::parse(&[f, 0]),
                Err(FrameError::ReservedFlags(f))
            );
        }
        assert_eq!(
            FrameHeader::parse(&[0x05]),
            Err(FrameError::CommandWithMore)
        );
    }

    #[test]
    fn size_with_bit_63_rejected() {
        let b = [0x02, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&b), Err(FrameError::SizeOverflow));
    }

    #[test]
    fn emit_into_short_buffer_is_an_error() {
        assert_eq!(
            FrameHeader::data(3, false).emit(&mut [0u8; 1]),
            Err(BufferTooSmall)
        );
        assert_eq!(
            FrameHeader::data(300, false).emit(&mut [0u8; 8]),
            Err(BufferTooSmall)
        );
    }
}
