//! Who a `/ws` client is: finds the JWT in the upgrade request and verifies it (HS256 only,
//! through `jsonwebtoken`) into [`Claims`]. It never logs a token, never puts one in an error,
//! and never accepts another algorithm than HS256 (`alg: none` included).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub exp: u64,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Claims {
    /// Whether the token carries `"role": "admin"`.
    pub fn is_admin(&self) -> bool {
        self.role.as_deref() == Some("admin")
    }
}

/// Why a token was refused. No variant holds any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: pass ?token=, Authorization: Bearer, or the access_token subprotocol")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's algorithm is not allowed (HS256 only)")]
    Algorithm,
    #[error("the token has no {0:?} claim")]
    MissingClaim(&'static str),
    #[error("the token's {0:?} claim is not valid")]
    InvalidClaim(&'static str),
}

impl AuthError {
    /// The snake_case label used as the JSON error code and the metrics label:
    /// `missing_token`, `malformed_token`, `bad_signature`, `expired`, `not_yet_valid`,
    /// `algorithm_not_allowed`, `missing_claim`, `invalid_claim`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed => "malformed_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::Algorithm => "algorithm_not_allowed",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::InvalidClaim(_) => "invalid_claim",
        }
    }

    /// Every [`reason`](AuthError::reason), for pre-registering metrics.
    pub const ALL_REASONS: &'static [&'static str] = &[
        "missing_token",
        "malformed_token",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "algorithm_not_allowed",
        "missing_claim",
        "invalid_claim",
    ];
}

/// Verifies HS256 tokens signed with one secret.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    leeway_secs: u64,
}

impl Verifier {
    /// `leeway` is the clock skew allowed on `exp` and `nbf` (whole seconds count).
    pub fn new(secret: &[u8], leeway: Duration) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        // jsonwebtoken checks the signature (and the header's alg once more); the claims are
        // checked here, to name the claim at fault and to do the time arithmetic saturating.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
            leeway_secs: leeway.as_secs(),
        }
    }

    /// The token's claims when it is a valid HS256 JWT signed with the secret, unexpired
    /// and already valid (`nbf`), both within the leeway.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now)
    }

    fn verify_at(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        check_header(token)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| refusal(e.kind()))?;
        let claims = claims_from(&data.claims)?;
        if now_secs >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_secs.saturating_add(self.leeway_secs))
        {
            return Err(AuthError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The refusal a jsonwebtoken error stands for (claims and times are checked afterwards).
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
        _ => AuthError::Malformed,
    }
}

/// Refuses a token that is not three dot-separated parts (`Malformed`) or whose header names
/// another algorithm than HS256 (`Algorithm`). jsonwebtoken alone would call an `alg: none`
/// header malformed: its `Algorithm` enum has no `none`, so the header fails to deserialize.
fn check_header(token: &str) -> Result<(), AuthError> {
    #[derive(serde::Deserialize)]
    struct Header {
        alg: String,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: Header = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
    if header.alg == "HS256" {
        Ok(())
    } else {
        Err(AuthError::Algorithm)
    }
}

/// The claims of a token whose signature verified; missing required claims first, in the
/// order sub, username, exp.
fn claims_from(map: &Map<String, Value>) -> Result<Claims, AuthError> {
    let present = |name| map.get(name).is_some_and(|value| !value.is_null());
    for name in ["sub", "username", "exp"] {
        if !present(name) {
            return Err(AuthError::MissingClaim(name));
        }
    }
    let required = |name| {
        string_claim(map, name)?
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::InvalidClaim(name))
    };
    Ok(Claims {
        sub: required("sub")?,
        username: required("username")?,
        exp: numeric_date(map, "exp")?.ok_or(AuthError::InvalidClaim("exp"))?,
        role: string_claim(map, "role")?,
        iat: numeric_date(map, "iat")?,
        nbf: numeric_date(map, "nbf")?,
        jti: string_claim(map, "jti")?,
        email: string_claim(map, "email")?,
    })
}

/// An optional string claim (`null` is absent).
fn string_claim(map: &Map<String, Value>, name: &'static str) -> Result<Option<String>, AuthError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::InvalidClaim(name)),
    }
}

/// An optional NumericDate claim: seconds since the epoch, a non-negative integer or a finite
/// non-negative number (whose fraction is dropped), as RFC 7519 allows.
fn numeric_date(map: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    let Some(value) = map.get(name).filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    let seconds = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    });
    seconds.map(Some).ok_or(AuthError::InvalidClaim(name))
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Query,
    Header,
    Protocol,
}

/// The subprotocol a browser offers before its token:
/// `new WebSocket(url, ["access_token", jwt])`; the server then selects `access_token`.
pub const TOKEN_PROTOCOL: &str = "access_token";

