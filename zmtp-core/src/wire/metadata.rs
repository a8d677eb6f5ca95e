//! Metadata: the property list carried by READY and INITIATE (RFC 37 §"The READY Command").
//!
//! ```text
//! metadata = *property
//! property = name value
//! name     = OCTET 1*255name-char
//! name-char = ALPHA | DIGIT | "-" | "_" | "." | "+"
//! value    = 4OCTET *OCTET        ; size in network byte order, < 2^31
//! ```
//!
//! Names compare case-insensitively (RFC 37: "Property names are case-insensitive"); values
//! compare exactly.

use super::BufferTooSmall;

/// A malformed property list. The connection must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MetadataError {
    /// A property name of length 0.
    EmptyName,
    /// A name byte outside `A-Z a-z 0-9 - _ . +`.
    InvalidName,
    /// The name, the value size or the value runs past the end of the list (this includes a
    /// single stray trailing byte).
    Truncated,
    /// A value size with bit 31 set (RFC 37: values are smaller than 2^31 bytes).
    ValueTooLong,
}

/// One property: a name and a value, both borrowed from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Property<'a> {
    /// Property name (1-255 bytes from the name alphabet).
    pub name: &'a [u8],
    /// Property value (any bytes).
    pub value: &'a [u8],
}

impl Property<'_> {
    /// Whether this property's name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+')
}

/// Parses one property; the faults in wire order (name length, name, value size, value),
/// so errors name the first fault.
fn next_property(input: &[u8]) -> Result<(&[u8], Property<'_>), MetadataError> {
    let (&name_len, rest) = input.split_first().ok_or(MetadataError::Truncated)?;
    if name_len == 0 {
        return Err(MetadataError::EmptyName);
    }
    let (name, rest) = rest
        .split_at_checked(usize::from(name_len))
        .ok_or(MetadataError::Truncated)?;
    if !name.iter().all(|&b| is_name_char(b)) {
        return Err(MetadataError::InvalidName);
    }
    let (size, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(MetadataError::Truncated)?;
    let size = u32::from_be_bytes(*size);
    if size & 0x8000_0000 != 0 {
        return Err(MetadataError::ValueTooLong);
    }
    let (value, rest) = usize::try_from(size)
        .ok()
        .and_then(|n| rest.split_at_checked(n))
        .ok_or(MetadataError::Truncated)?;
    Ok((rest, Property { name, value }))
}

/// A validated property list, borrowed from the received bytes.
///
/// Once [`Metadata::parse`] has succeeded, iterating never fails and never panics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Metadata<'a> {
    bytes: &'a [u8],
}

impl<'a> Metadata<'a> {
    /// Validates a whole property list.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MetadataError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = next_property(rest)?.0;
        }
        Ok(Metadata { bytes })
    }

    /// A list [`parse`](Self::parse) has already accepted (iterating a list that is not
    /// one stops at its first fault, so this can never panic either).
    pub(crate) const fn validated(bytes: &'a [u8]) -> Self {
        Metadata { bytes }
    }

    /// An empty list.
    pub const fn empty() -> Metadata<'static> {
        Metadata { bytes: &[] }
    }

    /// The raw encoded list.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterates the properties in wire order, without copying.
    pub fn iter(&self) -> Properties<'a> {
        Properties { rest: self.bytes }
    }

    /// The value of the first property whose name equals `name` ignoring ASCII case.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|p| p.is(name)).map(|p| p.value)
    }
}

impl<'a> IntoIterator for Metadata<'a> {
    type Item = Property<'a>;
    type IntoIter = Properties<'a>;
    fn into_iter(self) -> Properties<'a> {
        self.iter()
    }
}

impl core::fmt::Debug for Metadata<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut m = f.debug_map();
        for p in self.iter() {
            m.entry(&Bytes(p.name), &Bytes(p.value));
        }
        m.finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Metadata<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Metadata({=[u8]})", self.bytes)
    }
}

/// Shows bytes as text when printable, hex otherwise.
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl core::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match core::str::from_utf8(self.0) {
            Ok(s) if s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => write!(f, "{s:?}"),
            _ => write!(f, "{:02x?}", self.0),
        }
    }
}

