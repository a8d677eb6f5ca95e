//! The session's CURVE glue (RFC 25/26): where the handshake commands sit in the buffers, and
//! how frames and commands are sealed into and opened from MESSAGEs in place. The grammar and
//! cryptography are in [`crate::mechanism::curve`].

use super::{check_ready, is_error_command, Hs, Out, Phase, Session, Step};
use crate::error::{CloseReason, ConfigError, CurveError, ProtocolError, SendError};
use crate::mechanism::curve::{
    CurveKeyPair, CurveRandom, CurveState, COOKIE_LIFETIME, FLAG_COMMAND, FLAG_MORE, HELLO_LEN,
    INITIATE_MIN_LEN, MESSAGE_OVERHEAD, READY_MIN_LEN, WELCOME_LEN,
};
use crate::mechanism::Security;
use crate::wire::{
    property_len, split_command, Command, FrameHeader, Metadata, MetadataWriter, SocketType,
};
use crate::{Buffers, Config, Instant, Role};

/// INITIATE's checked metadata, held in `rx` while the application decides.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub(super) meta: (usize, usize),
    identity: (usize, usize),
    socket_type: SocketType,
}

impl Held {
    /// The receive buffer moved down by `by` bytes.
    pub(super) fn shift(&mut self, by: usize) {
        for x in [
            &mut self.meta.0,
            &mut self.meta.1,
            &mut self.identity.0,
            &mut self.identity.1,
        ] {
            *x = x.saturating_sub(by);
        }
    }
}

/// Which handshake command to write.
#[derive(Clone, Copy)]
enum Cmd {
    Hello,
    Welcome,
    Initiate,
    Ready,
}

fn curve_err(e: CurveError) -> ProtocolError {
    ProtocolError::Curve(e)
}

impl<'b> Session<'b> {
    /// Starts a session like [`new`](Self::new), with the randomness a CURVE session needs:
    /// `random` must be freshly drawn from a cryptographic RNG for this one connection
    /// ([`CurveRandom::generate`]) and is wiped once used. With NULL or PLAIN it is ignored.
    pub fn new_curve(
        config: &Config<'b>,
        role: Role,
        buffers: Buffers<'b>,
        now: Instant,
        random: CurveRandom,
    ) -> Result<Self, ConfigError> {
        let mut s = Self::start(config, role, buffers, now)?;
        s.curve = match config.security {
            Security::CurveClient { .. } => Some(CurveState::new(false, &random)),
            Security::CurveServer { .. } => Some(CurveState::new(true, &random)),
            _ => None,
        };
        Ok(s)
    }

    /// Our key pair, and the server's key (client side).
    fn curve_keys(&self) -> Option<(&'b CurveKeyPair, Option<[u8; 32]>)> {
        match self.security {
            Security::CurveClient { server_key, keys } => Some((keys, Some(server_key))),
            Security::CurveServer { keys } => Some((keys, None)),
            _ => None,
        }
    }

    /// Makes `need` bytes free at the end of the pending output.
    fn curve_tx_room(&mut self, need: usize) -> Result<(), SendError> {
        if need > self.tx.len() {
            return Err(SendError::TooLarge);
        }
        if self.tx.len().saturating_sub(self.tx_end) < need {
            self.tx_compact();
        }
        if self.tx.len().saturating_sub(self.tx_end) < need {
            return Err(SendError::WouldBlock);
        }
        Ok(())
    }

    /// Length of our metadata (RFC 37 §"The READY Command"; the same in INITIATE and READY).
    fn metadata_len(&self) -> Option<usize> {
        let mut n = property_len(b"Socket-Type", self.socket_type.as_str().as_bytes())?;
        if self.socket_type.sends_identity() {
            n = n.checked_add(property_len(b"Identity", self.identity)?)?;
        }
        Some(n)
    }

