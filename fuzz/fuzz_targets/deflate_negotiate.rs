// RFC 7692 permessage-deflate negotiation on attacker-controlled Sec-WebSocket-Extensions
// offers: `negotiate` never panics; Off never negotiates; in every other mode it picks what the
// first offer acceptable on its own gives; an accepted offer's windows are in range (server
// 9..=15 and within Dedicated's clamped window, client 8..=15), Shared turns off context
// takeover both ways and Dedicated never the client's; the response is header-safe text starting
// with `permessage-deflate` and, offered back alone in the same mode, negotiates to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::protocol::deflate::{negotiate, DeflateMode};

// Input layout: [window, text...]; `window` is one more Dedicated window_bits (any byte, so
// clamping is exercised), the text (lossy UTF-8) is split on ',' into trimmed offers.
fuzz_target!(|data: &[u8]| {
    let [window, text @ ..] = data else {
        return;
    };
    let offers: Vec<String> = String::from_utf8_lossy(text)
        .split(',')
        .map(|offer| offer.trim().to_owned())
        .collect();
    assert_eq!(negotiate(&offers, DeflateMode::Off), None, "Off");
    for mode in [
        DeflateMode::Shared,
        DeflateMode::Dedicated { window_bits: 9 },
        DeflateMode::Dedicated { window_bits: 15 },
        DeflateMode::Dedicated {
            window_bits: *window,
        },
    ] {
        let result = negotiate(&offers, mode);
        let first_alone = offers
            .iter()
            .find_map(|offer| negotiate(std::slice::from_ref(offer), mode));
        assert_eq!(
            result, first_alone,
            "{mode:?}: not the first acceptable offer"
        );
        let Some((params, response)) = &result else {
            continue;
        };
        assert!(
            response.starts_with("permessage-deflate"),
            "{mode:?}: {response}"
        );
        assert!(
            response.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
            "{mode:?}: {response:?}"
        );
        assert!(
            (9..=15).contains(&params.server_max_window_bits),
            "{mode:?}: {params:?}"
        );
        assert!(
            (8..=15).contains(&params.client_max_window_bits),
            "{mode:?}: {params:?}"
        );
        match mode {
            DeflateMode::Shared => assert!(
                params.server_no_context_takeover && params.client_no_context_takeover,
                "{mode:?}: {params:?}"
            ),
            DeflateMode::Dedicated { window_bits } => assert!(
                !params.client_no_context_takeover
                    && params.server_max_window_bits <= window_bits.clamp(9, 15),
                "{mode:?}: {params:?}"
            ),
            DeflateMode::Off => unreachable!("Off negotiated"),
        }
        let again = negotiate(std::slice::from_ref(response), mode);
        assert_eq!(
            again.as_ref(),
            result.as_ref(),
            "{mode:?}: {response} offered back"
        );
    }
});
