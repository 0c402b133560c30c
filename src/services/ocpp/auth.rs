//! Security profile 1 of the OCPP security whitepaper: HTTP Basic auth at the upgrade, the user
//! being the charge-point id and the password checked against an argon2 hash (PHC string) from
//! the config. A password once verified is remembered as a keyed BLAKE2 digest, so a reconnect
//! storm of known charge points costs one digest each, not one argon2 run each. The check comes
//! in two steps: the cheap one a shard may run, and the argon2 run, which belongs off the shards
//! (the handler defers the upgrade to the [`hash_pool`](super::hash_pool)). It never sees a
//! socket and never logs a password.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHashString, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac512;
use subtle::ConstantTimeEq;

/// Why an upgrade was refused by the auth check (answered 401, or 429 for a shut-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this charge point needs HTTP Basic auth (Authorization: Basic base64(id:password))")]
    Missing,
    #[error("the Authorization header is not valid Basic credentials")]
    Malformed,
    #[error("the Basic auth user must be the charge point id")]
    WrongUser,
    #[error("wrong password")]
    WrongPassword,
    #[error("this charge point has no password configured and OCPP_AUTH_REQUIRED is on")]
    NoPassword,
    #[error("too many wrong passwords for this charge point or from this address: retry later")]
    TooManyFailures,
}

impl AuthError {
    /// Every reason, for `/metrics`.
    pub const ALL: [AuthError; 6] = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::WrongUser,
        AuthError::WrongPassword,
        AuthError::NoPassword,
        AuthError::TooManyFailures,
    ];

    /// The short code of the 401 body and the metrics label.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_credentials",
            AuthError::Malformed => "malformed_credentials",
            AuthError::WrongUser => "wrong_user",
            AuthError::WrongPassword => "wrong_password",
            AuthError::NoPassword => "no_password_configured",
            AuthError::TooManyFailures => "too_many_failures",
        }
    }

    /// The HTTP status of the refusal: 429 for a shut-out, 401 otherwise.
    pub fn status(self) -> u16 {
        match self {
            AuthError::TooManyFailures => 429,
            _ => 401,
        }
    }
}

/// A password entry the config holds that is not an argon2 PHC string.
#[derive(Debug, thiserror::Error)]
#[error("the password hash of charge point {id:?} is not an argon2 PHC string ($argon2id$...): {problem}")]
pub struct BadHash {
    pub id: String,
    problem: argon2::password_hash::Error,
}

/// What [`Passwords::check_cheap`] found.
#[derive(Debug)]
pub enum Check {
    /// Let in: no password needed, or one verified before.
    Passed,
    /// The password must be checked against its hash ([`Passwords::verify`]).
    Verify(Verification),
}

