//! `/echo`: sends every text and binary message back unchanged. The
//! conformance suite and the benchmarks run against it.

use crate::handler::{Accept, ConnCtx, Handler, Message, Reject, UpgradeRequest};
use crate::protocol::deflate::DeflateMode;

/// The echo route's handler; `compression` is the route's
/// permessage-deflate mode.
pub struct Echo {
    pub compression: DeflateMode,
}

impl Handler for Echo {
    fn on_upgrade(&self, _req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        Ok(Accept::new().compression(self.compression))
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        ctx.send(msg);
    }
}
