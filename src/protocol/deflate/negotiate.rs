//! RFC 7692 permessage-deflate negotiation (sections 5 and 7.1): parses the offers of
//! `Sec-WebSocket-Extensions`, picks the first one a route's `DeflateMode` can accept, and writes
//! the response's extension value. Sans-IO and zlib-free; it never panics on any input.

use std::borrow::Cow;
use std::fmt::Write as _;

const EXTENSION: &str = "permessage-deflate";

/// How a route compresses. Off never negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeflateMode {
    Off,
    /// Compressor and decompressor state per shard, not per connection: the server always answers
    /// with server_no_context_takeover and client_no_context_takeover (RFC 7692 lets a server add both).
    Shared,
    /// Per-connection state with context takeover (unless the client asks for server_no_context_takeover),
    /// windows at most `window_bits` (9..=15) both ways.
    Dedicated {
        window_bits: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// LZ77 window the server compresses with (9..=15).
    pub server_max_window_bits: u8,
    /// Largest window the client may compress with, as agreed (8..=15; 15 when nothing limits it):
    /// the decompressor's window.
    pub client_max_window_bits: u8,
}

/// One syntactically valid permessage-deflate offer (RFC 7692 section 7.1).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (the client merely supports it).
    client_max_window_bits: Option<Option<u8>>,
}

/// Picks the first acceptable permessage-deflate offer among `offers` (the header's elements, in order)
/// and returns its parameters and the response's Sec-WebSocket-Extensions value; None when mode is Off or
/// no offer is acceptable (the connection then goes on uncompressed). Never panics on any input.
pub fn negotiate(offers: &[String], mode: DeflateMode) -> Option<(DeflateParams, String)> {
    let limit = match mode {
        DeflateMode::Off => return None,
        DeflateMode::Shared => None,
        DeflateMode::Dedicated { window_bits } => Some(window_bits.clamp(9, 15)),
    };
    offers
        .iter()
        .filter_map(|element| parse_offer(element))
        // RFC 7692 allows 8, but zlib cannot raw-deflate with a 256-byte window (it needs 9);
        // section 7.1.2.1 lets a server decline such an offer.
        .find(|offer| offer.server_max_window_bits != Some(8))
        .map(|offer| accept(offer, limit))
}

/// The parameters and response for an acceptable `offer`: `limit` is Dedicated's window, None
/// for Shared.
fn accept(offer: Offer, limit: Option<u8>) -> (DeflateParams, String) {
    let (params, send_server_bits, send_client_bits) = match limit {
        // The per-shard decompressor has window 15, which reads any client window, so Shared
        // never limits the client.
        None => (
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
                client_max_window_bits: 15,
            },
            offer.server_max_window_bits.is_some(),
            false,
        ),
        Some(limit) => {
            let server = offer.server_max_window_bits.unwrap_or(15).min(limit);
            // Without client_max_window_bits in the offer the response must not limit the
            // client (section 7.1.2.2): it may use 15.
            let client = offer
                .client_max_window_bits
                .map_or(15, |bits| bits.unwrap_or(15).min(limit));
            (
                DeflateParams {
                    server_no_context_takeover: offer.server_no_context_takeover,
                    client_no_context_takeover: false,
                    server_max_window_bits: server,
                    client_max_window_bits: client,
                },
                offer.server_max_window_bits.is_some() || server < 15,
                offer.client_max_window_bits.is_some(),
            )
        }
    };
    let mut response = String::from(EXTENSION);
    if params.server_no_context_takeover {
        response.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        response.push_str("; client_no_context_takeover");
    }
    // Writing to a String cannot fail.
    if send_server_bits {
        let _ = write!(
            response,
            "; server_max_window_bits={}",
            params.server_max_window_bits
        );
    }
    if send_client_bits {
        let _ = write!(
            response,
            "; client_max_window_bits={}",
            params.client_max_window_bits
        );
    }
    (params, response)
}

/// Parses one header element (`name *( ";" param [ "=" value ] )`, RFC 6455 section 9.1); None
/// when it is another extension or a permessage-deflate offer RFC 7692 makes invalid: an unknown
/// or repeated parameter, a value where none belongs, a bad window size, or any syntax error.
fn parse_offer(element: &str) -> Option<Offer> {
    let mut parts = element.split(';');
    if !trim_ows(parts.next()?).eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut offer = Offer::default();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (trim_ows(name), Some(param_value(trim_ows(value))?)),
            None => (trim_ows(part), None),
        };
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("server_no_context_takeover") {
            if offer.server_no_context_takeover || value.is_some() {
                return None;
            }
            offer.server_no_context_takeover = true;
        } else if is("client_no_context_takeover") {
            if offer.client_no_context_takeover || value.is_some() {
                return None;
            }
            offer.client_no_context_takeover = true;
        } else if is("server_max_window_bits") {
            if offer.server_max_window_bits.is_some() {
                return None;
            }
            offer.server_max_window_bits = Some(window_bits(&value?)?);
        } else if is("client_max_window_bits") {
            if offer.client_max_window_bits.is_some() {
                return None;
            }
            offer.client_max_window_bits = Some(match value {
                Some(value) => Some(window_bits(&value)?),
                None => None,
            });
        } else {
            // Unknown, empty or not a token.
            return None;
        }
    }
    Some(offer)
}

