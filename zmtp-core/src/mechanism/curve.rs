//! The CURVE mechanism (RFC 25/ZMTP-CURVE, which carries RFC 26/CurveZMQ): keys, per-session
//! randomness, and the six commands' grammar and cryptography.
//!
//! ```text
//! curvezmq = C:hello ( S:welcome | S:error ) C:initiate ( S:ready | S:error ) *message
//! hello    = %d5 "HELLO" %x1 %x0 72%x00 C' short-nonce Box[64 * %x0](C'->S)       ; 200 octets
//! welcome  = %d7 "WELCOME" long-nonce Box[S' + cookie](S->C')                      ; 168 octets
//! cookie   = long-nonce Box[C' + s'](K)                                            ; 96 octets
//! initiate = %d8 "INITIATE" cookie short-nonce Box[C + vouch + metadata](C'->S')   ; 257+ octets
//! vouch    = long-nonce Box[C' + S](C->S')                                         ; 96 octets
//! ready    = %d5 "READY" short-nonce Box[metadata](S'->C')                         ; 30+ octets
//! message  = %d7 "MESSAGE" short-nonce Box[flags + data](C'->S' or S'->C')         ; 33+ octets
//! ```
//!
//! (RFC 26 says the HELLO padding is 70 octets; its grammar, libzmq and the 200-octet total
//! say 72, and so do we.) A box is NaCl's `crypto_box`: a 16-byte Poly1305 tag followed by the
//! XSalsa20 ciphertext, keyed by HSalsa20 of the X25519 shared secret. Short nonces are 8-byte
//! big-endian counters after a 16-byte prefix; long nonces 16 random bytes after an 8-byte
//! prefix.
//!
//! # Using it
//!
//! Both sides have a long-term [`CurveKeyPair`] (libzmq's `ZMQ_CURVE_PUBLICKEY` /
//! `ZMQ_CURVE_SECRETKEY`); the client also knows the server's public key
//! (`ZMQ_CURVE_SERVERKEY`). Choose [`Security::CurveClient`](crate::Security::CurveClient) or
//! [`Security::CurveServer`](crate::Security::CurveServer) in the [`Config`](crate::Config) and
//! start the session with [`Session::new_curve`](crate::Session::new_curve), handing it a fresh
//! [`CurveRandom`] drawn from a cryptographic RNG for that one connection: the core has no
//! RNG of its own. A CURVE server reports each client's long-term public key in
//! [`Event::Authenticate`](crate::Event::Authenticate) (`AuthRequest::public_key`) and waits
//! for [`accept_peer`](crate::Session::accept_peer) or
//! [`reject_peer`](crate::Session::reject_peer), as libzmq asks its ZAP handler.
//!
//! After the handshake every frame, and every command (PING, PONG, SUBSCRIBE, CANCEL, ERROR),
//! travels as a MESSAGE in an ordinary data frame (flags `00`/`02`), its box holding one flags
//! byte (bit 0 MORE, bit 1 COMMAND, as libzmq) and the frame body or command body. A MESSAGE
//! is authenticated as a whole, so **a frame must fit the receive buffer whole** (its body
//! plus [`MESSAGE_OVERHEAD`] plus a 9-byte header): a larger one closes the connection with
//! [`CurveError::MessageTooLarge`], and frames cannot be streamed with
//! [`start_frame`](crate::Session::start_frame) either.
//!
//! # The cookie key
//!
//! The server keeps no state between WELCOME and INITIATE except in the cookie it hands the
//! client, sealed with a short-lived cookie key (RFC 26: discard it "after a short interval,
//! for example 60 seconds, or as soon as the client sends a valid INITIATE"). libzmq draws a
//! fresh cookie key for every WELCOME, that is per connection; a session is one connection, so
//! here too the cookie key comes from the session's [`CurveRandom`], is wiped once INITIATE
//! has been checked, and the handshake is abandoned [`COOKIE_LIFETIME`] after WELCOME.
//!
//! # Crates
//!
//! The cryptography is other people's, pure Rust, `no_std`, no allocation, default features
//! off; zmtp only puts NaCl's box together from its primitives, as NaCl defines it:
//! - `x25519-dalek` 3 (`static_secrets`, `zeroize`): X25519 with secrets wiped on drop, and
//!   `SharedSecret::was_contributory` to refuse low-order public keys as libsodium does.
//!   Without `precomputed-tables` to keep firmware small.
//! - `salsa20` 0.11 (RustCrypto, `zeroize`): HSalsa20, which turns the X25519 secret into the
//!   box key as `crypto_box_beforenm` does, and the Salsa20 keystream, wiped on drop.
//! - `libcrux-poly1305` 0.0.7 (Cryspen's libcrux, HACL*'s formally verified Poly1305 compiled
//!   to Rust): the one-time authenticator. RustCrypto's `poly1305` (0.8 and 0.9) picks an
//!   AVX2 backend at run time on x86 whose per-message setup costs more than the whole
//!   portable computation for frames under a few KiB; its portable backend can only be
//!   chosen with a `--cfg` flag, which a library cannot set for its users.
//! - `subtle` 2 to compare tags in constant time; `zeroize` 1 for our own secrets;
//!   `rand_core` 0.10 for [`CurveRandom::generate`] and [`CurveKeyPair::generate`] (the
//!   version `x25519-dalek` 3 uses).
//!
//! The golden transcript test (`tests/curve.rs`, bytes from libzmq) and the pyzmq interop
//! tests check that the boxes are byte for byte libsodium's. `crypto_box` and
//! `crypto_secretbox` (RustCrypto's NaCl boxes) bring the same `poly1305`.

