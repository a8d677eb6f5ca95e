//! PLAIN (RFC 24) and CURVE (RFC 25/26) for zmtp-std sockets: the options, keys from the
//! operating system's RNG, allow-lists, and what is reported when a handshake is refused.
//!
//! The options follow libzmq's: setting [`curve_server`](crate::Socket::set_curve_server) or
//! [`plain_server`](crate::Socket::set_plain_server) makes a socket a server of that
//! mechanism; setting [`curve_serverkey`](crate::Socket::set_curve_serverkey) or
//! [`plain_username`](crate::Socket::set_plain_username) makes it a client. The last of these
//! set wins, as in libzmq. The mechanism is a property of the socket, not of a connection: a
//! CURVE server only talks to CURVE clients (a NULL or PLAIN peer is a mechanism mismatch and
//! is disconnected, RFC 23 §"Security Mechanism": "the peer SHALL close the connection").
//!
//! How a server decides whom to let in is in [`crate::zap`].

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError, RwLock};

use zeroize::{Zeroize, Zeroizing};
use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom, KEY_LEN};
use zmtp_core::mechanism::z85;
use zmtp_core::{CloseReason, Security};

use crate::error::{Error, Result};
use crate::zap::Credentials;

/// Which security mechanism a socket uses (libzmq's `ZMQ_MECHANISM`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// No security (the default).
    #[default]
    Null,
    /// PLAIN (RFC 24): user name and password, in clear.
    Plain,
    /// CURVE (RFC 25/26): authenticated encryption with long-term key pairs.
    Curve,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Null => "NULL",
            Mechanism::Plain => "PLAIN",
            Mechanism::Curve => "CURVE",
        })
    }
}

/// Bytes that are wiped from memory when dropped, and never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes (a copy of) `bytes`.
    pub fn new(bytes: &[u8]) -> SecretBytes {
        SecretBytes(bytes.to_vec())
    }

    /// The secret. Handle with care.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// A socket's security options (part of [`SocketOptions`](crate::SocketOptions)), set with
/// the socket's `set_curve_*`, `set_plain_*` and `set_zap_domain` methods. Secrets are wiped
/// when dropped and never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    mechanism: Mechanism,
    as_server: bool,
    curve_publickey: Option<[u8; KEY_LEN]>,
    curve_secretkey: Option<Zeroizing<[u8; KEY_LEN]>>,
    curve_serverkey: Option<[u8; KEY_LEN]>,
    plain_username: Vec<u8>,
    plain_password: SecretBytes,
    zap_domain: Vec<u8>,
}

impl fmt::Debug for SecurityOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityOptions")
            .field("mechanism", &self.mechanism)
            .field("as_server", &self.as_server)
            .field("curve_publickey", &self.curve_publickey.map(z85_string))
            .field(
                "curve_secretkey",
                &self.curve_secretkey.as_ref().map(|_| ".."),
            )
            .field("curve_serverkey", &self.curve_serverkey.map(z85_string))
            .field(
                "plain_username",
                &String::from_utf8_lossy(&self.plain_username),
            )
            .field("plain_password", &self.plain_password)
            .field("zap_domain", &String::from_utf8_lossy(&self.zap_domain))
            .finish()
    }
}

fn z85_string(key: [u8; KEY_LEN]) -> String {
    String::from_utf8_lossy(&z85::encode_key(&key)).into_owned()
}

fn invalid(option: &'static str, reason: &'static str) -> Error {
    Error::InvalidOption { option, reason }
}

