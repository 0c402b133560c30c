//! Every charge point the gateway knows, connected or not: its [`Station`] facts and, while
//! connected, the connection that speaks for it now. Striped locks keyed by a hash of the id,
//! held for a map operation at a time and never across I/O, so shards meet only when they
//! touch the same stripe. Attaching a connection returns the one it replaces, which the caller
//! closes: "one connection per charge point" is decided here, atomically.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use crate::hub::ConnId;

use super::errors::Version;
use super::station::Station;

/// Stripes of the table; a power of two above the shard counts we expect.
const STRIPES: usize = 64;

/// The connection that speaks for a charge point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub conn: ConnId,
    pub version: Version,
}

struct Entry {
    station: Station,
    link: Option<Link>,
}

type Stripe = HashMap<Arc<str>, Entry>;

/// The table is full and `id` is not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gateway knows {0} charge points already (OCPP_MAX_CHARGE_POINTS)")]
pub struct Full(pub usize);

/// A page of charge points, in id order.
pub struct Page {
    pub stations: Vec<Value>,
    /// Charge points that match the filter, all pages.
    pub total: usize,
    /// The id to ask for the next page after, when there is one.
    pub next: Option<String>,
}

/// The charge-point table.
pub struct Registry {
    stripes: Box<[Mutex<Stripe>]>,
    max: usize,
    known: AtomicUsize,
    /// Connected charge points by version (`Version as usize`).
    connected: [AtomicUsize; 2],
}

impl Registry {
    /// A table of at most `max` charge points.
    pub fn new(max: usize) -> Registry {
        Registry {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            max,
            known: AtomicUsize::new(0),
            connected: Default::default(),
        }
    }