    /// Writes and queues a handshake command.
    fn curve_write(&mut self, cmd: Cmd) -> Result<(), ProtocolError> {
        let too_large = ProtocolError::CommandTooLarge;
        let (keys, server_key) = self.curve_keys().ok_or(too_large)?;
        let meta_len = self.metadata_len().ok_or(too_large)?;
        let (body_len, meta_at) = match cmd {
            Cmd::Hello => (HELLO_LEN, None),
            Cmd::Welcome => (WELCOME_LEN, None),
            Cmd::Initiate => (
                CurveState::initiate_len(meta_len).ok_or(too_large)?,
                Some(INITIATE_MIN_LEN),
            ),
            Cmd::Ready => (
                CurveState::ready_len(meta_len).ok_or(too_large)?,
                Some(READY_MIN_LEN),
            ),
        };
        let h = FrameHeader::command(body_len as u64);
        let hl = h.encoded_len();
        let need = hl.checked_add(body_len).ok_or(too_large)?;
        self.curve_tx_room(need).map_err(|_| too_large)?;
        let (socket_type, identity) = (self.socket_type, self.identity);
        let start = self.tx_end;
        let end = start.checked_add(need).ok_or(too_large)?;
        let (Some(buf), Some(curve)) = (self.tx.get_mut(start..end), self.curve.as_mut()) else {
            return Err(too_large);
        };
        let (head, body) = buf.split_at_mut(hl);
        h.emit(head).map_err(|_| too_large)?;
        if let Some(at) = meta_at {
            let mut w = MetadataWriter::new(body.get_mut(at..).ok_or(too_large)?);
            w.property(b"Socket-Type", socket_type.as_str().as_bytes())
                .map_err(|_| too_large)?;
            if socket_type.sends_identity() {
                w.property(b"Identity", identity).map_err(|_| too_large)?;
            }
        }
        let written = match (cmd, server_key) {
            (Cmd::Hello, Some(sk)) => curve.write_hello(&sk, body),
            (Cmd::Welcome, _) => curve.write_welcome(body),
            (Cmd::Initiate, Some(sk)) => curve.write_initiate(keys, &sk, body),
            (Cmd::Ready, _) => curve.write_ready(body),
            _ => Err(CurveError::MalformedCommand),
        };
        written.map_err(curve_err)?;
        self.tx_end = end;
        Ok(())
    }

    /// Client, after the greeting: HELLO (RFC 26 §"The HELLO Command").
    pub(super) fn curve_send_hello(&mut self) -> Result<(), ProtocolError> {
        self.curve_write(Cmd::Hello)
    }

    /// A whole handshake command arrived while CURVE is being negotiated.
    pub(super) fn curve_handshake_command(&mut self, hs: Hs, body: (usize, usize)) -> Step {
        let bytes = self.rx.get(body.0..body.1).unwrap_or(&[]);
        let name = match split_command(bytes) {
            Ok((name, _)) => name,
            // A malformed ERROR is still a failure (libzmq's PLAIN server sends one).
            Err(_) if is_error_command(bytes) => return self.peer_error(body),
            Err(e) => return self.protocol_error(ProtocolError::Command(e), None),
        };
        // RFC 26: "To reject a client connection explicitly, a server SHALL send an ERROR"
        // (unencrypted, during the handshake).
        if name == b"ERROR" {
            let reason = match Command::parse(bytes) {
                Ok(Command::Error { reason }) => (body.1.saturating_sub(reason.len()), body.1),
                _ => body,
            };
            return self.peer_error(reason);
        }
        let expected: &[u8] = match hs {
            Hs::CurveWelcome => b"WELCOME",
            Hs::CurveReady => b"READY",
            Hs::CurveHello => b"HELLO",
            Hs::CurveInitiate => b"INITIATE",
            _ => b"",
        };
        if name != expected {
            return self.protocol_error(ProtocolError::UnexpectedCommand, None);
        }
        let Some((keys, _)) = self.curve_keys() else {
            return self.protocol_error(ProtocolError::UnexpectedCommand, None);
        };
        let (Some(curve), Some(region)) = (self.curve.as_mut(), self.rx.get_mut(body.0..body.1))
        else {
            return self.protocol_error(ProtocolError::UnexpectedCommand, None);
        };
        let checked = match hs {
            Hs::CurveWelcome => curve.read_welcome(region),
            Hs::CurveReady => curve.read_ready(region),
            Hs::CurveHello => curve.read_hello(keys, region),
            _ => curve.read_initiate(keys, region),
        };
        if let Err(e) = checked {
            return self.protocol_error(curve_err(e), None);
        }
        match hs {
            Hs::CurveWelcome => {
                if let Err(e) = self.curve_write(Cmd::Initiate) {
                    return self.protocol_error(e, None);
                }
                self.phase = Phase::Handshake(Hs::CurveReady);
                Step::Continue
            }
            Hs::CurveHello => {
                if let Err(e) = self.curve_write(Cmd::Welcome) {
                    return self.protocol_error(e, None);
                }
                self.cookie_deadline = Some(self.now + COOKIE_LIFETIME);
                self.phase = Phase::Handshake(Hs::CurveInitiate);
                Step::Continue
            }
            Hs::CurveReady => {
                // From READY on, the server only sends MESSAGEs, and so do we.
                self.curve_armed = true;
                let meta = (body.0.saturating_add(READY_MIN_LEN), body.1);
                match self.curve_check_metadata(meta) {
                    Ok(held) => self.ready(held.socket_type, held.meta, held.identity),
                    Err(step) => step,
                }
            }
            _ => {
                self.cookie_deadline = None;
                let meta = (body.0.saturating_add(INITIATE_MIN_LEN), body.1);
                match self.curve_check_metadata(meta) {
                    Ok(held) => {
                        // RFC 26: "the server MAY authenticate the client based on its
                        // permanent public key C": the application decides.
                        self.curve_held = Some(held);
                        self.phase = Phase::Handshake(Hs::CurveDecision);
                        Step::Emit(Out::CurveAuth)
                    }
                    Err(step) => step,
                }
            }
        }
    }

