// Checks that the realtime envelope never panics: any input is parsed by `parse_inbound` (bytes
// that are not UTF-8 are cut to their valid start, as a text frame could never carry them), and
// whatever parses is written back through `Outbound` into text serde_json reads as the envelope
// it claims to be: the kind, room and recipient kept, `data` an object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::services::realtime::envelope::{error_message, parse_inbound, Outbound};

// Input layout: the whole input is the message text.
fuzz_target!(|data: &[u8]| {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid_up_to is valid"),
    };
    let mut scratch = Vec::new();
    let inbound = match parse_inbound(text, &mut scratch) {
        Ok(inbound) => inbound,
        Err(e) => {
            let reply = error_message(e.code(), &e.to_string());
            let reply: serde_json::Value =
                serde_json::from_str(&reply).expect("error reply is JSON");
            assert_eq!(reply["data"]["code"], e.code());
            return;
        }
    };
    // Parsing again with the scratch buffer reused gives the same result.
    assert_eq!(parse_inbound(text, &mut scratch).as_ref(), Ok(&inbound));

    let mut outbound = Outbound::new(inbound.kind.as_str(), &inbound.data).from_user("fuzz");
    if let Some(room) = &inbound.room {
        outbound = outbound.in_room(room);
    }
    if let Some(to) = &inbound.to_user_id {
        outbound = outbound.to_user(to);
    }
    let encoded = outbound.encode();
    let value: serde_json::Value = serde_json::from_str(&encoded).expect("encode writes JSON");
    assert_eq!(value["message_type"], inbound.kind.as_str());
    assert!(value["data"].is_object(), "data is an object: {encoded}");
    assert_eq!(value["room"].as_str(), inbound.room.as_deref());
    assert_eq!(value["to_user_id"].as_str(), inbound.to_user_id.as_deref());
});
