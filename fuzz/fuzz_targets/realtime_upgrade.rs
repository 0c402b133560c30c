// What the realtime route reads from an upgrade request before it says yes or no, all
// attacker-controlled: the token from the query, the Authorization header or the subprotocol
// list, its verification, and the Origin check. None may panic; a refused token always has one
// of the reasons the metrics pre-register; a token that verifies has a non-empty sub and
// username. Also: origin patterns and allowlist entries (from config) never panic to parse.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ringgate::services::realtime::access::{IpAllowlist, OriginPolicy};
use ringgate::services::realtime::auth::{find_token, AuthError, Verifier};

// Input layout: UTF-8 text (invalid bytes cut off), split on '\n' into: the query's token,
// the Authorization header, the offered subprotocols (comma-separated), the Origin header.
fuzz_target!(|data: &[u8]| {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid_up_to is valid"),
    };
    let mut fields = text.split('\n');
    let query = fields.next().filter(|q| !q.is_empty()).map(str::to_owned);
    let authorization = fields.next();
    let protocols: Vec<String> = fields
        .next()
        .unwrap_or("")
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let origin = fields.next().unwrap_or("");

    let verifier = Verifier::new(b"fuzz-secret", Duration::from_secs(30));
    if let Some((token, _)) = find_token(query, authorization, &protocols) {
        match verifier.verify(&token) {
            Ok(claims) => assert!(!claims.sub.is_empty() && !claims.username.is_empty()),
            Err(e) => assert!(AuthError::ALL_REASONS.contains(&e.reason()), "{e:?}"),
        }
    }

    let patterns = [
        "https://app.example.com",
        "*.example.org",
        "http://*.test:8080",
    ]
    .map(str::to_owned);
    let policy = OriginPolicy::new(&patterns).expect("valid patterns");
    let _ = policy.allows(origin);
    if let Ok(own) = OriginPolicy::new(&[origin.to_owned()]) {
        let _ = own.allows(origin);
    }
    let _ = IpAllowlist::new(&[origin.to_owned()]);
});