/// The token: `?token=` first, then `Authorization: Bearer` (scheme case-insensitive), then
/// the protocol entry that follows [`TOKEN_PROTOCOL`] in the offered list. Empty values count
/// as absent; an `Authorization` header with another scheme (or a space inside the
/// credentials) is not a token.
pub fn find_token(
    query: Option<String>,
    authorization: Option<&str>,
    protocols: &[String],
) -> Option<(String, TokenSource)> {
    if let Some(token) = query.filter(|token| !token.is_empty()) {
        return Some((token, TokenSource::Query));
    }
    if let Some(token) = authorization.and_then(bearer) {
        return Some((token.to_owned(), TokenSource::Header));
    }
    let offered = protocols.iter().map(|p| p.trim());
    offered
        .clone()
        .zip(offered.skip(1))
        .find(|(protocol, _)| *protocol == TOKEN_PROTOCOL)
        .map(|(_, token)| token)
        .filter(|token| !token.is_empty())
        .map(|token| (token.to_owned(), TokenSource::Protocol))
}

/// The credentials of an `Authorization: Bearer <token>` value.
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization
        .trim()
        .split_once(|c: char| c.is_ascii_whitespace())?;
    let token = rest.trim();
    let single = !token.is_empty() && !token.contains(|c: char| c.is_ascii_whitespace());
    (scheme.eq_ignore_ascii_case("bearer") && single).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret";
    const NOW: u64 = 1_800_000_000;

    fn verifier() -> Verifier {
        Verifier::new(SECRET, Duration::from_secs(30))
    }

    fn token_with(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn token(claims: &Value) -> String {
        token_with(Algorithm::HS256, SECRET, claims)
    }

    fn valid_claims() -> Value {
        json!({"sub": "u1", "username": "alice", "exp": NOW + 3600})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn without(mut claims: Value, key: &str) -> Value {
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn verify(token: &str) -> Result<Claims, AuthError> {
        verifier().verify_at(token, NOW)
    }

    #[test]
    fn valid_token() {
        let claims = json!({
            "sub": "u1", "username": "alice", "exp": NOW + 3600, "iat": NOW - 10,
            "nbf": NOW - 10, "jti": "j1", "email": "a@example.com", "role": "admin",
            "extra": {"ignored": true}, "aud": "someone",
        });
        let got = verify(&token(&claims)).unwrap();
        assert_eq!(
            got,
            Claims {
                sub: "u1".into(),
                username: "alice".into(),
                exp: NOW + 3600,
                role: Some("admin".into()),
                iat: Some(NOW - 10),
                nbf: Some(NOW - 10),
                jti: Some("j1".into()),
                email: Some("a@example.com".into()),
            }
        );
        assert!(got.is_admin());
    }

    #[test]
    fn optional_claims_and_roles() {
        let got = verify(&token(&valid_claims())).unwrap();
        assert_eq!(
            (got.role, got.iat, got.nbf, got.jti, got.email),
            (None, None, None, None, None)
        );
        let user = verify(&token(&with(valid_claims(), "role", json!("user")))).unwrap();
        assert!(!user.is_admin());
        let nulls = with(
            with(valid_claims(), "role", Value::Null),
            "nbf",
            Value::Null,
        );
        assert!(!verify(&token(&nulls)).unwrap().is_admin());
    }

    #[test]
    fn claims_deserialize_with_defaults() {
        let claims: Claims =
            serde_json::from_value(json!({"sub": "u", "username": "n", "exp": 5})).unwrap();
        assert_eq!((claims.exp, claims.role), (5, None));
    }

    #[test]
    fn verify_uses_the_wall_clock() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let fresh = with(valid_claims(), "exp", json!(now + 60));
        assert!(verifier().verify(&token(&fresh)).is_ok());
        let stale = with(valid_claims(), "exp", json!(now - 3600));
        assert_eq!(verifier().verify(&token(&stale)), Err(AuthError::Expired));
    }

    #[test]
    fn empty_token_is_missing() {
        assert_eq!(verify(""), Err(AuthError::Missing));
    }

    #[test]
    fn malformed() {
        let good = token(&valid_claims());
        let (header, rest) = good.split_once('.').unwrap();
        let payload = rest.split('.').next().unwrap();
        let cases = [
            "garbage".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "..".to_owned(),
            "!!!.???.***".to_owned(),
            format!("{header}.{payload}"),
            format!("{good}.x"),
            // Header not base64, not JSON, not an object, no alg, alg not a string.
            format!("%%%.{payload}.sig"),
            format!("{}.{payload}.sig", b64("not json")),
            format!("{}.{payload}.sig", b64("[]")),
            format!("{}.{payload}.sig", b64(r#"{"typ":"JWT"}"#)),
            format!("{}.{payload}.sig", b64(r#"{"alg":256}"#)),
            // Padded base64 is not base64url.
            format!("{header}=.{payload}.sig"),
        ];
        for case in &cases {
            assert_eq!(verify(case), Err(AuthError::Malformed), "{case}");
        }
    }

    #[test]
    fn signed_payload_that_is_not_claims_is_malformed() {
        // Correctly signed, but the payload is not a JSON object.
        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        for payload in ["[1,2]", "not json", "\"s\""] {
            let message = format!("{header}.{}", b64(payload));
            let signature = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                Algorithm::HS256,
            )
            .unwrap();
            assert_eq!(
                verify(&format!("{message}.{signature}")),
                Err(AuthError::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn bad_signature() {
        let claims = valid_claims();
        assert_eq!(
            verify(&token_with(Algorithm::HS256, b"other-secret", &claims)),
            Err(AuthError::BadSignature)
        );
        // A payload swapped under a valid signature.
        let good = token(&claims);
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = b64(r#"{"sub":"root","username":"root","exp":9999999999,"role":"admin"}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join(".")), Err(AuthError::BadSignature));
        // An empty or garbage signature.
        let unsigned = format!("{}.{}.", parts[0], b64(&claims.to_string()));
        assert_eq!(verify(&unsigned), Err(AuthError::BadSignature));
        assert_eq!(
            verify(&format!("{unsigned}!!")),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_refused_as_algorithm() {
        let payload = b64(&valid_claims().to_string());
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
        ] {
            for signature in ["", "c2ln"] {
                let token = format!("{}.{payload}.{signature}", b64(header));
                assert_eq!(
                    verify(&token),
                    Err(AuthError::Algorithm),
                    "{header} {signature:?}"
                );
            }
        }
        // What jsonwebtoken alone makes of it: a JSON (deserialization) error.
        let token = format!("{}.{payload}.", b64(r#"{"alg":"none"}"#));
        let err = jsonwebtoken::decode_header(&token).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Json(_)), "{err:?}");
    }

    #[test]
    fn other_algorithms_are_refused() {
        let claims = valid_claims();
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            // Signed with the right secret, but not HS256.
            assert_eq!(
                verify(&token_with(alg, SECRET, &claims)),
                Err(AuthError::Algorithm)
            );
        }
        let payload = b64(&claims.to_string());
        for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256", ""] {
            let header = b64(&json!({"alg": alg, "typ": "JWT"}).to_string());
            assert_eq!(
                verify(&format!("{header}.{payload}.c2ln")),
                Err(AuthError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn missing_claims() {
        for name in ["sub", "username", "exp"] {
            let claims = without(valid_claims(), name);
            assert_eq!(
                verify(&token(&claims)),
                Err(AuthError::MissingClaim(name)),
                "{name}"
            );
            let claims = with(valid_claims(), name, Value::Null);
            assert_eq!(
                verify(&token(&claims)),
                Err(AuthError::MissingClaim(name)),
                "{name} null"
            );
        }
        assert_eq!(
            verify(&token(&json!({"exp": NOW + 60}))),
            Err(AuthError::MissingClaim("sub"))
        );
    }

    #[test]
    fn invalid_claims() {
        let cases = [
            ("sub", json!("")),
            ("sub", json!(42)),
            ("username", json!("")),
            ("username", json!(["alice"])),
            ("exp", json!("tomorrow")),
            ("exp", json!(-1)),
            ("nbf", json!({})),
            ("iat", json!(-5)),
            ("role", json!(true)),
            ("jti", json!(1)),
            ("email", json!({"a": 1})),
        ];
        for (name, value) in cases {
            let claims = with(valid_claims(), name, value.clone());
            assert_eq!(
                verify(&token(&claims)),
                Err(AuthError::InvalidClaim(name)),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn fractional_dates_are_accepted() {
        let claims = with(valid_claims(), "exp", json!((NOW + 60) as f64 + 0.75));
        assert_eq!(verify(&token(&claims)).unwrap().exp, NOW + 60);
    }

    #[test]
    fn expiry_and_leeway() {
        let at = |exp: u64| with(valid_claims(), "exp", json!(exp));
        let strict = Verifier::new(SECRET, Duration::ZERO);
        assert!(strict.verify_at(&token(&at(NOW + 1)), NOW).is_ok());
        assert_eq!(
            strict.verify_at(&token(&at(NOW)), NOW),
            Err(AuthError::Expired)
        );
        assert_eq!(
            strict.verify_at(&token(&at(0)), NOW),
            Err(AuthError::Expired)
        );
        // 30 s of leeway: expired 29 s ago passes, 30 s ago does not.
        assert!(verify(&token(&at(NOW - 29))).is_ok());
        assert_eq!(verify(&token(&at(NOW - 30))), Err(AuthError::Expired));
        // Huge values neither overflow nor panic.
        let lenient = Verifier::new(SECRET, Duration::from_secs(u64::MAX));
        assert!(lenient
            .verify_at(&token(&at(u64::MAX)), u64::MAX - 1)
            .is_ok());
        assert!(lenient.verify_at(&token(&at(0)), NOW).is_ok());
    }

    #[test]
    fn not_before_and_leeway() {
        let nbf = |nbf: u64| with(valid_claims(), "nbf", json!(nbf));
        assert_eq!(verify(&token(&nbf(NOW + 31))), Err(AuthError::NotYetValid));
        assert!(verify(&token(&nbf(NOW + 30))).is_ok());
        assert!(verify(&token(&nbf(NOW))).is_ok());
        let strict = Verifier::new(SECRET, Duration::ZERO);
        assert_eq!(
            strict.verify_at(&token(&nbf(NOW + 1)), NOW),
            Err(AuthError::NotYetValid)
        );
        // Huge values neither overflow nor panic.
        let far = with(nbf(u64::MAX), "exp", json!(u64::MAX));
        assert_eq!(
            strict.verify_at(&token(&far), NOW),
            Err(AuthError::NotYetValid)
        );
        let lenient = Verifier::new(SECRET, Duration::from_secs(u64::MAX));
        assert!(lenient.verify_at(&token(&far), NOW).is_ok());
    }

    #[test]
    fn signature_is_checked_before_claims() {
        // A forged token learns nothing about which claims are wrong.
        let expired = with(without(valid_claims(), "sub"), "exp", json!(1));
        assert_eq!(
            verify(&token_with(Algorithm::HS256, b"wrong", &expired)),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn errors_never_echo_the_token() {
        let token = token_with(Algorithm::HS256, b"wrong", &valid_claims());
        let err = verify(&token).unwrap_err();
        for part in token.split('.') {
            assert!(!format!("{err} {err:?}").contains(part));
        }
    }

    #[test]
    fn reasons() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::Algorithm,
            AuthError::MissingClaim("sub"),
            AuthError::InvalidClaim("sub"),
        ];
        let reasons: Vec<&str> = all.iter().map(AuthError::reason).collect();
        assert_eq!(reasons, AuthError::ALL_REASONS);
        assert_eq!(AuthError::Algorithm.reason(), "algorithm_not_allowed");
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn token_from_query_first() {
        let protocols = strings(&[TOKEN_PROTOCOL, "p"]);
        assert_eq!(
            find_token(Some("q".into()), Some("Bearer h"), &protocols),
            Some(("q".into(), TokenSource::Query))
        );
        // An empty query value falls through.
        assert_eq!(
            find_token(Some(String::new()), Some("Bearer h"), &protocols),
            Some(("h".into(), TokenSource::Header))
        );
    }

    #[test]
    fn bearer_parsing() {
        let header = |value: &str| find_token(None, Some(value), &[]);
        for value in [
            "Bearer x",
            "bearer x",
            "BEARER x",
            "Bearer  x",
            "Bearer\tx",
            " Bearer x ",
        ] {
            assert_eq!(
                header(value),
                Some(("x".into(), TokenSource::Header)),
                "{value:?}"
            );
        }
        for value in [
            "Basic x",
            "Bearer",
            "Bearer ",
            "Bearerx",
            "Bearer x y",
            "x",
            "",
        ] {
            assert_eq!(header(value), None, "{value:?}");
        }
    }

    #[test]
    fn token_from_protocol_list() {
        let find = |list: &[&str]| find_token(None, None, &strings(list));
        assert_eq!(
            find(&["chat", TOKEN_PROTOCOL, "jwt-here"]),
            Some(("jwt-here".into(), TokenSource::Protocol))
        );
        assert_eq!(
            find(&[TOKEN_PROTOCOL, " jwt "]),
            Some(("jwt".into(), TokenSource::Protocol))
        );
        assert_eq!(find(&["jwt-here", TOKEN_PROTOCOL]), None);
        assert_eq!(find(&[TOKEN_PROTOCOL]), None);
        assert_eq!(find(&[TOKEN_PROTOCOL, ""]), None);
        assert_eq!(find(&["Access_Token", "jwt"]), None);
        assert_eq!(find(&[]), None);
        // A non-bearer Authorization header falls through to the protocol.
        assert_eq!(
            find_token(None, Some("Basic abc"), &strings(&[TOKEN_PROTOCOL, "t"])),
            Some(("t".into(), TokenSource::Protocol))
        );
    }

    #[test]
    fn found_tokens_verify() {
        let jwt = token(&valid_claims());
        let (found, source) =
            find_token(None, Some(&format!("Bearer {jwt}")), &[]).expect("a token");
        assert_eq!(source, TokenSource::Header);
        assert_eq!(verify(&found).unwrap().sub, "u1");
    }
}