    fn stripe(&self, id: &str) -> MutexGuard<'_, Stripe> {
        let mut hasher = std::hash::DefaultHasher::new();
        id.hash(&mut hasher);
        let index = hasher.finish() as usize % STRIPES;
        // A panic while a stripe is held leaves a consistent map (no partial updates).
        self.stripes[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `id` may connect as far as the table's size goes (it is known, or there is room).
    pub fn admits(&self, id: &str) -> Result<(), Full> {
        if self.known.load(Ordering::Relaxed) < self.max || self.stripe(id).contains_key(id) {
            Ok(())
        } else {
            Err(Full(self.max))
        }
    }

    /// `link` now speaks for `id` (creating its entry, room permitting); returns the
    /// connection it replaces, which the caller closes.
    pub fn attach(
        &self,
        id: &Arc<str>,
        link: Link,
        remote_addr: Option<SocketAddr>,
        now: SystemTime,
    ) -> Result<Option<Link>, Full> {
        let mut stripe = self.stripe(id);
        if !stripe.contains_key(id) {
            if self.known.fetch_add(1, Ordering::Relaxed) >= self.max {
                self.known.fetch_sub(1, Ordering::Relaxed);
                return Err(Full(self.max));
            }
            stripe.insert(
                id.clone(),
                Entry {
                    station: Station::new(id),
                    link: None,
                },
            );
        }
        let entry = stripe.get_mut(id).expect("inserted above");
        entry.station.connected(link.version, remote_addr, now);
        let replaced = entry.link.replace(link);
        self.count(Some(link), replaced);
        Ok(replaced)
    }

    /// Connection `conn` of `id` closed: the charge point is disconnected unless a newer
    /// connection speaks for it already. True when `conn` was the current one.
    pub fn detach(&self, id: &str, conn: ConnId, now: SystemTime) -> bool {
        let mut stripe = self.stripe(id);
        let Some(entry) = stripe.get_mut(id) else {
            return false;
        };
        match entry.link {
            Some(link) if link.conn == conn => {
                entry.link = None;
                entry.station.disconnected(now);
                self.count(None, Some(link));
                true
            }
            _ => false,
        }
    }

    fn count(&self, added: Option<Link>, removed: Option<Link>) {
        if let Some(link) = added {
            self.connected[link.version as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(link) = removed {
            self.connected[link.version as usize].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The connection that speaks for `id` now.
    pub fn link(&self, id: &str) -> Option<Link> {
        self.stripe(id).get(id)?.link
    }

    /// Runs `f` on `id`'s facts, if the charge point is known.
    pub fn update<T>(&self, id: &str, f: impl FnOnce(&mut Station) -> T) -> Option<T> {
        self.stripe(id)
            .get_mut(id)
            .map(|entry| f(&mut entry.station))
    }

    /// `id`'s facts as JSON.
    pub fn station_json(&self, id: &str) -> Option<Value> {
        self.stripe(id).get(id).map(|entry| entry.station.to_json())
    }

    /// Connected charge points speaking `version`.
    pub fn connected(&self, version: Version) -> usize {
        self.connected[version as usize].load(Ordering::Relaxed)
    }

    /// Charge points known, connected or not.
    pub fn known(&self) -> usize {
        self.known.load(Ordering::Relaxed)
    }

    /// Up to `limit` charge points with ids after `after`, in id order; `connected` keeps only
    /// those connected (`Some(true)`) or not (`Some(false)`).
    pub fn page(&self, after: Option<&str>, limit: usize, connected: Option<bool>) -> Page {
        let mut ids: Vec<Arc<str>> = Vec::new();
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock().unwrap_or_else(|p| p.into_inner());
            ids.extend(
                stripe
                    .iter()
                    .filter(|(_, e)| connected.map_or(true, |want| e.link.is_some() == want))
                    .map(|(id, _)| id.clone()),
            );
        }
        let total = ids.len();
        ids.retain(|id| after.map_or(true, |after| &**id > after));
        ids.sort_unstable();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next = more.then(|| ids.last().map(|id| id.to_string())).flatten();
        let stations = ids.iter().filter_map(|id| self.station_json(id)).collect();
        Page {
            stations,
            total,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(n: u64, version: Version) -> Link {
        Link {
            conn: ConnId::from_u64(n << 32 | 1),
            version,
        }
    }

    #[test]
    fn a_newer_connection_replaces_the_older() {
        let registry = Registry::new(10);
        let id: Arc<str> = Arc::from("CP1");
        let now = SystemTime::now();
        let (a, b) = (link(1, Version::V16), link(2, Version::V201));
        assert_eq!(registry.attach(&id, a, None, now), Ok(None));
        assert_eq!(registry.connected(Version::V16), 1);
        assert_eq!(registry.attach(&id, b, None, now), Ok(Some(a)));
        assert_eq!(registry.connected(Version::V16), 0);
        assert_eq!(registry.connected(Version::V201), 1);
        assert!(
            !registry.detach("CP1", a.conn, now),
            "the replaced one leaves nothing"
        );
        assert_eq!(registry.link("CP1"), Some(b));
        assert!(registry.detach("CP1", b.conn, now));
        assert_eq!(registry.link("CP1"), None);
        assert_eq!(registry.connected(Version::V201), 0);
        assert_eq!(registry.known(), 1, "remembered while disconnected");
        assert_eq!(registry.station_json("CP1").unwrap()["connected"], false);
    }

    #[test]
    fn the_table_is_bounded_and_pages_in_id_order() {
        let registry = Registry::new(3);
        let now = SystemTime::now();
        for (n, id) in ["b", "a", "c"].into_iter().enumerate() {
            registry
                .attach(&Arc::from(id), link(n as u64, Version::V16), None, now)
                .unwrap();
        }
        assert_eq!(registry.admits("d"), Err(Full(3)));
        assert_eq!(registry.admits("a"), Ok(()));
        assert_eq!(
            registry.attach(&Arc::from("d"), link(9, Version::V16), None, now),
            Err(Full(3))
        );
        registry.detach("b", link(0, Version::V16).conn, now);
        let page = registry.page(None, 2, None);
        let ids: Vec<&str> = page
            .stations
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            (ids, page.total, page.next.as_deref()),
            (vec!["a", "b"], 3, Some("b"))
        );
        let rest = registry.page(Some("b"), 2, None);
        assert_eq!((rest.stations.len(), rest.next), (1, None));
        assert_eq!(registry.page(None, 10, Some(true)).total, 2);
        assert_eq!(registry.page(None, 10, Some(false)).total, 1);
    }
}