/// Iterator over the properties of a [`Metadata`].
#[derive(Clone, Debug)]
pub struct Properties<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;
    fn next(&mut self) -> Option<Property<'a>> {
        match next_property(self.rest) {
            Ok((rest, p)) => {
                self.rest = rest;
                Some(p)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Bytes one property takes on the wire, or `None` if it cannot be encoded (name of 0 or more
/// than 255 bytes, value of 2^31 bytes or more).
pub fn property_len(name: &[u8], value: &[u8]) -> Option<usize> {
    if name.is_empty() || name.len() > 255 || value.len() > 0x7fff_ffff {
        return None;
    }
    1usize
        .checked_add(name.len())?
        .checked_add(4)?
        .checked_add(value.len())
}

/// Writes a property list into a caller buffer.
#[derive(Debug)]
pub struct MetadataWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// Why a property could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WriteError {
    /// The name is empty, longer than 255 bytes or has a byte outside the name alphabet, or the
    /// value is 2^31 bytes or longer.
    Invalid,
    /// The buffer has no room for the property.
    BufferTooSmall,
}

impl From<BufferTooSmall> for WriteError {
    fn from(_: BufferTooSmall) -> Self {
        WriteError::BufferTooSmall
    }
}

impl<'b> MetadataWriter<'b> {
    /// Starts an empty list in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        MetadataWriter { buf, len: 0 }
    }

    /// Appends one property. On error nothing is written.
    pub fn property(&mut self, name: &[u8], value: &[u8]) -> Result<&mut Self, WriteError> {
        if !name.iter().all(|&b| is_name_char(b)) {
            return Err(WriteError::Invalid);
        }
        let n = property_len(name, value).ok_or(WriteError::Invalid)?;
        let out = self
            .buf
            .get_mut(self.len..)
            .and_then(|b| b.get_mut(..n))
            .ok_or(WriteError::BufferTooSmall)?;
        let (nl, rest) = out.split_first_mut().ok_or(WriteError::BufferTooSmall)?;
        *nl = name.len() as u8;
        let (nm, rest) = rest.split_at_mut(name.len());
        nm.copy_from_slice(name);
        let (vl, v) = rest
            .split_first_chunk_mut::<4>()
            .ok_or(WriteError::BufferTooSmall)?;
        *vl = (value.len() as u32).to_be_bytes();
        v.copy_from_slice(value);
        self.len = self.len.saturating_add(n);
        Ok(self)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded list.
    pub fn finish(self) -> &'b [u8] {
        let len = self.len;
        let buf: &'b [u8] = self.buf;
        buf.get(..len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_iterate() {
        let mut b = [0u8; 64];
        let mut w = MetadataWriter::new(&mut b);
        w.property(b"Socket-Type", b"DEALER")
            .unwrap()
            .property(b"Identity", b"")
            .unwrap();
        let bytes = w.finish();
        let m = Metadata::parse(bytes).unwrap();
        let v: Vec<_> = m.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            v,
            [(&b"Socket-Type"[..], &b"DEALER"[..]), (b"Identity", b"")]
        );
        assert_eq!(m.get(b"socket-type"), Some(&b"DEALER"[..]));
        assert_eq!(m.get(b"SOCKET-TYPE"), Some(&b"DEALER"[..]));
    }

    #[test]
    fn malformed_lists() {
        assert_eq!(Metadata::parse(&[0]), Err(MetadataError::EmptyName));
        assert_eq!(Metadata::parse(&[1]), Err(MetadataError::Truncated));
        assert_eq!(
            Metadata::parse(&[1, b'a', 0, 0, 0]),
            Err(MetadataError::Truncated)
        );
        assert_eq!(
            Metadata::parse(&[1, b'a', 0, 0, 0, 2, b'x']),
            Err(MetadataError::Truncated)
        );
        assert_eq!(
            Metadata::parse(&[1, b' ', 0, 0, 0, 0]),
            Err(MetadataError::InvalidName)
        );
        assert_eq!(
            Metadata::parse(&[1, b'a', 0x80, 0, 0, 0]),
            Err(MetadataError::ValueTooLong)
        );
        assert_eq!(
            Metadata::parse(&[1, b'a', 0, 0, 0, 0, 7]),
            Err(MetadataError::Truncated)
        );
    }

    #[test]
    fn writer_rejects_bad_names_and_full_buffers() {
        let mut b = [0u8; 8];
        let mut w = MetadataWriter::new(&mut b);
        assert_eq!(w.property(b"", b"").err(), Some(WriteError::Invalid));
        assert_eq!(w.property(b"a b", b"").err(), Some(WriteError::Invalid));
        assert_eq!(
            w.property(b"abc", b"xy").err(),
            Some(WriteError::BufferTooSmall)
        );
        assert!(w.is_empty());
    }
}