    /// INITIATE's or READY's opened metadata, checked like NULL's READY.
    fn curve_check_metadata(&mut self, meta: (usize, usize)) -> Result<Held, Step> {
        let bytes = self.rx.get(meta.0..meta.1).unwrap_or(&[]);
        let checked = match Metadata::parse(bytes) {
            Ok(m) => check_ready(self.socket_type, m, self.rx),
            Err(e) => Err((e.into(), super::reason::MALFORMED_METADATA)),
        };
        match checked {
            Ok((socket_type, id)) => Ok(Held {
                meta,
                identity: id.unwrap_or((meta.1, meta.1)),
                socket_type,
            }),
            Err((e, why)) => Err(self.protocol_error(e, Some(why))),
        }
    }

    /// Server: the application let the client in. READY goes out (RFC 26 §"The READY
    /// Command"); the handshake event follows on the next `poll_event`.
    pub(super) fn curve_accept(&mut self) {
        if let Err(e) = self.curve_write(Cmd::Ready) {
            self.curve_held = None;
            self.fail(CloseReason::Protocol(e), None);
            return;
        }
        self.curve_armed = true;
        self.phase = Phase::Handshake(Hs::CurveAccepted);
    }

    /// Server: reports the handshake accepted in `curve_accept`.
    pub(super) fn curve_report_ready(&mut self) -> Step {
        match self.curve_held.take() {
            Some(h) => self.ready(h.socket_type, h.meta, h.identity),
            None => self.protocol_error(ProtocolError::UnexpectedCommand, None),
        }
    }

