//! Z85, ZeroMQ's printable encoding of binary keys (RFC 32/Z85).
//!
//! Every 4 bytes (a big-endian 32-bit number) become 5 characters of an 85-character
//! alphabet, most significant digit first; the input length must be a multiple of 4 and the
//! text length a multiple of 5 (RFC 32: "the binary frame SHALL have a size that is
//! divisible by 4 with no remainder"). A CURVE key (32 bytes) is 40 characters, as libzmq's
//! `zmq_z85_encode` / `zmq_z85_decode` and its `ZMQ_CURVE_*KEY` options use them.
//!
//! ```
//! use zmtp_core::mechanism::z85;
//!
//! // RFC 32's test vector.
//! let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
//! let mut text = [0u8; 10];
//! assert_eq!(z85::encode(&data, &mut text), Ok(10));
//! assert_eq!(&text, b"HelloWorld");
//! let mut back = [0u8; 8];
//! assert_eq!(z85::decode(b"HelloWorld", &mut back), Ok(8));
//! assert_eq!(back, data);
//! ```

/// RFC 32's alphabet: digit value `i` is `ALPHABET[i]`.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Length of a Z85-encoded 32-byte key.
pub const KEY_TEXT_LEN: usize = 40;

/// Why Z85 data could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Z85Error {
    /// Binary input not a multiple of 4 bytes, or text not a multiple of 5 characters (or,
    /// for a key, not exactly 32 bytes / 40 characters).
    Length,
    /// A character outside the Z85 alphabet.
    InvalidChar,
    /// Five characters whose value exceeds 2^32 - 1 (no 4-byte input encodes to them).
    Overflow,
    /// The output buffer is too short.
    BufferTooSmall,
}

impl core::fmt::Display for Z85Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Z85Error::Length => "Z85 input length is not a multiple of 4 (binary) or 5 (text)",
            Z85Error::InvalidChar => "character outside the Z85 alphabet",
            Z85Error::Overflow => "Z85 group exceeds 32 bits",
            Z85Error::BufferTooSmall => "Z85 output buffer too small",
        })
    }
}

impl core::error::Error for Z85Error {}

/// Length of the text [`encode`] makes of `binary_len` bytes (`None` if not a multiple of 4).
pub const fn encoded_len(binary_len: usize) -> Option<usize> {
    if !binary_len.is_multiple_of(4) {
        return None;
    }
    (binary_len / 4).checked_mul(5)
}

/// Length of the bytes [`decode`] makes of `text_len` characters (`None` if not a multiple of
/// 5).
pub const fn decoded_len(text_len: usize) -> Option<usize> {
    if !text_len.is_multiple_of(5) {
        return None;
    }
    Some(text_len / 5 * 4)
}

/// Encodes `data` (a multiple of 4 bytes) into `out`; returns the text length.
pub fn encode(data: &[u8], out: &mut [u8]) -> Result<usize, Z85Error> {
    let n = encoded_len(data.len()).ok_or(Z85Error::Length)?;
    let out = out.get_mut(..n).ok_or(Z85Error::BufferTooSmall)?;
    for (chunk, text) in data.chunks_exact(4).zip(out.chunks_exact_mut(5)) {
        let mut value = chunk.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b));
        // Least significant digit last: fill from the end.
        for slot in text.iter_mut().rev() {
            *slot = ALPHABET.get((value % 85) as usize).copied().unwrap_or(b'0');
            value /= 85;
        }
    }
    Ok(n)
}

/// The digit value of a Z85 character.
fn digit(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

/// Decodes `text` (a multiple of 5 characters) into `out`; returns the byte length.
pub fn decode(text: &[u8], out: &mut [u8]) -> Result<usize, Z85Error> {
    let n = decoded_len(text.len()).ok_or(Z85Error::Length)?;
    let out = out.get_mut(..n).ok_or(Z85Error::BufferTooSmall)?;
    for (group, bytes) in text.chunks_exact(5).zip(out.chunks_exact_mut(4)) {
        let mut value: u32 = 0;
        for &c in group {
            let d = digit(c).ok_or(Z85Error::InvalidChar)?;
            value = value
                .checked_mul(85)
                .and_then(|v| v.checked_add(d))
                .ok_or(Z85Error::Overflow)?;
        }
        bytes.copy_from_slice(&value.to_be_bytes());
    }
    Ok(n)
}

/// Encodes a 32-byte CURVE key as its 40 characters (libzmq's `zmq_z85_encode` of a key).
pub fn encode_key(key: &[u8; 32]) -> [u8; KEY_TEXT_LEN] {
    let mut out = [0u8; KEY_TEXT_LEN];
    // 32 is a multiple of 4 and the buffer is exactly 40 bytes: cannot fail.
    let _ = encode(key, &mut out);
    out
}

/// Decodes a 40-character Z85 key into its 32 bytes (libzmq's `zmq_z85_decode` of a key).
pub fn decode_key(text: &[u8]) -> Result<[u8; 32], Z85Error> {
    if text.len() != KEY_TEXT_LEN {
        return Err(Z85Error::Length);
    }
    let mut key = [0u8; 32];
    decode(text, &mut key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_test_vector() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        let mut t = [0u8; 10];
        assert_eq!(encode(&data, &mut t), Ok(10));
        assert_eq!(&t, b"HelloWorld");
        let mut b = [0u8; 8];
        assert_eq!(decode(&t, &mut b), Ok(8));
        assert_eq!(b, data);
    }

    #[test]
    fn errors() {
        let mut out = [0u8; 64];
        assert_eq!(encode(&[1, 2, 3], &mut out), Err(Z85Error::Length));
        assert_eq!(decode(b"Hell", &mut out), Err(Z85Error::Length));
        assert_eq!(decode(b"Hell ", &mut out), Err(Z85Error::InvalidChar));
        assert_eq!(decode(b"#####", &mut out), Err(Z85Error::Overflow));
        assert_eq!(decode(b"%nSc0", &mut out), Ok(4)); // 0xFFFFFFFF
        assert_eq!(out[..4], [0xff; 4]);
        assert_eq!(
            encode(&[0; 8], &mut [0u8; 9]),
            Err(Z85Error::BufferTooSmall)
        );
        assert_eq!(decode_key(b"HelloWorld"), Err(Z85Error::Length));
        assert_eq!(encode(&[], &mut []), Ok(0));
    }

    #[test]
    fn round_trips_every_byte() {
        let data: [u8; 256] = core::array::from_fn(|i| i as u8);
        let mut t = [0u8; 320];
        encode(&data, &mut t).unwrap();
        let mut b = [0u8; 256];
        decode(&t, &mut b).unwrap();
        assert_eq!(b, data);
        let key: [u8; 32] = core::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(decode_key(&encode_key(&key)), Ok(key));
    }
}