use core::time::Duration;

use rand_core::CryptoRng;
use salsa20::cipher::consts::U10;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::Salsa20;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

pub use crate::error::CurveError;

use super::z85::{self, Z85Error};

/// Length of a CURVE public or secret key.
pub const KEY_LEN: usize = 32;
/// Bytes a MESSAGE adds to a frame body: name (8), short nonce (8), tag (16), flags (1).
pub const MESSAGE_OVERHEAD: usize = 33;
/// HELLO's body length (RFC 26: "This command SHALL be 200 octets long").
pub const HELLO_LEN: usize = 200;
/// WELCOME's body length (RFC 26: "This command SHALL be 168 octets long").
pub const WELCOME_LEN: usize = 168;
/// INITIATE's body length without metadata (RFC 26: "at least 257 octets long").
pub const INITIATE_MIN_LEN: usize = 257;
/// READY's body length without metadata (RFC 26: "at least 30 octets long").
pub const READY_MIN_LEN: usize = 30;
/// How long after WELCOME a server accepts the cookie back (RFC 26's example interval).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(60);

/// Inner MESSAGE flags (RFC 26 §"The MESSAGE Command"; bit 1 is libzmq's COMMAND bit).
pub(crate) const FLAG_MORE: u8 = 0x01;
pub(crate) const FLAG_COMMAND: u8 = 0x02;

const TAG: usize = 16;

/// Nonce prefixes (RFC 26).
mod prefix {
    pub const HELLO: &[u8; 16] = b"CurveZMQHELLO---";
    pub const INITIATE: &[u8; 16] = b"CurveZMQINITIATE";
    pub const READY: &[u8; 16] = b"CurveZMQREADY---";
    pub const MESSAGE_C: &[u8; 16] = b"CurveZMQMESSAGEC";
    pub const MESSAGE_S: &[u8; 16] = b"CurveZMQMESSAGES";
    pub const WELCOME: &[u8; 8] = b"WELCOME-";
    pub const COOKIE: &[u8; 8] = b"COOKIE--";
    pub const VOUCH: &[u8; 8] = b"VOUCH---";
}

// ==================================================================================== keys

/// A long-term CURVE key pair. The secret is wiped when the pair is dropped; `Debug` and
/// equality look at the public key only.
#[derive(Clone)]
pub struct CurveKeyPair {
    public: [u8; KEY_LEN],
    secret: StaticSecret,
}

impl CurveKeyPair {
    /// The pair of a 32-byte secret key (libzmq's `zmq_curve_public` derives the public half
    /// the same way).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        CurveKeyPair { public, secret }
    }

    /// A new random pair (libzmq's `zmq_curve_keypair`).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret(*bytes)
    }

    /// The pair of a secret key written in Z85 (40 characters, as libzmq's key options take).
    pub fn from_z85_secret(text: &[u8]) -> core::result::Result<Self, Z85Error> {
        let secret = Zeroizing::new(z85::decode_key(text)?);
        Ok(Self::from_secret(*secret))
    }

    /// The public key.
    pub fn public_key(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// The public key in Z85.
    pub fn public_key_z85(&self) -> [u8; z85::KEY_TEXT_LEN] {
        z85::encode_key(&self.public)
    }

    /// The secret key. Handle with care.
    pub fn secret_key(&self) -> &[u8; KEY_LEN] {
        self.secret.as_bytes()
    }

    /// The secret key in Z85, wiped when dropped. Handle with care.
    pub fn secret_key_z85(&self) -> Zeroizing<[u8; z85::KEY_TEXT_LEN]> {
        Zeroizing::new(z85::encode_key(self.secret.as_bytes()))
    }

    fn static_secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl core::fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &HexKey(&self.public))
            .finish_non_exhaustive()
    }
}

struct HexKey<'a>(&'a [u8; KEY_LEN]);

impl core::fmt::Debug for HexKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl PartialEq for CurveKeyPair {
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for CurveKeyPair {}

#[cfg(feature = "defmt")]
impl defmt::Format for CurveKeyPair {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "CurveKeyPair {{ public: {=[u8]:x} }}", self.public)
    }
}

/// The random material one CURVE session needs, drawn by the caller from a cryptographic RNG
/// for **one** connection and never reused (reuse would repeat transient keys and nonces).
/// Wiped when dropped.
///
/// A client uses `transient_secret` (its key C') and `vouch_nonce`; a server uses
/// `transient_secret` (S'), `cookie_key`, `welcome_nonce` and `cookie_nonce`. Fixed values
/// are for tests only (they make a session's bytes reproducible).
pub struct CurveRandom {
    /// The secret half of the connection's transient key pair (C' or s').
    pub transient_secret: [u8; KEY_LEN],
    /// Server: the key sealing the cookie (RFC 26's "cookie key" K).
    pub cookie_key: [u8; KEY_LEN],
    /// Server: WELCOME's long nonce.
    pub welcome_nonce: [u8; 16],
    /// Server: the cookie's long nonce.
    pub cookie_nonce: [u8; 16],
    /// Client: the vouch's long nonce.
    pub vouch_nonce: [u8; 16],
}