    /// After the handshake: one MESSAGE (RFC 26 §"The MESSAGE Command") in a data frame,
    /// opened in place and handled as the frame or command it carries.
    pub(super) fn curve_step_message(
        &mut self,
        h: FrameHeader,
        hl: usize,
        view: super::View,
    ) -> Step {
        // PROTOCOL.md: MESSAGE travels in data frames; an unencrypted command is an attack.
        if h.command {
            return self.protocol_error(curve_err(CurveError::CommandFrame), None);
        }
        let Some(data_len) = h.size.checked_sub(MESSAGE_OVERHEAD as u64) else {
            return self.protocol_error(curve_err(CurveError::MalformedCommand), None);
        };
        if data_len > self.max_frame {
            return self.protocol_error(ProtocolError::FrameTooLarge, None);
        }
        // The box is authenticated as a whole: it must fit the receive buffer.
        let whole = usize::try_from(h.size)
            .ok()
            .and_then(|s| s.checked_add(hl))
            .filter(|&t| t <= self.rx.len());
        let Some(total) = whole else {
            return self.protocol_error(curve_err(CurveError::MessageTooLarge), None);
        };
        if self.rx_end.saturating_sub(self.rx_start) < total {
            return Step::Stall;
        }
        let body = (
            self.rx_start.saturating_add(hl),
            self.rx_start.saturating_add(total),
        );
        self.rx_start = body.1;
        let (Some(curve), Some(region)) = (self.curve.as_mut(), self.rx.get_mut(body.0..body.1))
        else {
            return self.protocol_error(curve_err(CurveError::MalformedCommand), None);
        };
        let flags = match curve.open_message(region) {
            Ok(f) => f,
            Err(e) => return self.protocol_error(curve_err(e), None),
        };
        let inner = (body.0.saturating_add(MESSAGE_OVERHEAD), body.1);
        if flags & FLAG_COMMAND != 0 {
            // PING, PONG, SUBSCRIBE, CANCEL, ERROR: as if they came in command frames.
            return self.handle_command(inner, view.subscriptions);
        }
        let more = flags & FLAG_MORE != 0;
        let first = !self.in_message;
        let msg = if first {
            data_len
        } else {
            self.message_size.saturating_add(data_len)
        };
        if msg > self.max_message {
            return self.protocol_error(ProtocolError::MessageTooLarge, None);
        }
        self.deliver_frame(inner, more, msg, first, view)
    }

    /// Seals `len` bytes written by `fill` (and the MORE flag) into a MESSAGE in a data
    /// frame. The outer frame never has MORE (libzmq's form: the flag is inside the box).
    pub(super) fn curve_queue_frame(
        &mut self,
        len: usize,
        more: bool,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), SendError> {
        let flags = if more { FLAG_MORE } else { 0 };
        self.curve_queue_message(len, flags, |body| {
            if let Some(data) = body.get_mut(MESSAGE_OVERHEAD..) {
                fill(data);
            }
            Some(())
        })
    }

    /// Seals a command into a MESSAGE with the COMMAND flag (libzmq's form).
    pub(super) fn curve_queue_command(&mut self, c: Command<'_>) -> Result<(), SendError> {
        let body_len = c.body_len();
        let header = FrameHeader::command(body_len as u64).encoded_len();
        self.curve_queue_message(body_len, FLAG_COMMAND, |body| {
            // `Command::emit` writes a frame header (at most 9 bytes) before the command
            // body: start it early enough for the body to land after the flags byte. The
            // header falls on the tag and flags, which are written afterwards.
            let at = MESSAGE_OVERHEAD.checked_sub(header)?;
            c.emit(body.get_mut(at..)?).ok().map(|_| ())
        })
    }

    /// Queues a MESSAGE of `len` plaintext bytes after the flags byte: `fill` writes them
    /// into the MESSAGE body (from offset [`MESSAGE_OVERHEAD`]), then the flags go in and the
    /// box is sealed in place. Nothing is queued on error.
    fn curve_queue_message(
        &mut self,
        len: usize,
        flags: u8,
        fill: impl FnOnce(&mut [u8]) -> Option<()>,
    ) -> Result<(), SendError> {
        let body_len = len
            .checked_add(MESSAGE_OVERHEAD)
            .ok_or(SendError::TooLarge)?;
        let h = FrameHeader::data(body_len as u64, false);
        let hl = h.encoded_len();
        let need = hl.checked_add(body_len).ok_or(SendError::TooLarge)?;
        self.curve_tx_room(need)?;
        let start = self.tx_end;
        let end = start.checked_add(need).ok_or(SendError::TooLarge)?;
        let (Some(buf), Some(curve)) = (self.tx.get_mut(start..end), self.curve.as_mut()) else {
            return Err(SendError::Closed);
        };
        let (head, body) = buf.split_at_mut(hl);
        h.emit(head).map_err(|_| SendError::TooLarge)?;
        fill(body).ok_or(SendError::TooLarge)?;
        *body
            .get_mut(MESSAGE_OVERHEAD - 1)
            .ok_or(SendError::TooLarge)? = flags;
        // Fails only when 2^64 - 1 nonces are used up (RFC 26): nothing more can be sent.
        curve.seal_message(body).map_err(|_| SendError::Closed)?;
        self.tx_end = end;
        Ok(())
    }
}
