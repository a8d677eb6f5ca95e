//! The 64-byte greeting (RFC 37 §"Version Negotiation", §"Security Handshake").
//!
//! ```text
//! greeting  = signature version mechanism as-server filler
//! signature = %xFF padding %x7F        ; padding: 8 octets
//! version   = %x03 %x01                ; major, minor
//! mechanism = 20OCTET                  ; name, NUL-padded
//! as-server = %x00 | %x01
//! filler    = 31%x00
//! ```

use super::Status;

/// Length of a whole greeting.
pub const GREETING_LEN: usize = 64;
/// Length of the signature (first part libzmq sends on its own).
pub const SIGNATURE_LEN: usize = 10;
/// Length of the mechanism field.
pub const MECHANISM_LEN: usize = 20;

/// A greeting that tells us the peer is not a ZMTP 3.x peer we will talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GreetingError {
    /// Byte 0 is not `FF`, or byte 9 has bit 0 clear: a ZMTP 1.0 peer or not ZMTP at all.
    BadSignature,
    /// Major version below 3 (ZMTP 2.0 or older). We never downgrade (CVE-2014-7202/9721).
    UnsupportedVersion {
        /// The peer's major version.
        major: u8,
    },
}

/// A mechanism name as carried in the greeting: 20 bytes, NUL-padded.
#[derive(Clone, Copy, Eq)]
pub struct Mechanism([u8; MECHANISM_LEN]);

// By hand, not derived: the derived `==` on the array calls `memcmp` (see `same_bytes`).
impl PartialEq for Mechanism {
    fn eq(&self, other: &Mechanism) -> bool {
        super::same_bytes(&self.0, &other.0)
    }
}

// Consistent with `eq`: equal mechanisms have equal bytes.
impl core::hash::Hash for Mechanism {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Mechanism {
    /// The NULL mechanism (RFC 37 §"The NULL Security Mechanism").
    pub const NULL: Mechanism = Mechanism::from_name(b"NULL");
    /// The PLAIN mechanism (RFC 24).
    pub const PLAIN: Mechanism = Mechanism::from_name(b"PLAIN");
    /// The CURVE mechanism (RFC 25).
    pub const CURVE: Mechanism = Mechanism::from_name(b"CURVE");

    // Only evaluated in constants, on literals: a bad index would fail the build, not panic.
    #[allow(clippy::indexing_slicing)]
    const fn from_name(name: &[u8]) -> Mechanism {
        let mut raw = [0u8; MECHANISM_LEN];
        let mut i = 0;
        while i < name.len() && i < MECHANISM_LEN {
            raw[i] = name[i];
            i += 1;
        }
        Mechanism(raw)
    }

    /// The raw 20 bytes.
    pub const fn from_raw(raw: [u8; MECHANISM_LEN]) -> Mechanism {
        Mechanism(raw)
    }

    /// The raw 20 bytes as sent on the wire.
    pub const fn as_raw(&self) -> &[u8; MECHANISM_LEN] {
        &self.0
    }

    /// The name up to the first NUL.
    pub fn name(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(MECHANISM_LEN);
        self.0.get(..end).unwrap_or(&[])
    }
}

impl core::fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match core::str::from_utf8(self.name()) {
            Ok(s)
                if self
                    .0
                    .get(self.name().len()..)
                    .is_some_and(|t| t.iter().all(|&b| b == 0)) =>
            {
                write!(f, "Mechanism({s})")
            }
            _ => write!(f, "Mechanism({:02x?})", self.0),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Mechanism {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Mechanism({=[u8]:a})", self.name())
    }
}

/// A parsed greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Greeting {
    /// Major version (3 or higher once parsed).
    pub major: u8,
    /// Minor version (0 for a ZMTP 3.0 peer).
    pub minor: u8,
    /// The mechanism field, unchanged.
    pub mechanism: Mechanism,
    /// The as-server field (bit 0 of byte 32). Informational: libzmq always sends 0.
    pub as_server: bool,
}

