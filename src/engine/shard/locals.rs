//! Per-shard values of any type, one of each, that handlers and code run on
//! the shard ([`crate::ConnCtx::local`], [`crate::ShardCtx::local`]) keep
//! between callbacks: a service's indexes for the connections of one shard.
//! Only the shard's thread touches them, so they need no lock.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// A type-keyed map, created empty with the shard.
#[derive(Default)]
pub(crate) struct ShardLocals(HashMap<TypeId, Box<dyn Any + Send>>);

impl ShardLocals {
    /// The shard's `T`, created with `T::default()` on first use.
    pub(crate) fn get<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
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
