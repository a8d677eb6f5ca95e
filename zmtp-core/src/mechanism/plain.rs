//! The PLAIN mechanism's commands (RFC 24).
//!
//! ```text
//! plain    = C:hello ( S:welcome | S:error ) C:initiate ( S:ready | S:error ) *message
//! hello    = command-size %d5 "HELLO" username password
//! username = OCTET *VCHAR
//! password = OCTET *VCHAR
//! welcome  = command-size %d7 "WELCOME"
//! initiate = command-size %d8 "INITIATE" metadata
//! ```

/// A HELLO body that does not follow the grammar: the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MalformedHello;

/// Parses HELLO's data (after the name): `username-len username password-len password`,
/// nothing after.
pub fn parse_hello(data: &[u8]) -> Result<(&[u8], &[u8]), MalformedHello> {
    let (&ulen, rest) = data.split_first().ok_or(MalformedHello)?;
    let (user, rest) = rest
        .split_at_checked(usize::from(ulen))
        .ok_or(MalformedHello)?;
    let (&plen, pass) = rest.split_first().ok_or(MalformedHello)?;
    if pass.len() != usize::from(plen) {
        return Err(MalformedHello);
    }
    Ok((user, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_grammar() {
        assert_eq!(parse_hello(b"\x03bob\x02pw"), Ok((&b"bob"[..], &b"pw"[..])));
        assert_eq!(parse_hello(b"\x00\x00"), Ok((&b""[..], &b""[..])));
        assert_eq!(parse_hello(b""), Err(MalformedHello));
        assert_eq!(parse_hello(b"\x03bo"), Err(MalformedHello));
        assert_eq!(parse_hello(b"\x03bob"), Err(MalformedHello));
        assert_eq!(parse_hello(b"\x03bob\x02pwX"), Err(MalformedHello));
        assert_eq!(parse_hello(b"\x03bob\x02p"), Err(MalformedHello));
    }
}