/// A CURVE key given as 32 bytes, or 40 Z85 characters (41 with a trailing NUL, as C callers
/// of libzmq pass it).
pub(crate) fn parse_key(option: &'static str, key: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let text = key
        .strip_suffix(b"\0")
        .filter(|t| t.len() == 40)
        .unwrap_or(key);
    match text.len() {
        KEY_LEN => {
            let mut k = Zeroizing::new([0u8; KEY_LEN]);
            k.copy_from_slice(text);
            Ok(k)
        }
        z85::KEY_TEXT_LEN => z85::decode_key(text).map(Zeroizing::new).map_err(|_| {
            invalid(
                option,
                "not a Z85 key (40 characters of the Z85 alphabet, RFC 32)",
            )
        }),
        _ => Err(invalid(
            option,
            "a CURVE key is 32 bytes, or 40 characters in Z85",
        )),
    }
}

impl SecurityOptions {
    /// The mechanism the socket uses.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the socket is the server of its mechanism (`ZMQ_CURVE_SERVER`,
    /// `ZMQ_PLAIN_SERVER`).
    pub fn is_server(&self) -> bool {
        self.as_server && self.mechanism != Mechanism::Null
    }

    /// Our CURVE public key (`ZMQ_CURVE_PUBLICKEY`; derived from the secret key if only that
    /// was set).
    pub fn curve_publickey(&self) -> Option<[u8; KEY_LEN]> {
        self.curve_publickey.or_else(|| {
            self.curve_secretkey
                .as_ref()
                .map(|s| *CurveKeyPair::from_secret(**s).public_key())
        })
    }

    /// Whether a CURVE secret key is set (it is not readable back).
    pub fn has_curve_secretkey(&self) -> bool {
        self.curve_secretkey.is_some()
    }

    /// The server's CURVE public key a client checks (`ZMQ_CURVE_SERVERKEY`).
    pub fn curve_serverkey(&self) -> Option<[u8; KEY_LEN]> {
        self.curve_serverkey
    }

    /// The PLAIN user name (`ZMQ_PLAIN_USERNAME`).
    pub fn plain_username(&self) -> &[u8] {
        &self.plain_username
    }

    /// The ZAP domain (`ZMQ_ZAP_DOMAIN`) sent in ZAP requests.
    pub fn zap_domain(&self) -> &[u8] {
        &self.zap_domain
    }

    // ---------------------------------------------------------------- setters (crate)

    pub(crate) fn set_curve_server(&mut self, on: bool) {
        // libzmq: ZMQ_CURVE_SERVER=1 makes a CURVE server, 0 goes back to NULL.
        self.mechanism = if on {
            Mechanism::Curve
        } else {
            Mechanism::Null
        };
        self.as_server = on;
    }

    pub(crate) fn set_curve_serverkey(&mut self, key: [u8; KEY_LEN]) {
        self.curve_serverkey = Some(key);
        self.mechanism = Mechanism::Curve;
        self.as_server = false;
    }

    pub(crate) fn set_curve_publickey(&mut self, key: [u8; KEY_LEN]) {
        self.curve_publickey = Some(key);
        self.mechanism = Mechanism::Curve;
    }

    pub(crate) fn set_curve_secretkey(&mut self, key: Zeroizing<[u8; KEY_LEN]>) {
        self.curve_secretkey = Some(key);
        self.mechanism = Mechanism::Curve;
    }

    pub(crate) fn set_plain_server(&mut self, on: bool) {
        self.mechanism = if on {
            Mechanism::Plain
        } else {
            Mechanism::Null
        };
        self.as_server = on;
    }

    pub(crate) fn set_plain_username(&mut self, user: &[u8]) {
        self.plain_username = user.to_vec();
        self.mechanism = Mechanism::Plain;
        self.as_server = false;
    }

    pub(crate) fn set_plain_password(&mut self, password: &[u8]) {
        self.plain_password = SecretBytes::new(password);
        self.mechanism = Mechanism::Plain;
        self.as_server = false;
    }

    pub(crate) fn set_zap_domain(&mut self, domain: &[u8]) {
        self.zap_domain = domain.to_vec();
    }