/// A password waiting for its argon2 run. Its `Debug` shows the id only.
pub struct Verification {
    id: String,
    password: String,
    hash: PasswordHashString,
    digest: [u8; 64],
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The configured password hashes and the digests of passwords verified since start.
pub struct Passwords {
    hashes: HashMap<String, PasswordHashString>,
    required: bool,
    /// Key of the verified-password digests, random per process.
    key: [u8; 32],
    verified: Mutex<HashMap<String, [u8; 64]>>,
}

impl Passwords {
    /// `hashes`: charge-point id → PHC string. With `required`, ids without an entry are refused.
    pub fn new(hashes: &BTreeMap<String, String>, required: bool) -> Result<Passwords, BadHash> {
        let hashes = hashes
            .iter()
            .map(|(id, hash)| {
                let parsed = PasswordHashString::new(hash).map_err(|problem| BadHash {
                    id: id.clone(),
                    problem,
                })?;
                Ok((id.clone(), parsed))
            })
            .collect::<Result<_, BadHash>>()?;
        Ok(Passwords {
            hashes,
            required,
            key: random_key(),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Checks the `Authorization` header of charge point `id`'s upgrade, argon2 included: the
    /// two steps of [`Passwords::check_cheap`] and [`Passwords::verify`] in one.
    pub fn check(&self, id: &str, authorization: Option<&str>) -> Result<(), AuthError> {
        match self.check_cheap(id, authorization)? {
            Check::Passed => Ok(()),
            Check::Verify(verification) => self.verify(verification),
        }
    }

    /// Everything but the argon2 run, quick enough for a shard: the header's shape, the user,
    /// and a password verified before. An id without a password passes unless auth is
    /// required (credentials it sends anyway are ignored). What is left is a
    /// [`Verification`] for [`Passwords::verify`], which takes milliseconds: run it off the
    /// shard.
    pub fn check_cheap(&self, id: &str, authorization: Option<&str>) -> Result<Check, AuthError> {
        let Some(hash) = self.hashes.get(id) else {
            return if self.required {
                Err(AuthError::NoPassword)
            } else {
                Ok(Check::Passed)
            };
        };
        let (user, password) = basic_credentials(authorization.ok_or(AuthError::Missing)?)?;
        if user != id {
            return Err(AuthError::WrongUser);
        }
        let digest = self.digest(id, &password);
        let known = self.verified.lock().expect("not poisoned").get(id).copied();
        if known.is_some_and(|known| bool::from(known.ct_eq(&digest))) {
            return Ok(Check::Passed);
        }
        Ok(Check::Verify(Verification {
            id: id.to_owned(),
            password,
            hash: hash.clone(),
            digest,
        }))
    }

    /// Runs argon2 on a password [`Passwords::check_cheap`] could not settle, and remembers
    /// it when it is right.
    pub fn verify(&self, verification: Verification) -> Result<(), AuthError> {
        let Verification {
            id,
            password,
            hash,
            digest,
        } = verification;
        // The hash names its own algorithm and parameters.
        Argon2::default()
            .verify_password(password.as_bytes(), &hash.password_hash())
            .map_err(|_| AuthError::WrongPassword)?;
        self.verified
            .lock()
            .expect("not poisoned")
            .insert(id, digest);
        Ok(())
    }

    fn digest(&self, id: &str, password: &str) -> [u8; 64] {
        let mut mac =
            <Blake2bMac512 as KeyInit>::new_from_slice(&self.key).expect("a 32-byte key fits");
        mac.update(id.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// 32 random bytes (two v4 UUIDs' worth, from the OS's generator).
fn random_key() -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(header: &str) -> Result<(String, String), AuthError> {
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok((user.to_owned(), password.to_owned()))
}

/// argon2id memory (KiB), passes and lanes of [`hash_password`]: a few milliseconds a check.
/// Charge-point passwords are machine-made keys of 16 to 40 characters, which no amount of
/// hashing makes easier or harder to guess; a heavy setting would only make every first
/// connection after a restart cost the shard tens of milliseconds. Any PHC string verifies,
/// so an operator who wants heavier parameters can hash with them elsewhere.
pub const HASH_PARAMS: (u32, u32, u32) = (4096, 1, 1);

/// An argon2id PHC string of `password` with a random salt and [`HASH_PARAMS`] (what
/// `ringgate --hash-password` prints).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("16 bytes is a salt");
    let (memory, passes, lanes) = HASH_PARAMS;
    let params = argon2::Params::new(memory, passes, lanes, None).expect("valid parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("the default parameters hash any password")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    #[test]
    fn basic_auth_is_checked_against_the_hash() {
        let hashes = BTreeMap::from([("CP1".to_owned(), hash_password("s3cret:with colon"))]);
        let passwords = Passwords::new(&hashes, false).unwrap();
        let good = basic("CP1", "s3cret:with colon");
        assert_eq!(passwords.check("CP1", Some(&good)), Ok(()));
        assert!(
            matches!(passwords.check_cheap("CP1", Some(&good)), Ok(Check::Passed)),
            "from the cache, with no argon2 run"
        );
        assert!(matches!(
            passwords.check_cheap("CP1", Some(&basic("CP1", "other"))),
            Ok(Check::Verify(_))
        ));
        assert_eq!(
            passwords.check("CP1", Some(&basic("CP1", "wrong"))),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            passwords.check("CP1", Some(&basic("CP2", "s3cret:with colon"))),
            Err(AuthError::WrongUser)
        );
        assert_eq!(passwords.check("CP1", None), Err(AuthError::Missing));
        assert_eq!(
            passwords.check("CP1", Some("Basic !!!")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            passwords.check("CP1", Some("Bearer abc")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            passwords.check("other", None),
            Ok(()),
            "no entry, not required"
        );
        let required = Passwords::new(&hashes, true).unwrap();
        assert_eq!(required.check("other", None), Err(AuthError::NoPassword));
    }

    #[test]
    fn a_bad_hash_names_its_charge_point() {
        let hashes = BTreeMap::from([("CP9".to_owned(), "plaintext".to_owned())]);
        let err = Passwords::new(&hashes, false).err().unwrap().to_string();
        assert!(err.contains("\"CP9\""), "{err}");
    }
}
