//! `registry`: charge point ids the gateway has never seen, each connecting
//! once and leaving without a BootNotification, at the stream's rate. A
//! gateway that remembers every id it ever saw fills its table
//! (`OCPP_MAX_CHARGE_POINTS`) and then refuses new charge points (503).

use super::plan::AttackPlan;
use super::Knocks;

/// Ids `{prefix}r{n}`, new in every run.
pub struct FreshIds {
    prefix: String,
}

impl FreshIds {
    pub fn new(plan: &AttackPlan) -> FreshIds {
        FreshIds {
            prefix: format!("{}r", plan.id_prefix),
        }
    }
}

impl Knocks for FreshIds {
    fn attempt(&self, n: u64) -> (String, Option<String>) {
        (format!("{}{n}", self.prefix), None)
    }

    fn describe(&self) -> String {
        format!(
            "new ids {}N that connect and leave without booting",
            self.prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_is_a_new_id() {
        let ids = FreshIds {
            prefix: "atk-1-r".into(),
        };
        assert_eq!(ids.attempt(7), ("atk-1-r7".into(), None));
        assert_ne!(ids.attempt(8).0, ids.attempt(7).0);
    }
}