impl CurveRandom {
    /// Draws everything from `rng` (for example `rand::rngs::OsRng` or a hardware TRNG).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_fn(|buf| rng.fill_bytes(buf))
    }

    /// Draws everything from `fill`, which must fill each slice it gets with cryptographically
    /// random bytes (for RNGs of other `rand_core` versions).
    pub fn from_fn(mut fill: impl FnMut(&mut [u8])) -> Self {
        let mut r = CurveRandom {
            transient_secret: [0; KEY_LEN],
            cookie_key: [0; KEY_LEN],
            welcome_nonce: [0; 16],
            cookie_nonce: [0; 16],
            vouch_nonce: [0; 16],
        };
        fill(&mut r.transient_secret);
        fill(&mut r.cookie_key);
        fill(&mut r.welcome_nonce);
        fill(&mut r.cookie_nonce);
        fill(&mut r.vouch_nonce);
        r
    }
}

impl Drop for CurveRandom {
    fn drop(&mut self) {
        self.transient_secret.zeroize();
        self.cookie_key.zeroize();
        self.welcome_nonce.zeroize();
        self.cookie_nonce.zeroize();
        self.vouch_nonce.zeroize();
    }
}

impl core::fmt::Debug for CurveRandom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CurveRandom").finish_non_exhaustive()
    }
}

// ==================================================================================== boxes

/// A box key: NaCl's `crypto_box_beforenm` of an X25519 pair, or a secretbox key (the cookie
/// key). Wiped on drop.
///
/// A box is NaCl's `crypto_secretbox` (XSalsa20-Poly1305), put together here from its two
/// primitives exactly as NaCl defines it: XSalsa20(k, n) is Salsa20 keyed by HSalsa20(k,
/// n[..16]) with nonce n[16..]; the first 32 bytes of its keystream are the one-time Poly1305
/// key, the rest encrypts the plaintext, and the tag is Poly1305 of the ciphertext. See
/// [`PrefixKey`] for why it is assembled here rather than taken whole from a crate.
#[derive(Clone)]
struct BoxKey(Zeroizing<[u8; KEY_LEN]>);

impl BoxKey {
    /// HSalsa20(X25519(ours, theirs), 0): the key of Box[..](us->them) and Box[..](them->us).
    /// `None` for a low-order public key (an all-zero shared secret), which libsodium refuses
    /// too.
    fn new(ours: &StaticSecret, theirs: &[u8; KEY_LEN]) -> Option<Self> {
        let shared = ours.diffie_hellman(&PublicKey::from(*theirs));
        if !shared.was_contributory() {
            return None;
        }
        Some(BoxKey(hsalsa20(shared.as_bytes(), &[0; 16])))
    }

    /// A secretbox key (the cookie key).
    fn secret(key: &[u8; KEY_LEN]) -> Self {
        BoxKey(Zeroizing::new(*key))
    }

    /// The key of every nonce starting with `prefix`.
    fn prefix_key(&self, prefix: &[u8; 16]) -> PrefixKey {
        PrefixKey(hsalsa20(&self.0, prefix))
    }

    /// Seals `region` = tag slot (16 bytes) + plaintext into tag + ciphertext, in place.
    fn seal(&self, nonce: &[u8; 24], region: &mut [u8]) -> Option<()> {
        let (prefix, n) = split_nonce(nonce)?;
        self.prefix_key(prefix).seal(n, region)
    }

    /// Opens `region` = tag + ciphertext in place; on success the plaintext follows the tag.
    /// On failure the region is unchanged.
    fn open(&self, nonce: &[u8; 24], region: &mut [u8]) -> bool {
        split_nonce(nonce).is_some_and(|(prefix, n)| self.prefix_key(prefix).open(n, region))
    }
}

/// HSalsa20 (the key derivation of XSalsa20 and of `crypto_box_beforenm`).
fn hsalsa20(key: &[u8; KEY_LEN], input: &[u8; 16]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut derived = salsa20::hsalsa::<U10>(key.into(), input.into());
    let out = Zeroizing::new(derived.into());
    derived.zeroize();
    out
}

/// A 24-byte nonce as XSalsa20 takes it: 16 bytes for HSalsa20, 8 for Salsa20.
fn split_nonce(nonce: &[u8; 24]) -> Option<(&[u8; 16], &[u8; 8])> {
    let (prefix, n) = nonce.split_first_chunk::<16>()?;
    Some((prefix, n.try_into().ok()?))
}

/// A box key bound to a 16-byte nonce prefix: HSalsa20(k, prefix), the Salsa20 key that
/// XSalsa20 uses for every nonce `prefix ‖ n`. Wiped on drop.
///
/// Every MESSAGE one side sends has the same prefix ("CurveZMQMESSAGEC" or
/// "CurveZMQMESSAGES") and an 8-byte counter, so a session derives its two message keys once
/// and each MESSAGE costs one Salsa20 pass and one Poly1305 pass, no HSalsa20. This is the same
/// computation as XSalsa20 for each nonce, only not repeated: the bytes are those of NaCl's
/// `crypto_box_afternm`, and the derived key is a secret like the box key it comes from.
///
/// Poly1305 is `libcrux-poly1305` (Cryspen's, compiled from HACL*'s formally verified code)
/// rather than RustCrypto's `poly1305`: on x86 `poly1305` 0.8 and 0.9 switch at run time to
/// an AVX2 backend whose per-message setup made a 64-byte MESSAGE four times slower than its
/// portable code, which only a `--cfg` flag (that a library cannot set for its users) selects.
/// BENCHMARKS.md ("zmtp-core CURVE") has the measurements.
struct PrefixKey(Zeroizing<[u8; KEY_LEN]>);

