//! `passwords`: HTTP Basic upgrades for one charge point id (`--password-id`,
//! which should have a password configured) with a wrong password each
//! time, at `--password-rate`. A gateway that checks each with a memory-hard
//! hash on its shard thread spends milliseconds of that thread per attempt.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::plan::AttackPlan;
use super::Knocks;

pub struct WrongPasswords {
    id: String,
}

impl WrongPasswords {
    pub fn new(plan: &AttackPlan) -> WrongPasswords {
        WrongPasswords {
            id: plan.password_id.clone(),
        }
    }
}

impl Knocks for WrongPasswords {
    fn attempt(&self, n: u64) -> (String, Option<String>) {
        // 24 characters, like a machine-made key, never the right one.
        let password = format!("wrong-password-{n:09}");
        let credentials = STANDARD.encode(format!("{}:{password}", self.id));
        (self.id.clone(), Some(format!("Basic {credentials}")))
    }

    fn describe(&self) -> String {
        format!("wrong Basic passwords for {}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attempt_guesses_a_new_password_for_the_id() {
        let p = WrongPasswords { id: "cp-0".into() };
        let (id, auth) = p.attempt(3);
        assert_eq!(id, "cp-0");
        let auth = auth.unwrap();
        let decoded = STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"cp-0:wrong-password-000000003");
        assert_ne!(p.attempt(4).1, Some(auth));
    }
}
