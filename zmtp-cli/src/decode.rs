//! `zmtp decode`: one direction of a ZMTP connection, from stdin, to lines.
//!
//! The stream is parsed as it arrives (a live capture piped in prints as it goes) with
//! zmtp-core's `wire` parsers, which never panic and name what is wrong.

use std::io::{Read, Write};

use zmtp_core::wire::{
    split_command, Command, FrameHeader, Greeting, Mechanism, Metadata, Status, GREETING_LEN,
};
use zmtp_core::ProtocolError;

use crate::cli::DecodeArgs;
use crate::error::{CliError, Result};
use crate::output::{hex_digit, json_line, to_hex};

/// Data bytes of an unknown command shown in full; longer ones are cut.
const SHOWN_DATA: usize = 32;

/// A value as a JSON string when it is UTF-8, else `0x` and hex.
fn value(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::to_string(s).unwrap_or_default(),
        Err(_) => format!("0x{}", to_hex(bytes)),
    }
}

fn properties(m: &Metadata<'_>) -> String {
    m.iter()
        .map(|p| format!(" {}={}", String::from_utf8_lossy(p.name), value(p.value)))
        .collect()
}

fn malformed(offset: u64, e: ProtocolError) -> CliError {
    CliError::failed(format!(
        "malformed ZMTP stream at byte offset {offset}: {e} (zmtp-core: {e:?})"
    ))
}

/// The decoder: bytes in, lines out.
struct Decoder<W: Write> {
    out: W,
    print_hex: bool,
    /// Bytes not consumed yet; `buf[0]` is at stream offset `base`.
    buf: Vec<u8>,
    base: u64,
    mechanism: Option<Mechanism>,
    /// Data frames of the message being read, and the offset of its first frame.
    message: Vec<Vec<u8>>,
    message_start: u64,
}

impl<W: Write> Decoder<W> {
    fn new(out: W, print_hex: bool) -> Self {
        Decoder {
            out,
            print_hex,
            buf: Vec::new(),
            base: 0,
            mechanism: None,
            message: Vec::new(),
            message_start: 0,
        }
    }

    fn line(&mut self, s: &str) -> Result {
        writeln!(self.out, "{s}")
            .and_then(|()| self.out.flush())
            .map_err(|e| CliError::failed(format!("writing to stdout: {e}")))
    }

    /// Takes more bytes and prints everything complete.
    fn feed(&mut self, bytes: &[u8]) -> Result {
        self.buf.extend_from_slice(bytes);
        let mut pos = 0usize;
        let r = self.parse(&mut pos);
        self.buf.drain(..pos);
        self.base += pos as u64;
        r
    }

    fn parse(&mut self, pos: &mut usize) -> Result {
        let buf = std::mem::take(&mut self.buf);
        let r = self.parse_in(&buf, pos);
        self.buf = buf;
        r
    }