    /// Checks that the options make a working mechanism (at bind/connect time).
    pub(crate) fn validate(&self) -> Result<()> {
        match self.mechanism {
            Mechanism::Null => Ok(()),
            Mechanism::Plain => {
                if !self.as_server
                    && (self.plain_username.len() > 255 || self.plain_password.len() > 255)
                {
                    return Err(invalid(
                        "plain_username",
                        "PLAIN user name and password are at most 255 bytes each (RFC 24)",
                    ));
                }
                Ok(())
            }
            Mechanism::Curve => {
                let Some(secret) = &self.curve_secretkey else {
                    return Err(invalid(
                        "curve_secretkey",
                        "a CURVE socket needs its secret key (set curve_secretkey)",
                    ));
                };
                if let Some(public) = self.curve_publickey {
                    if CurveKeyPair::from_secret(**secret).public_key() != &public {
                        return Err(invalid(
                            "curve_publickey",
                            "does not belong to curve_secretkey",
                        ));
                    }
                }
                if !self.as_server && self.curve_serverkey.is_none() {
                    return Err(invalid(
                        "curve_serverkey",
                        "a CURVE client needs the server's public key (set curve_serverkey, \
                         or curve_server for a server)",
                    ));
                }
                Ok(())
            }
        }
    }

    /// What the I/O thread keeps for the core's [`Security`] (which borrows it).
    pub(crate) fn material(&self) -> Material {
        let kind = match (self.mechanism, self.is_server()) {
            (Mechanism::Plain, false) => Kind::PlainClient,
            (Mechanism::Plain, true) => Kind::PlainServer,
            (Mechanism::Curve, false) => Kind::CurveClient,
            (Mechanism::Curve, true) => Kind::CurveServer,
            _ => Kind::Null,
        };
        Material {
            kind,
            keys: self
                .curve_secretkey
                .as_ref()
                .map(|s| CurveKeyPair::from_secret(**s)),
            server_key: self.curve_serverkey.unwrap_or([0; KEY_LEN]),
            username: self.plain_username.clone(),
            password: self.plain_password.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    PlainClient,
    PlainServer,
    CurveClient,
    CurveServer,
}

/// A socket's security material, owned next to the core socket that borrows it (see
/// `owned.rs`); the CURVE secret and the password are wiped when it is dropped.
pub(crate) struct Material {
    pub(crate) kind: Kind,
    keys: Option<CurveKeyPair>,
    server_key: [u8; KEY_LEN],
    username: Vec<u8>,
    password: SecretBytes,
}

impl Material {
    /// The core's configuration, borrowing `self`.
    pub(crate) fn security(&self) -> Security<'_> {
        match (self.kind, &self.keys) {
            (Kind::PlainClient, _) => Security::PlainClient {
                username: &self.username,
                password: self.password.expose(),
            },
            (Kind::PlainServer, _) => Security::PlainServer,
            (Kind::CurveClient, Some(keys)) => Security::CurveClient {
                server_key: self.server_key,
                keys,
            },
            (Kind::CurveServer, Some(keys)) => Security::CurveServer { keys },
            // Validated before: a CURVE socket always has keys.
            _ => Security::Null,
        }
    }
}

/// Fresh randomness for one CURVE connection, from the operating system.
pub(crate) fn curve_random() -> std::io::Result<CurveRandom> {
    let mut failed = None;
    let r = CurveRandom::from_fn(|b| {
        if let Err(e) = getrandom::fill(b) {
            failed = Some(e);
        }
    });
    match failed {
        Some(e) => Err(std::io::Error::other(e)),
        None => Ok(r),
    }
}

/// A new CURVE key pair from the operating system's RNG, in Z85 (40 characters each), like
/// libzmq's `zmq_curve_keypair` and pyzmq's `zmq.curve_keypair()`: `(public, secret)`. The
/// secret is wiped from memory when dropped.
///
/// ```
/// let (public, secret) = zmtp_std::curve_keypair()?;
/// assert_eq!((public.len(), secret.len()), (40, 40));
/// assert_eq!(zmtp_std::curve_public(&secret)?, public);
/// # Ok::<(), zmtp_std::Error>(())
/// ```
pub fn curve_keypair() -> Result<(String, Zeroizing<String>)> {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(secret.as_mut()).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let pair = CurveKeyPair::from_secret(*secret);
    let public = String::from_utf8_lossy(&pair.public_key_z85()).into_owned();
    let secret_text = pair.secret_key_z85();
    let secret = Zeroizing::new(String::from_utf8_lossy(&*secret_text).into_owned());
    Ok((public, secret))
}

/// The public key (Z85) of a secret key given as 32 bytes or 40 Z85 characters, like
/// libzmq's `zmq_curve_public`.
pub fn curve_public(secret: impl AsRef<[u8]>) -> Result<String> {
    let secret = parse_key("curve_secretkey", secret.as_ref())?;
    Ok(z85_string(*CurveKeyPair::from_secret(*secret).public_key()))
}

// ==================================================================== allow-lists

/// Credentials let in without asking a ZAP handler (see [`crate::zap`]).
#[derive(Default)]
pub(crate) struct AllowList {
    curve: Vec<[u8; KEY_LEN]>,
    plain: Vec<(Vec<u8>, SecretBytes)>,
}

impl AllowList {
    pub(crate) fn allow_curve_key(&mut self, key: [u8; KEY_LEN]) {
        if !self.curve.contains(&key) {
            self.curve.push(key);
        }
    }

