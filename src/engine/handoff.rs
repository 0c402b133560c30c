//! Handing plain-HTTP connections from a shard to the control plane: the
//! gate that caps how many the control plane holds (a budget for the public
//! port and one for the internal admin address, so neither can starve the
//! other), the ticket that keeps a connection's place under its budget, and
//! the socket with the bytes a shard already read. The engine never answers
//! these requests itself.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// One connection's place under a budget, given back when dropped.
pub(crate) struct Ticket {
    open: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many connections one entrance may hold at once, how many it holds,
/// and how many it turned away.
#[derive(Clone)]
pub(crate) struct Budget {
    open: Arc<AtomicUsize>,
    refused: Arc<AtomicU64>,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
            max,
        }
    }

    /// A place for one more connection, unless `max` are held already
    /// (then the refusal is counted).
    pub(crate) fn admit(&self) -> Option<Ticket> {
        let admitted = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Ticket {
            open: self.open.clone(),
        })
    }

    /// Connections held now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections turned away for want of a place, since the start.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Where shards send plain-HTTP connections, and the budgets of both
/// entrances. Cheap to clone; usable from any thread without blocking.
#[derive(Clone)]
pub(crate) struct HttpGate {
    tx: UnboundedSender<PlainHttp>,
    /// Connections to the public port (the ones shards hand over).
    pub(crate) public: Budget,
    /// Connections to the internal admin address (`RINGGATE_ADMIN_LISTEN`).
    pub(crate) internal: Budget,
}

impl HttpGate {
    /// A gate admitting at most `public` connections from the shards and
    /// `internal` ones from the admin address at once, and the receiving end.
    pub(crate) fn new(public: usize, internal: usize) -> (Self, UnboundedReceiver<PlainHttp>) {
        let (tx, rx) = unbounded_channel();
        let gate = Self {
            tx,
            public: Budget::new(public),
            internal: Budget::new(internal),
        };
        (gate, rx)
    }

    /// A place for one more public connection (what a shard asks before it
    /// hands one over).
    pub(crate) fn admit(&self) -> Option<Ticket> {
        self.public.admit()
    }

    /// Connections the control plane holds now, both entrances.
    pub(crate) fn open(&self) -> usize {
        self.public.open() + self.internal.open()
    }

    /// Hands a connection over. When the control plane has stopped the
    /// connection is dropped (its socket closes).
    pub(crate) fn hand_off(&self, conn: PlainHttp) {
        if self.tx.send(conn).is_err() {
            tracing::debug!("control plane stopped: plain HTTP connection dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entrance_has_its_own_budget() {
        let (gate, _rx) = HttpGate::new(1, 1);
        let public = gate.admit().expect("a public place");
        assert!(gate.admit().is_none());
        let internal = gate.internal.admit().expect("the internal budget is apart");
        assert!(gate.internal.admit().is_none());
        assert_eq!(
            (gate.open(), gate.public.refused(), gate.internal.refused()),
            (2, 1, 1)
        );
        drop(public);
        drop(internal);
        assert_eq!(gate.open(), 0);
        assert!(gate.admit().is_some());
    }
}