impl PrefixKey {
    /// The keystream for nonce `prefix ‖ n`, and the one-time Poly1305 key (its first 32
    /// bytes); the keystream is then positioned at byte 32, where the box's text starts.
    fn start(&self, n: &[u8; 8]) -> Option<(Salsa20, Zeroizing<[u8; 32]>)> {
        let mut stream = Salsa20::new((&*self.0).into(), n.into());
        let mut mac_key = Zeroizing::new([0u8; 32]);
        stream.try_apply_keystream(mac_key.as_mut()).ok()?;
        Some((stream, mac_key))
    }

    /// Seals `region` = tag slot (16 bytes) + plaintext into tag + ciphertext, in place.
    fn seal(&self, n: &[u8; 8], region: &mut [u8]) -> Option<()> {
        let (tag_slot, text) = region.split_at_mut_checked(TAG)?;
        let tag_slot: &mut [u8; TAG] = tag_slot.try_into().ok()?;
        let (mut stream, mac_key) = self.start(n)?;
        stream.try_apply_keystream(text).ok()?;
        libcrux_poly1305::mac(&mac_key, text, tag_slot).ok()
    }

    /// Opens `region` = tag + ciphertext in place; on success the plaintext follows the tag.
    /// On failure the region is unchanged (the tag is checked before anything is decrypted).
    fn open(&self, n: &[u8; 8], region: &mut [u8]) -> bool {
        let Some((tag, text)) = region.split_at_mut_checked(TAG) else {
            return false;
        };
        let Some((mut stream, mac_key)) = self.start(n) else {
            return false;
        };
        let mut expected = [0u8; TAG];
        if libcrux_poly1305::mac(&mac_key, text, &mut expected).is_err() {
            return false;
        }
        if !bool::from(expected.ct_eq(&*tag)) {
            return false;
        }
        stream.try_apply_keystream(text).is_ok()
    }
}

fn short_nonce(prefix: &[u8; 16], n: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    let (p, c) = out.split_at_mut(16);
    p.copy_from_slice(prefix);
    c.copy_from_slice(&n.to_be_bytes());
    out
}

fn long_nonce(prefix: &[u8; 8], n: &[u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let (p, c) = out.split_at_mut(8);
    p.copy_from_slice(prefix);
    c.copy_from_slice(n);
    out
}

fn array<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Option<()> {
    buf.get_mut(at..at.checked_add(bytes.len())?)?
        .copy_from_slice(bytes);
    Some(())
}

/// Compares secrets without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ==================================================================================== state

/// One connection's CURVE state, either side. Secrets are wiped when dropped.
pub(crate) struct CurveState {
    server: bool,
    /// c' or s': dropped (wiped) once INITIATE is sent or checked.
    transient: Option<StaticSecret>,
    transient_public: [u8; KEY_LEN],
    /// S' (client) or C' (server).
    peer_transient: [u8; KEY_LEN],
    /// Server: K, wiped after INITIATE.
    cookie_key: Zeroizing<[u8; KEY_LEN]>,
    welcome_nonce: [u8; 16],
    cookie_nonce: [u8; 16],
    vouch_nonce: [u8; 16],
    /// Client: the cookie from WELCOME, sent back in INITIATE.
    cookie: [u8; 96],
    /// The box keys of the current stage of the handshake.
    keys: Keys,
    /// The next short nonce we send.
    tx_nonce: u64,
    /// The last short nonce received; the next must be larger (RFC 26).
    rx_nonce: u64,
    /// Server: the client's long-term public key C, once INITIATE is checked.
    pub(crate) peer_key: [u8; KEY_LEN],
}

impl core::fmt::Debug for CurveState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CurveState")
            .field("server", &self.server)
            .field("tx_nonce", &self.tx_nonce)
            .field("rx_nonce", &self.rx_nonce)
            .finish_non_exhaustive()
    }
}

type Result<T> = core::result::Result<T, CurveError>;

/// The box keys a session holds, stage by stage (only what the next commands need, so the
/// state stays small).
enum Keys {
    /// Nothing yet (before HELLO).
    None,
    /// Client after HELLO: `hello` = (S, c'), for HELLO and WELCOME. Server after HELLO: the
    /// same key seen as (C', s), and the connection's key `session` = (C', s').
    Hello {
        hello: BoxKey,
        session: Option<BoxKey>,
    },
    /// From WELCOME: the connection's key (S', c') / (C', s'), for INITIATE and READY.
    Session(BoxKey),
    /// From READY: the connection's key bound to our MESSAGE nonce prefix (`tx`) and to the
    /// peer's (`rx`).
    Messages { tx: PrefixKey, rx: PrefixKey },
}

impl CurveState {
    pub(crate) fn new(server: bool, random: &CurveRandom) -> Self {
        let transient = StaticSecret::from(random.transient_secret);
        let transient_public = PublicKey::from(&transient).to_bytes();
        CurveState {
            server,
            transient: Some(transient),
            transient_public,
            peer_transient: [0; KEY_LEN],
            cookie_key: Zeroizing::new(random.cookie_key),
            welcome_nonce: random.welcome_nonce,
            cookie_nonce: random.cookie_nonce,
            vouch_nonce: random.vouch_nonce,
            cookie: [0; 96],
            keys: Keys::None,
            tx_nonce: 1,
            rx_nonce: 0,
            peer_key: [0; KEY_LEN],
        }
    }