    pub(crate) fn allow_plain(&mut self, user: &[u8], password: &[u8]) {
        self.plain.retain(|(u, _)| u != user);
        self.plain.push((user.to_vec(), SecretBytes::new(password)));
    }

    pub(crate) fn clear(&mut self) {
        self.curve.clear();
        self.plain.clear();
    }

    /// `None`: no list for this mechanism (ask further). `Some(ok)`: the list decides.
    pub(crate) fn decide(&self, credentials: &Credentials) -> Option<bool> {
        match credentials {
            Credentials::Curve { public_key } => {
                (!self.curve.is_empty()).then(|| self.curve.contains(public_key))
            }
            Credentials::Plain { username, password } => (!self.plain.is_empty()).then(|| {
                self.plain
                    .iter()
                    .any(|(u, p)| u == username && same(p.expose(), password.expose()))
            }),
        }
    }
}

/// Compares without an early exit (passwords).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ==================================================================== failures

/// Why a connection's security handshake failed, as seen by one socket
/// ([`Socket::auth_failures`](crate::Socket::auth_failures)); libzmq reports the same
/// through monitor events (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`, `_PROTOCOL`, `_NO_DETAIL`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailureKind {
    /// We (the server) turned the client away: the ZAP status code (300, 400 or 500; RFC 27)
    /// and text, also sent to the client as the reason of an ERROR command (RFC 23).
    Rejected {
        /// `300` temporary error, `400` authentication failure, `500` internal error.
        status_code: u16,
        /// The handler's explanation (not sent to the client).
        status_text: String,
    },
    /// The server turned us (the client) away with an ERROR command: wrong credentials, a
    /// server key the server does not hold, or its ZAP handler said no. We do not reconnect.
    RefusedByServer {
        /// The ERROR command's reason (RFC 37 §"The ERROR Command"), as text (invalid UTF-8
        /// replaced): libzmq and zmtp servers send the ZAP status code (`400`, `300`, `500`;
        /// RFC 27). Empty if the server sent none.
        reason: String,
    },
    /// The peer uses another mechanism, or broke the mechanism's rules (a box that did not
    /// open: for example the wrong server key). The connection was closed.
    Handshake(CloseReason),
}

impl fmt::Display for AuthFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailureKind::Rejected {
                status_code,
                status_text,
            } => write!(f, "client rejected: {status_code} {status_text}"),
            AuthFailureKind::RefusedByServer { reason } if reason.is_empty() => {
                f.write_str("the server refused our credentials")
            }
            AuthFailureKind::RefusedByServer { reason } => {
                write!(f, "the server refused our credentials: {reason}")
            }
            AuthFailureKind::Handshake(r) => write!(f, "security handshake failed: {r}"),
        }
    }
}

