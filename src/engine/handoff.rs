//! Handing plain-HTTP connections from a shard to the control plane: the
//! gate that caps how many the control plane holds, the ticket that keeps a
//! connection's place under that cap, and the socket with the bytes a shard
//! already read. The engine never answers these requests itself.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// A plain-HTTP connection leaving its shard: the socket (a process
/// descriptor, whatever the driver used) and every byte read from it so far
/// (the first request head and whatever followed it).
pub(crate) struct PlainHttp {
    pub(crate) socket: OwnedFd,
    pub(crate) bytes: Vec<u8>,
    pub(crate) ticket: Ticket,
}

/// One connection's place under the control plane's connection cap, given
/// back when dropped.
pub(crate) struct Ticket {
    open: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where shards send plain-HTTP connections. Cheap to clone; usable from any
/// thread without blocking.
#[derive(Clone)]
pub(crate) struct HttpGate {
    tx: UnboundedSender<PlainHttp>,
    open: Arc<AtomicUsize>,
    max: usize,
}

impl HttpGate {
    /// A gate admitting at most `max` connections at once, and the receiving end.
    pub(crate) fn new(max: usize) -> (Self, UnboundedReceiver<PlainHttp>) {
        let (tx, rx) = unbounded_channel();
        let gate = Self {
            tx,
            open: Arc::new(AtomicUsize::new(0)),
            max,
        };
        (gate, rx)
    }

    /// A place for one more connection, unless `max` are held already.
    pub(crate) fn admit(&self) -> Option<Ticket> {
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket {
                open: self.open.clone(),
            })
    }

    /// Connections the control plane holds now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Hands a connection over. When the control plane has stopped the
    /// connection is dropped (its socket closes).
    pub(crate) fn hand_off(&self, conn: PlainHttp) {
        if self.tx.send(conn).is_err() {
            tracing::debug!("control plane stopped: plain HTTP connection dropped");
        }
    }
}