    fn next_nonce(&mut self) -> Option<u64> {
        let n = self.tx_nonce;
        // RFC 26: "SHALL NOT send more than 2^64-1 commands in one connection".
        self.tx_nonce = n.checked_add(1)?;
        Some(n)
    }

    /// RFC 26: short nonces strictly increase; a replayed or older one closes.
    fn take_peer_nonce(&mut self, bytes: &[u8]) -> Result<u64> {
        let n = u64::from_be_bytes(array(bytes).ok_or(CurveError::MalformedCommand)?);
        if n <= self.rx_nonce {
            return Err(CurveError::NonceReused);
        }
        self.rx_nonce = n;
        Ok(n)
    }

    fn transient(&self) -> Result<&StaticSecret> {
        self.transient.as_ref().ok_or(CurveError::MalformedCommand)
    }

    fn session(&self) -> Result<&BoxKey> {
        match &self.keys {
            Keys::Session(k) => Ok(k),
            _ => Err(CurveError::MalformedCommand),
        }
    }

    /// The handshake is over: from now on only MESSAGEs, each with one of two nonce prefixes,
    /// so the two prefix keys are derived once here and the session key is dropped.
    fn start_messages(&mut self) -> Result<()> {
        let (ours, theirs) = if self.server {
            (prefix::MESSAGE_S, prefix::MESSAGE_C)
        } else {
            (prefix::MESSAGE_C, prefix::MESSAGE_S)
        };
        let session = self.session()?;
        let (tx, rx) = (session.prefix_key(ours), session.prefix_key(theirs));
        self.keys = Keys::Messages { tx, rx };
        Ok(())
    }

    // ------------------------------------------------------------------ client

    /// Client: writes HELLO's 200-byte body (short nonce 1).
    pub(crate) fn write_hello(
        &mut self,
        server_key: &[u8; KEY_LEN],
        body: &mut [u8],
    ) -> Result<()> {
        let key = BoxKey::new(self.transient()?, server_key).ok_or(CurveError::WeakKey)?;
        let n = self.next_nonce().ok_or(CurveError::NonceReused)?;
        let body = body
            .get_mut(..HELLO_LEN)
            .ok_or(CurveError::MalformedCommand)?;
        body.fill(0);
        let ok = (|| {
            put(body, 0, b"\x05HELLO\x01\x00")?;
            // 72 zero bytes of padding at 8..80 (already zero).
            put(body, 80, &self.transient_public)?;
            put(body, 112, &n.to_be_bytes())?;
            // Box[64 * %x0](C'->S) at 120..200.
            key.seal(&short_nonce(prefix::HELLO, n), body.get_mut(120..200)?)
        })();
        ok.ok_or(CurveError::MalformedCommand)?;
        self.keys = Keys::Hello {
            hello: key,
            session: None,
        };
        Ok(())
    }