impl Greeting {
    /// Our greeting: ZMTP 3.1 with the given mechanism.
    pub const fn new(mechanism: Mechanism, as_server: bool) -> Self {
        Greeting {
            major: 3,
            minor: 1,
            mechanism,
            as_server,
        }
    }

    /// Checks whatever prefix of a greeting has arrived, so a ZMTP 1.0/2.0 peer is turned away
    /// as soon as its first bytes show it, without waiting for 64 bytes that may never come.
    ///
    /// Per PROTOCOL.md, bytes 1-8 (libzmq writes the identity length there) and the filler are
    /// not validated, and neither is as-server.
    pub fn check_prefix(bytes: &[u8]) -> Result<(), GreetingError> {
        // RFC 37 §"Version Negotiation": signature is %xFF padding %x7F; a ZMTP 1.0 peer has
        // bit 0 of byte 9 clear.
        if bytes.first().is_some_and(|&b| b != 0xFF) {
            return Err(GreetingError::BadSignature);
        }
        if bytes.get(9).is_some_and(|&b| b & 1 == 0) {
            return Err(GreetingError::BadSignature);
        }
        // RFC 37: "a peer MUST accept higher protocol versions as valid" -- only < 3 is refused.
        match bytes.get(10) {
            Some(&major) if major < 3 => Err(GreetingError::UnsupportedVersion { major }),
            _ => Ok(()),
        }
    }

    /// Parses a greeting; [`Status::Partial`] until 64 bytes are there (an invalid prefix is
    /// reported as soon as it is seen). The mechanism is not compared here.
    pub fn parse(bytes: &[u8]) -> Result<Status<Greeting>, GreetingError> {
        Self::check_prefix(bytes)?;
        let Some(g) = bytes.first_chunk::<GREETING_LEN>() else {
            return Ok(Status::Partial);
        };
        let [_, _, _, _, _, _, _, _, _, _, major, minor, rest @ ..] = g;
        let Some((mech, rest)) = rest.split_first_chunk::<MECHANISM_LEN>() else {
            return Ok(Status::Partial);
        };
        let as_server = rest.first().is_some_and(|&b| b & 1 != 0);
        Ok(Status::Complete(Greeting {
            major: *major,
            minor: *minor,
            mechanism: Mechanism(*mech),
            as_server,
        }))
    }

    /// Whether the peer speaks ZMTP 3.1 or later (SUBSCRIBE/CANCEL commands, PING).
    pub const fn is_31_or_later(&self) -> bool {
        self.major > 3 || self.minor >= 1
    }

    /// Writes the 64-byte greeting: `FF 00*8 7F 03 01`, mechanism, as-server, 31 zero bytes.
    pub fn emit(&self, buf: &mut [u8; GREETING_LEN]) {
        *buf = [0; GREETING_LEN];
        let [sig0, _, _, _, _, _, _, _, _, sig9, major, minor, rest @ ..] = buf;
        *sig0 = 0xFF;
        *sig9 = 0x7F;
        *major = self.major;
        *minor = self.minor;
        if let Some((mech, rest)) = rest.split_first_chunk_mut::<MECHANISM_LEN>() {
            *mech = self.mechanism.0;
            if let Some(a) = rest.first_mut() {
                *a = u8::from(self.as_server);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_null_client() {
        let mut b = [0u8; 64];
        Greeting::new(Mechanism::NULL, false).emit(&mut b);
        let mut want = [0u8; 64];
        want[0] = 0xff;
        want[9] = 0x7f;
        want[10] = 3;
        want[11] = 1;
        want[12..16].copy_from_slice(b"NULL");
        assert_eq!(b, want);
        assert_eq!(
            Greeting::parse(&b),
            Ok(Status::Complete(Greeting::new(Mechanism::NULL, false)))
        );
    }

    #[test]
    fn mechanism_debug_and_name() {
        assert_eq!(Mechanism::PLAIN.name(), b"PLAIN");
        assert_eq!(format!("{:?}", Mechanism::CURVE), "Mechanism(CURVE)");
    }
}