    fn parse_in(&mut self, buf: &[u8], pos: &mut usize) -> Result {
        if self.mechanism.is_none() {
            // RFC 37 §"Version Negotiation": signature, version, mechanism, as-server.
            let g = match Greeting::parse(buf) {
                Ok(Status::Complete(g)) => g,
                Ok(Status::Partial) => return Ok(()),
                Err(e) => {
                    let at = if buf.first() != Some(&0xff) {
                        0
                    } else if buf.get(9).is_some_and(|b| b & 1 == 0) {
                        9
                    } else {
                        10
                    };
                    return Err(malformed(self.base + at, ProtocolError::Greeting(e)));
                }
            };
            self.mechanism = Some(g.mechanism);
            let mech = g.mechanism.name();
            let mech = if mech.iter().all(u8::is_ascii_graphic) && !mech.is_empty() {
                String::from_utf8_lossy(mech).into_owned()
            } else {
                format!("0x{}", to_hex(g.mechanism.as_raw()))
            };
            self.line(&format!(
                "greeting version={}.{} mechanism={mech} as-server={}",
                g.major,
                g.minor,
                u8::from(g.as_server)
            ))?;
            *pos = GREETING_LEN;
        }
        loop {
            let rest = buf.get(*pos..).unwrap_or_default();
            let at = self.base + *pos as u64;
            let (h, hl) = match FrameHeader::parse(rest) {
                Ok(Status::Complete(x)) => x,
                Ok(Status::Partial) => return Ok(()),
                Err(e) => return Err(malformed(at, ProtocolError::Frame(e))),
            };
            let Some(end) = usize::try_from(h.size).ok().and_then(|s| s.checked_add(hl)) else {
                return Err(malformed(at, ProtocolError::FrameTooLarge));
            };
            let Some(body) = rest.get(hl..end) else {
                return Ok(()); // the body has not all arrived
            };
            // RFC 26 §"Message" makes CURVE's MESSAGE a command; libzmq sends it in a data
            // frame. Either way it is a box, not application data.
            let curve_message =
                self.mechanism == Some(Mechanism::CURVE) && body.starts_with(b"\x07MESSAGE");
            if h.command || curve_message {
                self.command(body, at + hl as u64)?;
            } else {
                if self.message.is_empty() {
                    self.message_start = at;
                }
                self.message.push(body.to_vec());
                if !h.more {
                    let msg = std::mem::take(&mut self.message);
                    let (line, lossy) = json_line(&msg, self.print_hex);
                    if !lossy.is_empty() {
                        eprintln!(
                            "zmtp: warning: message at byte offset {}: frames {lossy:?} not \
                             UTF-8, printed with U+FFFD (use --print-hex)",
                            self.message_start
                        );
                    }
                    self.line(&line)?;
                }
            }
            *pos += end;
        }
    }

    fn command(&mut self, body: &[u8], at: u64) -> Result {
        let curve = self.mechanism == Some(Mechanism::CURVE);
        let plain = self.mechanism == Some(Mechanism::PLAIN);
        let (name, data) =
            split_command(body).map_err(|e| malformed(at, ProtocolError::Command(e)))?;
        let name_s = String::from_utf8_lossy(name).into_owned();
        // CURVE's READY, INITIATE and MESSAGE are boxes: only their size means anything.
        let decoded = if curve {
            None
        } else if plain && name == b"INITIATE" {
            let m = Metadata::parse(data).map_err(|e| malformed(at, e.into()))?;
            Some(properties(&m))
        } else if plain && name == b"HELLO" {
            Some(plain_hello(data))
        } else {
            match Command::parse(body).map_err(|e| malformed(at, ProtocolError::Command(e)))? {
                Command::Ready(m) => Some(properties(&m)),
                Command::Error { reason } => Some(format!(" reason={}", value(reason))),
                Command::Ping {
                    ttl_deciseconds,
                    context,
                } => Some(format!(
                    " ttl-ms={} context={}",
                    u32::from(ttl_deciseconds) * 100,
                    value(context)
                )),
                Command::Pong { context } => Some(format!(" context={}", value(context))),
                Command::Subscribe(t) | Command::Cancel(t) => Some(format!(" topic={}", value(t))),
                _ => None,
            }
        };
        let detail = decoded.unwrap_or_else(|| {
            let shown = data.get(..SHOWN_DATA).unwrap_or(data);
            let more = if shown.len() < data.len() { "..." } else { "" };
            format!(" size={} data=0x{}{more}", data.len(), to_hex(shown))
        });
        self.line(&format!("command {name_s}{detail}"))
    }

    /// Checks the end of the stream.
    fn finish(&mut self) -> Result {
        let end = self.base + self.buf.len() as u64;
        if self.mechanism.is_none() {
            return Err(CliError::failed(format!(
                "stream ends at byte offset {end}, inside the 64-byte greeting"
            )));
        }
        if !self.buf.is_empty() {
            return Err(CliError::failed(format!(
                "stream ends at byte offset {end}, inside the frame starting at byte offset {}",
                self.base
            )));
        }
        if !self.message.is_empty() {
            return Err(CliError::failed(format!(
                "stream ends at byte offset {end}, inside the message starting at byte offset \
                 {} ({} frames read, the last with MORE set)",
                self.message_start,
                self.message.len()
            )));
        }
        Ok(())
    }
}

