//! Frames to JSON lines and back, hex.

use std::io::Write;

use crate::error::{CliError, Result};

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The value of one hex digit.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses hex (either case, an even number of digits, nothing else).
pub fn from_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(format!("{s:?} is not hex: odd number of digits"));
    }
    b.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(format!(
                "{s:?} is not hex: bad digit at character {}",
                i * 2
            )),
        })
        .collect()
}

/// Frames as given on the command line: UTF-8 text, or hex with `--hex`.
pub fn parse_frames(frames: &[String], hex: bool) -> Result<Vec<Vec<u8>>> {
    frames
        .iter()
        .map(|f| {
            if hex {
                from_hex(f).map_err(|e| CliError::usage(format!("frame {e}")))
            } else {
                Ok(f.as_bytes().to_vec())
            }
        })
        .collect()
}

/// One message as a JSON array of strings: each frame as UTF-8 text, or as hex when `hex`.
/// A frame that is not UTF-8 gets U+FFFD for each bad sequence; the indexes of such frames
/// are returned so the caller can warn.
pub fn json_line(frames: &[Vec<u8>], hex: bool) -> (String, Vec<usize>) {
    let mut lossy = Vec::new();
    let strings: Vec<String> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if hex {
                to_hex(f)
            } else {
                match std::str::from_utf8(f) {
                    Ok(s) => s.to_owned(),
                    Err(_) => {
                        lossy.push(i);
                        String::from_utf8_lossy(f).into_owned()
                    }
                }
            }
        })
        .collect();
    // Serialising a Vec<String> cannot fail.
    let line = serde_json::to_string(&strings).unwrap_or_else(|_| String::from("[]"));
    (line, lossy)
}

/// Prints one message as a JSON line on stdout and flushes; warns on stderr about frames
/// that were not UTF-8.
pub fn print_message(frames: &[Vec<u8>], hex: bool) -> Result {
    let (line, lossy) = json_line(frames, hex);
    if !lossy.is_empty() {
        let list: Vec<String> = lossy.iter().map(usize::to_string).collect();
        eprintln!(
            "zmtp: warning: frame {} not UTF-8, printed with U+FFFD replacements (use --hex)",
            list.join(", ")
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::failed(format!("writing to stdout: {e}")))
}

/// Announces a bound endpoint on stderr (the first status lines of every command).
pub fn announce_bound(endpoint: &str) {
    eprintln!("bound {endpoint}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex("00ABff").unwrap(), vec![0, 0xab, 0xff]);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn json_lines() {
        let (l, bad) = json_line(&[b"a\"b".to_vec(), vec![], b"\n".to_vec()], false);
        assert_eq!(l, r#"["a\"b","","\n"]"#);
        assert!(bad.is_empty());
        let (l, bad) = json_line(&[vec![0xff, b'x']], false);
        assert_eq!(l, "[\"\u{fffd}x\"]");
        assert_eq!(bad, [0]);
        let (l, _) = json_line(&[vec![0xff, b'x']], true);
        assert_eq!(l, r#"["ff78"]"#);
    }
}
