//! One shard's channel table: which of its connections (by slab slot) listen
//! on which named channel. Owned by the shard alone; never shared or locked.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Channel name → subscribed slots, and slot → its channels (for cleanup).
#[derive(Default)]
pub struct Subscriptions {
    members: HashMap<Arc<str>, HashSet<u32>>,
    by_slot: HashMap<u32, Vec<Arc<str>>>,
}

impl Subscriptions {
    pub(crate) fn subscribe(&mut self, slot: u32, channel: &str) {
        let name = match self.members.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        if self.members.entry(name.clone()).or_default().insert(slot) {
            self.by_slot.entry(slot).or_default().push(name);
        }
    }

    pub(crate) fn unsubscribe(&mut self, slot: u32, channel: &str) {
        if let Some(set) = self.members.get_mut(channel) {
            set.remove(&slot);
            if set.is_empty() {
                self.members.remove(channel);
            }
        }
        if let Some(list) = self.by_slot.get_mut(&slot) {
            list.retain(|c| &**c != channel);
            if list.is_empty() {
                self.by_slot.remove(&slot);
            }
        }
    }

    /// Drops every subscription of a closing connection.
    pub(crate) fn remove_slot(&mut self, slot: u32) {
        for channel in self.by_slot.remove(&slot).unwrap_or_default() {
            if let Some(set) = self.members.get_mut(&channel) {
                set.remove(&slot);
                if set.is_empty() {
                    self.members.remove(&channel);
                }
            }
        }
    }

    /// How many slots are subscribed to `channel`.
    pub(crate) fn member_count(&self, channel: &str) -> usize {
        self.members.get(channel).map_or(0, HashSet::len)
    }

    /// The slots subscribed to `channel`.
    pub(crate) fn members(&self, channel: &str) -> impl Iterator<Item = u32> + '_ {
        self.members.get(channel).into_iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_unsubscribe_and_cleanup() {
        let mut subs = Subscriptions::default();
        subs.subscribe(1, "a");
        subs.subscribe(1, "a");
        subs.subscribe(2, "a");
        subs.subscribe(1, "b");
        let mut a: Vec<u32> = subs.members("a").collect();
        a.sort();
        assert_eq!(a, vec![1, 2]);
        subs.unsubscribe(2, "a");
        assert_eq!(subs.members("a").collect::<Vec<_>>(), vec![1]);
        assert_eq!((subs.member_count("a"), subs.member_count("zz")), (1, 0));
        subs.remove_slot(1);
        assert_eq!(subs.members("a").count(), 0);
        assert_eq!(subs.members("b").count(), 0);
        assert!(subs.by_slot.is_empty() && subs.members.is_empty());
    }
}