/// A parameter value (already OWS-trimmed): a token, or a quoted-string whose unescaped
/// content is a token (RFC 6455 section 9.1). None for anything else, an unterminated quote or
/// text after the closing quote included.
fn param_value(raw: &str) -> Option<Cow<'_, str>> {
    let value = match raw.strip_prefix('"') {
        None => Cow::Borrowed(raw),
        Some(quoted) => {
            let mut unescaped = String::new();
            let mut chars = quoted.chars();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => unescaped.push(chars.next()?),
                    c => unescaped.push(c),
                }
            }
            if !chars.as_str().is_empty() {
                return None;
            }
            Cow::Owned(unescaped)
        }
    };
    is_token(&value).then_some(value)
}

/// A window size: 8..=15 in decimal without leading zeros or sign.
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [digit @ b'8'..=b'9'] => Some(digit - b'0'),
        [b'1', digit @ b'0'..=b'5'] => Some(10 + (digit - b'0')),
        _ => None,
    }
}

/// RFC 9110 token: one or more tchar.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Strips optional whitespace (SP and HTAB) from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: DeflateMode = DeflateMode::Shared;
    const MODES: [DeflateMode; 4] = [
        SHARED,
        DeflateMode::Dedicated { window_bits: 9 },
        DeflateMode::Dedicated { window_bits: 12 },
        DeflateMode::Dedicated { window_bits: 15 },
    ];

    fn dedicated(window_bits: u8) -> DeflateMode {
        DeflateMode::Dedicated { window_bits }
    }

    fn params(snct: bool, cnct: bool, server: u8, client: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: server,
            client_max_window_bits: client,
        }
    }

    /// `negotiate`, checking on every call the invariants that hold for any input: Off never
    /// negotiates; windows in range; Shared turns off context takeover both ways; and the response,
    /// offered back alone, negotiates to itself.
    fn checked(offers: &[&str], mode: DeflateMode) -> Option<(DeflateParams, String)> {
        let offers: Vec<String> = offers.iter().map(|&o| o.to_owned()).collect();
        assert_eq!(negotiate(&offers, DeflateMode::Off), None, "{offers:?}");
        let result = negotiate(&offers, mode);
        if let Some((p, response)) = &result {
            assert!((9..=15).contains(&p.server_max_window_bits), "{p:?}");
            assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
            if mode == SHARED {
                assert!(p.server_no_context_takeover && p.client_no_context_takeover);
            }
            let again = negotiate(std::slice::from_ref(response), mode);
            assert_eq!(
                again.as_ref(),
                result.as_ref(),
                "{offers:?} then {response}"
            );
        }
        result
    }

    #[test]
    fn accepted_offers_by_mode() {
        const AUTOBAHN: &str =
            "permessage-deflate; client_no_context_takeover; client_max_window_bits";
        const AUTOBAHN_SNCT: &str = "permessage-deflate; server_no_context_takeover; \
                                     client_no_context_takeover; client_max_window_bits";
        const AUTOBAHN_9: &str = "permessage-deflate; client_no_context_takeover; \
                                  server_max_window_bits=9; client_max_window_bits";
        // Autobahn's own order: client parameters first.
        const AUTOBAHN_9_SNCT: &str = "permessage-deflate; client_no_context_takeover; \
             client_max_window_bits; server_no_context_takeover; server_max_window_bits=9";
        const BROWSER: &str = "permessage-deflate; client_max_window_bits"; // Chrome, Node ws
        const PYTHON: &str =
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12";
        const BARE: &str = "permessage-deflate";
        const SHARED_RESPONSE: &str =
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        let cases: &[(&[&str], DeflateMode, DeflateParams, &str)] = &[
            (&[BARE], SHARED, params(true, true, 15, 15), SHARED_RESPONSE),
            (
                &[BROWSER],
                SHARED,
                params(true, true, 15, 15),
                SHARED_RESPONSE,
            ),
            (
                &[AUTOBAHN],
                SHARED,
                params(true, true, 15, 15),
                SHARED_RESPONSE,
            ),
            (
                &[AUTOBAHN_SNCT],
                SHARED,
                params(true, true, 15, 15),
                SHARED_RESPONSE,
            ),
            (
                &[AUTOBAHN_9],
                SHARED,
                params(true, true, 9, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9",
            ),
            (
                &[PYTHON],
                SHARED,
                params(true, true, 12, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12",
            ),
            (
                &["permessage-deflate; server_max_window_bits=15; client_max_window_bits=8"],
                SHARED,
                params(true, true, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15",
            ),
            (&[BARE], dedicated(15), params(false, false, 15, 15), BARE),
            (
                &[BROWSER],
                dedicated(15),
                params(false, false, 15, 15),
                "permessage-deflate; client_max_window_bits=15",
            ),
            (
                &[AUTOBAHN],
                dedicated(15),
                params(false, false, 15, 15),
                "permessage-deflate; client_max_window_bits=15",
            ),
            (
                &[AUTOBAHN_SNCT],
                dedicated(15),
                params(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=15",
            ),
            (
                &[AUTOBAHN_9],
                dedicated(15),
                params(false, false, 9, 15),
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=15",
            ),
            (
                &[AUTOBAHN_9_SNCT],
                dedicated(15),
                params(true, false, 9, 15),
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
                 client_max_window_bits=15",
            ),
            (
                &[PYTHON],
                dedicated(15),
                params(false, false, 12, 12),
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            ),
            (
                &["permessage-deflate; server_max_window_bits=15; client_max_window_bits=8"],
                dedicated(15),
                params(false, false, 15, 8),
                "permessage-deflate; server_max_window_bits=15; client_max_window_bits=8",
            ),
            // A smaller Dedicated window caps both; the client only when it offered the parameter.
            (
                &[BARE],
                dedicated(10),
                params(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10",
            ),
            (
                &[BROWSER],
                dedicated(10),
                params(false, false, 10, 10),
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10",
            ),
            (
                &[AUTOBAHN_9],
                dedicated(10),
                params(false, false, 9, 10),
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
            ),
            (
                &[PYTHON],
                dedicated(10),
                params(false, false, 10, 10),
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10",
            ),
            (
                &["permessage-deflate; client_max_window_bits=8"],
                dedicated(10),
                params(false, false, 10, 8),
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=8",
            ),
            // Autobahn's lists of three offers: the first wins.
            (
                &[AUTOBAHN_9_SNCT, AUTOBAHN_SNCT, AUTOBAHN],
                SHARED,
                params(true, true, 9, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9",
            ),
            (
                &[AUTOBAHN_9, AUTOBAHN_SNCT, AUTOBAHN],
                dedicated(12),
                params(false, false, 9, 12),
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12",
            ),
            // Declined and foreign offers are passed over for the first acceptable one.
            (
                &[
                    "x-webkit-deflate-frame",
                    "permessage-deflate; server_max_window_bits=8",
                    "permessage-deflate; foo",
                    "permessage-deflate; client_max_window_bits=16",
                    "permessage-deflate; server_max_window_bits=11",
                    BARE,
                ],
                dedicated(15),
                params(false, false, 11, 15),
                "permessage-deflate; server_max_window_bits=11",
            ),
        ];
        for (offers, mode, want_params, want_response) in cases {
            let (got_params, got_response) =
                checked(offers, *mode).unwrap_or_else(|| panic!("{offers:?} {mode:?}: None"));
            assert_eq!(
                (&got_params, got_response.as_str()),
                (want_params, *want_response),
                "{offers:?} {mode:?}"
            );
        }
    }

    #[test]
    fn off_never_negotiates() {
        let offers = ["permessage-deflate".to_owned()];
        assert_eq!(negotiate(&offers, DeflateMode::Off), None);
        for mode in MODES {
            assert_eq!(negotiate(&[], mode), None, "{mode:?}");
        }
    }

    #[test]
    fn dedicated_window_is_clamped_to_9_through_15() {
        let offers = [
            "permessage-deflate; client_max_window_bits".to_owned(),
            "permessage-deflate".to_owned(),
        ];
        for (window_bits, clamped) in [(0, 9), (8, 9), (16, 15), (255, 15)] {
            for offer in &offers {
                let offer = std::slice::from_ref(offer);
                assert_eq!(
                    negotiate(offer, dedicated(window_bits)),
                    negotiate(offer, dedicated(clamped)),
                    "{window_bits} {offer:?}"
                );
            }
        }
    }

    #[test]
    fn spelling_variants_mean_the_same_offer() {
        const SERVER_10: &str = "permessage-deflate; server_max_window_bits=10";
        const CLIENT_9: &str = "permessage-deflate; client_max_window_bits=9";
        const FLAGS: &str =
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        let cases = [
            ("PerMessage-Deflate; Server_Max_Window_Bits=10", SERVER_10),
            ("permessage-deflate;server_max_window_bits=10", SERVER_10),
            (
                "permessage-deflate ; server_max_window_bits = 10",
                SERVER_10,
            ),
            (
                "permessage-deflate;\tserver_max_window_bits\t=\t10",
                SERVER_10,
            ),
            (
                " \tpermessage-deflate; server_max_window_bits=10 ",
                SERVER_10,
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                SERVER_10,
            ),
            (
                "permessage-deflate; server_max_window_bits= \"10\" ",
                SERVER_10,
            ),
            (
                "permessage-deflate; server_max_window_bits=\"1\\0\"",
                SERVER_10,
            ),
            ("permessage-deflate; CLIENT_MAX_WINDOW_BITS=\"9\"", CLIENT_9),
            ("permessage-deflate;client_max_window_bits=9", CLIENT_9),
            (
                "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
                FLAGS,
            ),
            (
                "PERMESSAGE-DEFLATE;SERVER_NO_CONTEXT_TAKEOVER ;\tClient_No_Context_Takeover",
                FLAGS,
            ),
        ];
        for (variant, canonical) in cases {
            for mode in MODES {
                let want = checked(&[canonical], mode);
                assert!(want.is_some(), "{canonical} {mode:?}");
                assert_eq!(checked(&[variant], mode), want, "{variant} {mode:?}");
            }
        }
    }

    #[test]
    fn invalid_offers_are_declined() {
        let declined = [
            // Other extensions and near misses of the name.
            "x-webkit-deflate-frame",
            "deflate-frame",
            "permessage-deflatex",
            "permessage_deflate",
            "permessage-deflate x",
            "permessage-deflate=1",
            "\"permessage-deflate\"",
            // Empty, unknown and malformed parameters.
            "",
            "permessage-deflate;",
            "permessage-deflate; ",
            "permessage-deflate;; client_max_window_bits",
            "permessage-deflate; =10",
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; server_max_window_bits x=10",
            "permessage-deflate; server_max_window_bits\n=10",
            "permessage-deflate; server_max_window_bits==10",
            "permessage-deflate; client_max_window_bits=1 0",
            // Repeated parameters, whatever their case or value.
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; SERVER_NO_CONTEXT_TAKEOVER",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            // Values where none belongs.
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover=",
            // server_max_window_bits needs a value in 9..=15 (8 is valid but zlib cannot do it).
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=\"8\"",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=0",
            "permessage-deflate; server_max_window_bits=-9",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=9.0",
            "permessage-deflate; server_max_window_bits=1e1",
            "permessage-deflate; server_max_window_bits=0x0a",
            "permessage-deflate; server_max_window_bits=99999999999999999999",
            "permessage-deflate; server_max_window_bits=\u{ff11}\u{ff10}",
            // client_max_window_bits, when valued, also needs 8..=15.
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=\"16\"",
            // Quoted strings: empty, unterminated, junk after, not a token inside.
            "permessage-deflate; client_max_window_bits=\"\"",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=\"10\\\"",
            "permessage-deflate; client_max_window_bits=\"10\\",
            "permessage-deflate; client_max_window_bits=\"10\"x",
            "permessage-deflate; client_max_window_bits=\"10\" x",
            "permessage-deflate; client_max_window_bits=\"10\"\"",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; client_max_window_bits=10\"",
            "permessage-deflate; client_max_window_bits=\"",
        ];
        for offer in declined {
            for mode in MODES {
                assert_eq!(checked(&[offer], mode), None, "{offer:?} {mode:?}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        const PIECES: [&str; 20] = [
            "permessage-deflate",
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
            ";",
            "=",
            "\"",
            "\\",
            " ",
            "\t",
            "8",
            "9",
            "10",
            "15",
            "0",
            "\u{e9}",
            "\u{0}",
            "\u{1f600}",
            "x",
        ];
        let mut state = 0x2545_f491_u32;
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut offer = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                offer.push_str(PIECES[state as usize % PIECES.len()]);
            }
            state = state.wrapping_add(0x9e37_79b9) | 1;
            for mode in MODES {
                accepted += usize::from(checked(&[&offer], mode).is_some());
            }
        }
        // The generator reaches acceptable offers too, so the invariants are exercised on them.
        assert!(accepted > 0);
    }
}
