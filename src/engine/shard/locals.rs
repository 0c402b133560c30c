//! Per-shard values of any type, one of each, that handlers and code run on
//! the shard ([`crate::ConnCtx::local`], [`crate::ShardCtx::local`]) keep
//! between callbacks: a service's indexes for the connections of one shard.
//! Only the shard's thread touches them, so they need no lock.

use std::any::{Any, TypeId};

/// A type-keyed list, created empty with the shard. A shard holds a few
/// types at most, and a message may look one up several times, so a
/// linear scan beats hashing here.
#[derive(Default)]
pub(crate) struct ShardLocals(Vec<(TypeId, Box<dyn Any + Send>)>);

impl ShardLocals {
    /// The shard's `T`, created with `T::default()` on first use.
    pub(crate) fn get<T: Default + Send + 'static>(&mut self) -> &mut T {
        let key = TypeId::of::<T>();
        let at = match self.0.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                self.0.push((key, Box::new(T::default())));
                self.0.len() - 1
            }
        };
        self.0[at]
            .1
            .downcast_mut::<T>()
            .expect("keyed by its own TypeId")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_kept_between_calls() {
        let mut locals = ShardLocals::default();
        *locals.get::<u32>() += 2;
        locals.get::<Vec<&str>>().push("a");
        *locals.get::<u32>() += 3;
        assert_eq!(*locals.get::<u32>(), 5);
        assert_eq!(locals.get::<Vec<&str>>(), &vec!["a"]);
    }
}