    /// Client: checks WELCOME (`body` is the whole command body) and keeps S' and the cookie.
    pub(crate) fn read_welcome(&mut self, body: &mut [u8]) -> Result<()> {
        if body.len() != WELCOME_LEN {
            return Err(CurveError::MalformedCommand);
        }
        let Keys::Hello { hello: key, .. } = core::mem::replace(&mut self.keys, Keys::None) else {
            return Err(CurveError::MalformedCommand);
        };
        let nonce =
            array::<16>(body.get(8..24).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        let region = body.get_mut(24..168).ok_or(CurveError::MalformedCommand)?;
        if !key.open(&long_nonce(prefix::WELCOME, &nonce), region) {
            return Err(CurveError::BoxOpenFailed);
        }
        let plain = body.get(40..168).unwrap_or(&[]);
        self.peer_transient =
            array(plain.get(..32).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        self.cookie =
            array(plain.get(32..128).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        let session =
            BoxKey::new(self.transient()?, &self.peer_transient).ok_or(CurveError::WeakKey)?;
        self.keys = Keys::Session(session);
        Ok(())
    }

    /// Client: INITIATE's body length with `meta_len` bytes of metadata.
    pub(crate) fn initiate_len(meta_len: usize) -> Option<usize> {
        INITIATE_MIN_LEN.checked_add(meta_len)
    }

    /// Client: fills INITIATE's body around the metadata already written at
    /// `body[INITIATE_MIN_LEN..]` (short nonce 2) and seals it.
    pub(crate) fn write_initiate(
        &mut self,
        ours: &CurveKeyPair,
        server_key: &[u8; KEY_LEN],
        body: &mut [u8],
    ) -> Result<()> {
        if body.len() < INITIATE_MIN_LEN {
            return Err(CurveError::MalformedCommand);
        }
        // vouch = long-nonce Box[C' + S](C->S').
        let vouch_key =
            BoxKey::new(ours.static_secret(), &self.peer_transient).ok_or(CurveError::WeakKey)?;
        let n = self.next_nonce().ok_or(CurveError::NonceReused)?;
        let session = self.session()?.clone();
        let ok = (|| {
            put(body, 0, b"\x08INITIATE")?;
            put(body, 9, &self.cookie)?;
            put(body, 105, &n.to_be_bytes())?;
            // Box plaintext from 129: C, vouch nonce, vouch box, metadata.
            put(body, 129, ours.public_key())?;
            put(body, 161, &self.vouch_nonce)?;
            put(body, 193, &self.transient_public)?;
            put(body, 225, server_key)?;
            vouch_key.seal(
                &long_nonce(prefix::VOUCH, &self.vouch_nonce),
                body.get_mut(177..257)?,
            )?;
            session.seal(&short_nonce(prefix::INITIATE, n), body.get_mut(113..)?)
        })();
        ok.ok_or(CurveError::MalformedCommand)?;
        // C' is no longer needed: the session key and the vouch are made.
        self.transient = None;
        Ok(())
    }

    /// Client: opens READY in place; its metadata is then at `body[READY_MIN_LEN..]`.
    pub(crate) fn read_ready(&mut self, body: &mut [u8]) -> Result<()> {
        if body.len() < READY_MIN_LEN {
            return Err(CurveError::MalformedCommand);
        }
        let n = self.take_peer_nonce(body.get(6..14).unwrap_or(&[]))?;
        let session = self.session()?;
        let region = body.get_mut(14..).ok_or(CurveError::MalformedCommand)?;
        if !session.open(&short_nonce(prefix::READY, n), region) {
            return Err(CurveError::BoxOpenFailed);
        }
        self.start_messages()
    }

    // ------------------------------------------------------------------ server

    /// Server: checks HELLO (`body` is the whole command body, name included).
    pub(crate) fn read_hello(&mut self, ours: &CurveKeyPair, body: &mut [u8]) -> Result<()> {
        // RFC 26: "This command SHALL be 200 octets long"; the server "SHALL validate all
        // fields".
        if body.len() != HELLO_LEN {
            return Err(CurveError::MalformedCommand);
        }
        if body.get(6..8) != Some(&[1, 0][..]) {
            return Err(CurveError::UnsupportedVersion);
        }
        if body.get(8..80).is_none_or(|p| p.iter().any(|&b| b != 0)) {
            return Err(CurveError::MalformedCommand);
        }
        let client_transient: [u8; KEY_LEN] =
            array(body.get(80..112).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        let n = self.take_peer_nonce(body.get(112..120).unwrap_or(&[]))?;
        let key =
            BoxKey::new(ours.static_secret(), &client_transient).ok_or(CurveError::WeakKey)?;
        let region = body.get_mut(120..200).ok_or(CurveError::MalformedCommand)?;
        if !key.open(&short_nonce(prefix::HELLO, n), region) {
            return Err(CurveError::BoxOpenFailed);
        }
        // The signature box holds 64 zero octets.
        if body.get(136..200).is_none_or(|z| z.iter().any(|&b| b != 0)) {
            return Err(CurveError::BoxOpenFailed);
        }
        let session =
            BoxKey::new(self.transient()?, &client_transient).ok_or(CurveError::WeakKey)?;
        self.peer_transient = client_transient;
        self.keys = Keys::Hello {
            hello: key,
            session: Some(session),
        };
        Ok(())
    }

    /// Server: writes WELCOME's 168-byte body: Box[S' + cookie](S->C'), the cookie being
    /// Box[C' + s'](K).
    pub(crate) fn write_welcome(&mut self, body: &mut [u8]) -> Result<()> {
        let Keys::Hello {
            hello: key,
            session: Some(session),
        } = core::mem::replace(&mut self.keys, Keys::None)
        else {
            return Err(CurveError::MalformedCommand);
        };
        self.keys = Keys::Session(session);
        let body = body
            .get_mut(..WELCOME_LEN)
            .ok_or(CurveError::MalformedCommand)?;
        // The cookie is sealed on the stack so s' never sits in the transmit buffer.
        let mut cookie = Zeroizing::new([0u8; 16 + 16 + 64]);
        let s_secret = self.transient()?.as_bytes();
        let ok = (|| {
            put(cookie.as_mut(), 0, &self.cookie_nonce)?;
            put(cookie.as_mut(), 32, &self.peer_transient)?;
            put(cookie.as_mut(), 64, s_secret)?;
            BoxKey::secret(&self.cookie_key).seal(
                &long_nonce(prefix::COOKIE, &self.cookie_nonce),
                cookie.get_mut(16..)?,
            )?;
            put(body, 0, b"\x07WELCOME")?;
            put(body, 8, &self.welcome_nonce)?;
            put(body, 40, &self.transient_public)?;
            put(body, 72, cookie.as_ref())?;
            key.seal(
                &long_nonce(prefix::WELCOME, &self.welcome_nonce),
                body.get_mut(24..168)?,
            )
        })();
        ok.ok_or(CurveError::MalformedCommand)
    }

    /// Server: checks INITIATE in place (cookie, box, vouch); its metadata is then at
    /// `body[INITIATE_MIN_LEN..]` and the client's key in `peer_key`. Wipes the cookie key
    /// and s'.
    pub(crate) fn read_initiate(&mut self, ours: &CurveKeyPair, body: &mut [u8]) -> Result<()> {
        if body.len() < INITIATE_MIN_LEN {
            return Err(CurveError::MalformedCommand);
        }
        // The cookie: Box[C' + s'](K), opened on the stack.
        let mut cookie = Zeroizing::new([0u8; 96]);
        cookie.copy_from_slice(body.get(9..105).ok_or(CurveError::MalformedCommand)?);
        let cookie_nonce: [u8; 16] =
            array(cookie.get(..16).unwrap_or(&[])).ok_or(CurveError::InvalidCookie)?;
        let opened = cookie.get_mut(16..).is_some_and(|r| {
            BoxKey::secret(&self.cookie_key).open(&long_nonce(prefix::COOKIE, &cookie_nonce), r)
        });
        let s_secret = self.transient()?.as_bytes();
        if !opened
            || !same(cookie.get(32..64).unwrap_or(&[]), &self.peer_transient)
            || !same(cookie.get(64..96).unwrap_or(&[]), s_secret)
        {
            return Err(CurveError::InvalidCookie);
        }
        let n = self.take_peer_nonce(body.get(105..113).unwrap_or(&[]))?;
        let region = body.get_mut(113..).ok_or(CurveError::MalformedCommand)?;
        if !self
            .session()?
            .open(&short_nonce(prefix::INITIATE, n), region)
        {
            return Err(CurveError::BoxOpenFailed);
        }
        let client_key: [u8; KEY_LEN] =
            array(body.get(129..161).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        let vouch_nonce: [u8; 16] =
            array(body.get(161..177).unwrap_or(&[])).ok_or(CurveError::MalformedCommand)?;
        // The vouch: Box[C' + S](C->S'), which must name this connection and this server.
        let vouch_key =
            BoxKey::new(self.transient()?, &client_key).ok_or(CurveError::InvalidVouch)?;
        let region = body.get_mut(177..257).ok_or(CurveError::MalformedCommand)?;
        if !vouch_key.open(&long_nonce(prefix::VOUCH, &vouch_nonce), region)
            || body.get(193..225) != Some(&self.peer_transient[..])
            || body.get(225..257) != Some(&ours.public_key()[..])
        {
            return Err(CurveError::InvalidVouch);
        }
        self.peer_key = client_key;
        // RFC 26: discard the cookie key "as soon as the client sends a valid INITIATE".
        self.cookie_key.zeroize();
        self.transient = None;
        Ok(())
    }

    /// Server: READY's body length with `meta_len` bytes of metadata.
    pub(crate) fn ready_len(meta_len: usize) -> Option<usize> {
        READY_MIN_LEN.checked_add(meta_len)
    }

    /// Server: fills READY's body around the metadata at `body[READY_MIN_LEN..]` and seals
    /// it (short nonce 1).
    pub(crate) fn write_ready(&mut self, body: &mut [u8]) -> Result<()> {
        let n = self.next_nonce().ok_or(CurveError::NonceReused)?;
        let session = self.session()?;
        let ok = (|| {
            put(body, 0, b"\x05READY")?;
            put(body, 6, &n.to_be_bytes())?;
            session.seal(&short_nonce(prefix::READY, n), body.get_mut(14..)?)
        })();
        ok.ok_or(CurveError::MalformedCommand)?;
        self.start_messages()
    }

    // ------------------------------------------------------------------ traffic

    /// Seals a MESSAGE in place: `body` = 8 name bytes, 8 nonce bytes, 16 tag bytes, then the
    /// plaintext (flags byte and data) already written.
    pub(crate) fn seal_message(&mut self, body: &mut [u8]) -> Result<()> {
        let n = self
            .next_nonce()
            .ok_or(CurveError::NonceReused)?
            .to_be_bytes();
        let Keys::Messages { tx, .. } = &self.keys else {
            return Err(CurveError::MalformedCommand);
        };
        let ok = (|| {
            put(body, 0, b"\x07MESSAGE")?;
            put(body, 8, &n)?;
            tx.seal(&n, body.get_mut(16..)?)
        })();
        ok.ok_or(CurveError::MalformedCommand)
    }

    /// Opens a MESSAGE in place (`body` is the whole frame body); returns the flags byte. The
    /// data is then at `body[MESSAGE_OVERHEAD..]`.
    pub(crate) fn open_message(&mut self, body: &mut [u8]) -> Result<u8> {
        // RFC 26: "at least 33 octets".
        if body.len() < MESSAGE_OVERHEAD || body.get(..8) != Some(b"\x07MESSAGE") {
            return Err(CurveError::MalformedCommand);
        }
        let n = self.take_peer_nonce(body.get(8..16).unwrap_or(&[]))?;
        let Keys::Messages { rx, .. } = &self.keys else {
            return Err(CurveError::MalformedCommand);
        };
        let region = body.get_mut(16..).ok_or(CurveError::MalformedCommand)?;
        if !rx.open(&n.to_be_bytes(), region) {
            return Err(CurveError::BoxOpenFailed);
        }
        let flags = body.get(32).copied().ok_or(CurveError::MalformedCommand)?;
        // RFC 26: bits 7-1 reserved (bit 1 is libzmq's COMMAND); a command has no MORE.
        if flags & !(FLAG_MORE | FLAG_COMMAND) != 0 || flags == FLAG_MORE | FLAG_COMMAND {
            return Err(CurveError::ReservedFlags);
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> CurveRandom {
        let mut k = seed;
        CurveRandom::from_fn(|b| {
            for x in b {
                k = k.wrapping_mul(31).wrapping_add(7);
                *x = k;
            }
        })
    }

    /// A full handshake and a message each way, straight on the state machines.
    #[test]
    fn handshake_and_messages_on_the_states() {
        let server_keys = CurveKeyPair::from_secret([9; 32]);
        let client_keys = CurveKeyPair::from_secret([5; 32]);
        let mut c = CurveState::new(false, &random(1));
        let mut s = CurveState::new(true, &random(2));
        let mut hello = [0u8; HELLO_LEN];
        c.write_hello(server_keys.public_key(), &mut hello).unwrap();
        s.read_hello(&server_keys, &mut hello).unwrap();
        let mut welcome = [0u8; WELCOME_LEN];
        s.write_welcome(&mut welcome).unwrap();
        c.read_welcome(&mut welcome).unwrap();
        let meta = b"\x0bSocket-Type\x00\x00\x00\x06DEALER";
        let mut initiate = [0u8; INITIATE_MIN_LEN + 22];
        initiate[INITIATE_MIN_LEN..].copy_from_slice(meta);
        c.write_initiate(&client_keys, server_keys.public_key(), &mut initiate)
            .unwrap();
        let mut tampered = initiate;
        tampered[20] ^= 1;
        let mut s2 = CurveState::new(true, &random(2));
        let mut hello2 = [0u8; HELLO_LEN];
        CurveState::new(false, &random(1))
            .write_hello(server_keys.public_key(), &mut hello2)
            .unwrap();
        s2.read_hello(&server_keys, &mut hello2).unwrap();
        assert_eq!(
            s2.read_initiate(&server_keys, &mut tampered),
            Err(CurveError::InvalidCookie)
        );
        s.read_initiate(&server_keys, &mut initiate).unwrap();
        assert_eq!(&initiate[INITIATE_MIN_LEN..], meta);
        assert_eq!(&s.peer_key, client_keys.public_key());
        let mut ready = [0u8; READY_MIN_LEN];
        s.write_ready(&mut ready).unwrap();
        c.read_ready(&mut ready).unwrap();
        let mut m = *b"................\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01hi";
        c.seal_message(&mut m).unwrap();
        let replay = m;
        assert_eq!(s.open_message(&mut m), Ok(FLAG_MORE));
        assert_eq!(&m[33..], b"hi");
        let mut again = replay;
        assert_eq!(s.open_message(&mut again), Err(CurveError::NonceReused));
    }

    /// Our XSalsa20-Poly1305 against RustCrypto's `crypto_secretbox` (an independent
    /// implementation of NaCl's box), at every length around the block and keystream
    /// boundaries: same tag and ciphertext, each opens the other's, and a box with one bit
    /// flipped anywhere is refused and left as it was.
    #[test]
    fn boxes_are_nacl_secretboxes() {
        use crypto_secretbox::aead::{generic_array::GenericArray, AeadInPlace, KeyInit};
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for len in (0..=300).chain([1023, 1024, 1025, 4096, 16 * 1024 + 7]) {
            let key: [u8; 32] = core::array::from_fn(|_| next());
            let nonce: [u8; 24] = core::array::from_fn(|_| next());
            let plain: Vec<u8> = (0..len).map(|_| next()).collect();
            let theirs = crypto_secretbox::XSalsa20Poly1305::new(GenericArray::from_slice(&key));

            let mut region = vec![0u8; TAG + len];
            region[TAG..].copy_from_slice(&plain);
            BoxKey::secret(&key).seal(&nonce, &mut region).unwrap();
            let mut reference = plain.clone();
            let tag = theirs
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &[], &mut reference)
                .unwrap();
            assert_eq!(&region[..TAG], &tag[..], "tag, {len} bytes");
            assert_eq!(&region[TAG..], &reference[..], "ciphertext, {len} bytes");

            // The message path (prefix key, 8-byte nonce) seals the same bytes.
            let (prefix, n) = split_nonce(&nonce).unwrap();
            let mut again = vec![0u8; TAG + len];
            again[TAG..].copy_from_slice(&plain);
            BoxKey::secret(&key)
                .prefix_key(prefix)
                .seal(n, &mut again)
                .unwrap();
            assert_eq!(again, region);

            let flip = usize::from(next()) * 7919 % region.len();
            let mut tampered = region.clone();
            tampered[flip] ^= 1 << (next() % 8);
            let before = tampered.clone();
            assert!(
                !BoxKey::secret(&key).open(&nonce, &mut tampered),
                "{len} bytes"
            );
            assert_eq!(tampered, before, "a refused box is left as it was");

            assert!(BoxKey::secret(&key).open(&nonce, &mut region));
            assert_eq!(&region[TAG..], &plain[..]);
            let mut sealed = reference;
            theirs
                .decrypt_in_place_detached(GenericArray::from_slice(&nonce), &[], &mut sealed, &tag)
                .unwrap();
            assert_eq!(sealed, plain);
        }
    }

    #[test]
    fn low_order_keys_are_refused() {
        let mut c = CurveState::new(false, &random(1));
        let mut hello = [0u8; HELLO_LEN];
        assert_eq!(
            c.write_hello(&[0; 32], &mut hello),
            Err(CurveError::WeakKey)
        );
    }

    #[test]
    fn keypair_debug_hides_the_secret() {
        let k = CurveKeyPair::from_secret([0xab; 32]);
        let d = format!("{k:?}");
        assert!(!d.contains("abababab"), "{d}");
        assert_eq!(
            CurveKeyPair::from_z85_secret(&*k.secret_key_z85()).unwrap(),
            k
        );
    }
}