/// RFC 23 (PLAIN) HELLO: username and password, each a length byte and bytes.
fn plain_hello(data: &[u8]) -> String {
    let field = |d: &[u8]| -> Option<(Vec<u8>, usize)> {
        let (&n, rest) = d.split_first()?;
        Some((rest.get(..usize::from(n))?.to_vec(), 1 + usize::from(n)))
    };
    match field(data).and_then(|(u, n)| {
        let (p, m) = field(data.get(n..)?)?;
        (n + m == data.len()).then_some((u, p))
    }) {
        Some((u, p)) => format!(" username={} password={}", value(&u), value(&p)),
        None => format!(" size={} (malformed PLAIN HELLO)", data.len()),
    }
}

/// Hex text to bytes, across reads: keeps half a byte between calls.
struct HexText {
    half: Option<u8>,
    offset: u64,
}

impl HexText {
    fn decode(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result {
        for &c in text {
            let at = self.offset;
            self.offset += 1;
            if c.is_ascii_whitespace() {
                continue;
            }
            let Some(d) = hex_digit(c) else {
                return Err(CliError::failed(format!(
                    "--hex input: {:?} at input offset {at} is not a hex digit",
                    char::from(c)
                )));
            };
            match self.half.take() {
                Some(h) => out.push(h << 4 | d),
                None => self.half = Some(d),
            }
        }
        Ok(())
    }
}

/// Decodes everything read from `input` to `out`.
pub fn decode(mut input: impl Read, out: impl Write, a: &DecodeArgs) -> Result {
    let mut d = Decoder::new(out, a.print_hex);
    let mut hex = HexText {
        half: None,
        offset: 0,
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut bytes = Vec::new();
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::failed(format!("reading stdin: {e}"))),
        };
        let got = chunk.get(..n).unwrap_or_default();
        if a.hex {
            bytes.clear();
            hex.decode(got, &mut bytes)?;
            d.feed(&bytes)?;
        } else {
            d.feed(got)?;
        }
    }
    if hex.half.is_some() {
        return Err(CliError::failed(
            "--hex input: odd number of hex digits".to_owned(),
        ));
    }
    d.finish()
}

/// `zmtp decode`.
pub fn run(a: DecodeArgs) -> Result {
    decode(std::io::stdin().lock(), std::io::stdout().lock(), &a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(bytes: &[u8]) -> (String, Result) {
        let mut out = Vec::new();
        let a = DecodeArgs {
            hex: false,
            print_hex: false,
        };
        let r = decode(bytes, &mut out, &a);
        (String::from_utf8(out).unwrap(), r)
    }

    fn greeting() -> Vec<u8> {
        let mut g = [0u8; 64];
        Greeting::new(Mechanism::NULL, false).emit(&mut g);
        g.to_vec()
    }

    #[test]
    fn one_byte_at_a_time_is_the_same() {
        let mut s = greeting();
        s.extend_from_slice(b"\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03REQ");
        s.extend_from_slice(b"\x01\x00\x00\x02hi");
        let (whole, r) = run_on(&s);
        r.unwrap();
        assert_eq!(
            whole,
            "greeting version=3.1 mechanism=NULL as-server=0\n\
             command READY Socket-Type=\"REQ\"\n[\"\",\"hi\"]\n"
        );
        let mut d = Decoder::new(Vec::new(), false);
        for b in &s {
            d.feed(std::slice::from_ref(b)).unwrap();
        }
        d.finish().unwrap();
        assert_eq!(String::from_utf8(d.out).unwrap(), whole);
    }

    #[test]
    fn errors_name_the_offset() {
        let mut s = greeting();
        s.push(0x80);
        s.push(0);
        let (_, r) = run_on(&s);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("byte offset 64"), "{e}");
        assert!(e.contains("ReservedFlags"), "{e}");
        let (_, r) = run_on(b"\x01");
        assert!(r.unwrap_err().to_string().contains("byte offset 0"));
        let mut s = greeting();
        s.extend_from_slice(b"\x00\x05ab");
        let (_, r) = run_on(&s);
        assert!(r.unwrap_err().to_string().contains("inside the frame"));
    }
}
