//! Bytes to values and back, with no state: greeting, frame headers, commands, metadata and
//! socket types.
//!
//! # The contract
//!
//! Every parser here takes untrusted bytes and:
//! - returns [`Status::Partial`] (never an error) when the input is a valid prefix that is too
//!   short to decide;
//! - returns a typed error when the bytes are malformed, and never panics, reads out of bounds
//!   or allocates, whatever the input;
//! - after a checked parse (`Greeting::parse`, `FrameHeader::parse`, `Command::parse`,
//!   `Metadata::parse`) succeeds, **no accessor of the value panics**: iterating a
//!   [`Metadata`] cannot fail.
//!
//! Every emitter writes into a caller buffer and **never panics**: on a buffer of the length
//! its `encoded_len` asked for it succeeds; on a shorter one it returns [`BufferTooSmall`].
//! Emitting a parsed value and parsing the result gives the same value (the fuzz targets check
//! both promises).

pub(crate) mod command;
mod frame;
mod greeting;
mod metadata;
mod socket_type;

pub(crate) use command::emit_parts;
pub use command::{split_command, Command, CommandError, MAX_PING_CONTEXT};
pub use frame::{FrameError, FrameHeader, FLAG_COMMAND, FLAG_LONG, FLAG_MORE, MAX_HEADER_LEN};
pub use greeting::{
    Greeting, GreetingError, Mechanism, GREETING_LEN, MECHANISM_LEN, SIGNATURE_LEN,
};
pub use metadata::{
    property_len, Metadata, MetadataError, MetadataWriter, Properties, Property, WriteError,
};
pub use socket_type::SocketType;

/// Whether `a` and `b` hold the same bytes. A plain loop, out of line on bare metal: the
/// slice and array `==` of the few short names compared here call `memcmp`, which a
/// firmware may not otherwise link (116 bytes).
#[cfg_attr(target_os = "none", inline(never))]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Result of a streaming parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status<T> {
    /// Parsed, with the value.
    Complete(T),
    /// The input is a valid prefix; more bytes are needed.
    Partial,
}

/// An output buffer was too short for what had to be written into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for BufferTooSmall {}
