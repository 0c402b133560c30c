//! `/echo`: sends every text and binary message back unchanged. The
//! conformance suite and the benchmarks run against it.

use crate::handler::{ConnCtx, Handler, Message};

/// The echo route's handler.
pub struct Echo;

impl Handler for Echo {
    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        ctx.send(msg);
    }
}