/// One failed security handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthFailure {
    /// The peer's address, if known.
    pub peer: Option<SocketAddr>,
    /// What happened.
    pub kind: AuthFailureKind,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(p) => write!(f, "{p}: {}", self.kind),
            None => self.kind.fmt(f),
        }
    }
}

/// Failures kept per socket until read (the oldest go first beyond this).
const MAX_FAILURES: usize = 64;

/// The security state one application socket shares with the I/O thread.
#[derive(Default)]
pub(crate) struct SocketSecurity {
    pub(crate) allow: RwLock<AllowList>,
    failures: Mutex<VecDeque<AuthFailure>>,
}

impl fmt::Debug for SocketSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketSecurity").finish_non_exhaustive()
    }
}

impl SocketSecurity {
    pub(crate) fn record(&self, failure: AuthFailure) {
        log::info!("zmtp-std: {failure}");
        let mut q = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= MAX_FAILURES {
            q.pop_front();
        }
        q.push_back(failure);
    }

    pub(crate) fn take_failures(&self) -> Vec<AuthFailure> {
        let mut q = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        q.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_bytes_or_z85() {
        let (public, secret) = curve_keypair().unwrap();
        let bin = parse_key("k", public.as_bytes()).unwrap();
        assert_eq!(z85_string(*bin), public);
        assert_eq!(*parse_key("k", &*bin).unwrap(), *bin);
        let mut with_nul = public.clone().into_bytes();
        with_nul.push(0);
        assert_eq!(*parse_key("k", &with_nul).unwrap(), *bin);
        assert!(matches!(
            parse_key("k", b"short"),
            Err(Error::InvalidOption { option: "k", .. })
        ));
        assert!(parse_key("k", &[b'"'; 40]).is_err());
        assert_eq!(curve_public(secret.as_bytes()).unwrap(), public);
    }

    #[test]
    fn validation_names_the_missing_option() {
        let mut o = SecurityOptions::default();
        o.validate().unwrap();
        o.set_curve_serverkey([7; 32]);
        let e = o.validate().unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    option: "curve_secretkey",
                    ..
                }
            ),
            "{e}"
        );
        o.set_curve_secretkey(Zeroizing::new([1; 32]));
        o.validate().unwrap();
        o.set_curve_publickey([2; 32]);
        assert!(matches!(
            o.validate(),
            Err(Error::InvalidOption {
                option: "curve_publickey",
                ..
            })
        ));
        let mut c = SecurityOptions::default();
        c.set_curve_secretkey(Zeroizing::new([1; 32]));
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidOption {
                option: "curve_serverkey",
                ..
            })
        ));
        c.set_curve_server(true);
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("[1, 1"), "{c:?}");
    }

    #[test]
    fn allow_lists_decide_only_for_their_mechanism() {
        let mut a = AllowList::default();
        let curve = |k| Credentials::Curve { public_key: k };
        let plain = |u: &[u8], p: &[u8]| Credentials::Plain {
            username: u.to_vec(),
            password: SecretBytes::new(p),
        };
        assert_eq!(a.decide(&curve([1; 32])), None);
        a.allow_curve_key([1; 32]);
        assert_eq!(a.decide(&curve([1; 32])), Some(true));
        assert_eq!(a.decide(&curve([2; 32])), Some(false));
        assert_eq!(a.decide(&plain(b"u", b"p")), None);
        a.allow_plain(b"u", b"p");
        assert_eq!(a.decide(&plain(b"u", b"p")), Some(true));
        assert_eq!(a.decide(&plain(b"u", b"q")), Some(false));
        assert_eq!(a.decide(&plain(b"v", b"p")), Some(false));
    }
}
