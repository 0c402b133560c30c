//! permessage-deflate (RFC 7692), the client's side of the negotiation: the
//! offer `--deflate` sends, and the server's answer read into what the
//! connection's codec (`deflate_codec`) then uses. Sans IO.

/// The offer: permessage-deflate, letting the server limit our window.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The extension's name.
const EXTENSION: &str = "permessage-deflate";

/// What the server's answer agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// We must compress each message on its own.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window (15 when the answer does not say).
    pub server_max_window_bits: u8,
    /// Ours (15 when the answer does not limit it).
    pub client_max_window_bits: u8,
}

impl Agreed {
    /// The parameters in the answer's words, e.g. `server_no_context_takeover;
    /// client_no_context_takeover` (windows only when under 15).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.server_no_context_takeover {
            parts.push("server_no_context_takeover".to_owned());
        }
        if self.client_no_context_takeover {
            parts.push("client_no_context_takeover".to_owned());
        }
        if self.server_max_window_bits < 15 {
            parts.push(format!(
                "server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < 15 {
            parts.push(format!(
                "client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        if parts.is_empty() {
            "context takeover both ways".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// Reads the values of every `Sec-WebSocket-Extensions` header of a 101, in
/// order, as the answer to [`OFFER`]. `Ok(None)`: no extension, the
/// connection goes on uncompressed. `Err`: an answer the client must fail the
/// connection for (RFC 6455 §9.1, RFC 7692 §7.1): an extension not offered,
/// permessage-deflate twice, an unknown or repeated parameter, or a bad value.
pub fn parse_answer<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Agreed>, &'static str> {
    let mut agreed = None;
    for value in values {
        let value = std::str::from_utf8(value).map_err(|_| "an answer that is not text")?;
        // Empty list elements are allowed (RFC 9110 §5.6.1).
        for element in value.split(',').map(ows).filter(|e| !e.is_empty()) {
            let mut parts = element.split(';');
            let name = ows(parts.next().unwrap_or_default());
            if !name.eq_ignore_ascii_case(EXTENSION) {
                return Err("an extension that was not offered");
            }
            if agreed.is_some() {
                return Err("permessage-deflate answered twice");
            }
            agreed = Some(parse_params(parts)?);
        }
    }
    Ok(agreed)
}

/// The parameters of one permessage-deflate answer.
fn parse_params<'a>(parts: impl Iterator<Item = &'a str>) -> Result<Agreed, &'static str> {
    let (mut server_nct, mut client_nct) = (false, false);
    let (mut server_bits, mut client_bits) = (None, None);
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (ows(name), Some(unquote(ows(value)))),
            None => (ows(part), None),
        };
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("server_no_context_takeover") {
            set_flag(&mut server_nct, value)?;
        } else if is("client_no_context_takeover") {
            set_flag(&mut client_nct, value)?;
        } else if is("server_max_window_bits") {
            set_bits(&mut server_bits, value)?;
        } else if is("client_max_window_bits") {
            set_bits(&mut client_bits, value)?;
        } else {
            return Err("an unknown permessage-deflate parameter");
        }
    }
    Ok(Agreed {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits.unwrap_or(15),
        client_max_window_bits: client_bits.unwrap_or(15),
    })
}

/// Sets a flag parameter, which takes no value and comes once.
fn set_flag(flag: &mut bool, value: Option<&str>) -> Result<(), &'static str> {
    match (*flag, value) {
        (true, _) => Err("a repeated permessage-deflate parameter"),
        (false, Some(_)) => Err("a value on a flag parameter"),
        (false, None) => {
            *flag = true;
            Ok(())
        }
    }
}

/// Sets a window size, which in an answer always has a value (RFC 7692
/// §7.1.2) and comes once.
fn set_bits(slot: &mut Option<u8>, value: Option<&str>) -> Result<(), &'static str> {
    match (*slot, value) {
        (Some(_), _) => Err("a repeated permessage-deflate parameter"),
        (None, None) => Err("a window size without a value"),
        (None, Some(v)) => {
            *slot = Some(window_bits(v).ok_or("a bad window size")?);
            Ok(())
        }
    }
}

/// `s` without optional white space (spaces, tabs) around it.
fn ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A quoted-string's content (no escapes: a window size has none), or `s`.
fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(s)
}

/// A window size: 8..=15 in decimal, no sign or leading zero.
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|bits| (8..=15).contains(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Option<Agreed>, &'static str> {
        parse_answer(values.iter().map(|v| v.as_bytes()))
    }

    fn agreed(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Option<Agreed> {
        Some(Agreed {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        })
    }

    #[test]
    fn no_extension_is_uncompressed() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[""]), Ok(None));
        assert_eq!(parse(&[" , "]), Ok(None));
    }

    #[test]
    fn reads_the_answers_ringgate_gives() {
        // shared mode
        assert_eq!(
            parse(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]),
            Ok(agreed(true, true, 15, 15))
        );
        // dedicated mode, window limited
        assert_eq!(
            parse(&["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"]),
            Ok(agreed(false, false, 12, 12))
        );
        assert_eq!(
            parse(&["permessage-deflate; client_max_window_bits=15"]),
            Ok(agreed(false, false, 15, 15))
        );
        assert_eq!(
            parse(&["permessage-deflate"]),
            Ok(agreed(false, false, 15, 15))
        );
    }

    #[test]
    fn reads_any_spelling() {
        assert_eq!(
            parse(&[
                "Permessage-Deflate ;\tCLIENT_NO_CONTEXT_TAKEOVER ; server_max_window_bits = \"9\""
            ]),
            Ok(agreed(false, true, 9, 15))
        );
        assert_eq!(
            parse(&["", ", permessage-deflate;client_max_window_bits=8 ,"]),
            Ok(agreed(false, false, 15, 8))
        );
    }

    #[test]
    fn refuses_what_was_not_offered_or_is_malformed() {
        for bad in [
            &["x-webkit-deflate-frame"][..],
            &["permessage-deflate, permessage-deflate"],
            &["permessage-deflate", "permessage-deflate"],
            &["permessage-deflate; permessage-deflate"],
            &["permessage-deflate; foo"],
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            &["permessage-deflate; client_no_context_takeover=1"],
            &["permessage-deflate; client_max_window_bits"],
            &["permessage-deflate; server_max_window_bits"],
            &["permessage-deflate; server_max_window_bits=16"],
            &["permessage-deflate; server_max_window_bits=7"],
            &["permessage-deflate; server_max_window_bits=010"],
            &["permessage-deflate; server_max_window_bits=+9"],
            &["permessage-deflate; server_max_window_bits=1 0"],
            &["permessage-deflate; client_max_window_bits=9; client_max_window_bits=9"],
            &["permessage-deflate;"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse_answer([&b"permessage-deflate\xff"[..]]).is_err());
    }

    #[test]
    fn describes_the_agreement() {
        assert_eq!(
            agreed(true, true, 15, 15).unwrap().describe(),
            "server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            agreed(false, false, 12, 15).unwrap().describe(),
            "server_max_window_bits=12"
        );
        assert_eq!(
            agreed(false, false, 15, 15).unwrap().describe(),
            "context takeover both ways"
        );
    }
}
