//! Every charge point the gateway knows, connected or not: its [`Station`] facts and, while
//! connected, the connection that speaks for it now. Striped locks keyed by a hash of the id,
//! held for a map operation at a time and never across I/O, so shards meet only when they
//! touch the same stripe. Attaching a connection returns the one it replaces, which the caller
//! closes: "one connection per charge point" is decided here, atomically.
//!
//! The table is bounded: when it is full, a new charge point takes the place of a disconnected
//! one, those that never booted first, then the one disconnected longest ([`Registry::attach`]).
//! Disconnected entries wait in that order in a queue of their own, so an eviction costs a
//! queue pop and a map removal (`O(log n)`), never a scan of the table.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use crate::hub::ConnId;

use super::errors::Version;
use super::station::Station;

/// Stripes of the table; a power of two above the shard counts we expect.
const STRIPES: usize = 64;

/// Tries at making room for a new charge point before it is refused as [`Full`]: another
/// newcomer may take the room one eviction made.
const EVICTION_TRIES: usize = 4;

/// The connection that speaks for a charge point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub conn: ConnId,
    pub version: Version,
}

/// A disconnected entry's place in the eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    booted: bool,
    /// The order of its disconnect among all of them.
    turn: u64,
}

struct Entry {
    station: Station,
    link: Option<Link>,
    /// Set while disconnected.
    parked: Option<Place>,
}

type Stripe = HashMap<Arc<str>, Entry>;

/// Disconnected charge points in eviction order: by the turn of their disconnect, those that
/// never booted apart from the others.
#[derive(Default)]
struct Parked {
    turns: u64,
    never_booted: BTreeMap<u64, Arc<str>>,
    booted: BTreeMap<u64, Arc<str>>,
}

impl Parked {
    fn queue(&mut self, booted: bool) -> &mut BTreeMap<u64, Arc<str>> {
        if booted {
            &mut self.booted
        } else {
            &mut self.never_booted
        }
    }

    fn park(&mut self, id: &Arc<str>, booted: bool) -> Place {
        self.turns += 1;
        let place = Place {
            booted,
            turn: self.turns,
        };
        self.queue(booted).insert(place.turn, id.clone());
        place
    }

    fn unpark(&mut self, place: Place) {
        self.queue(place.booted).remove(&place.turn);
    }

    /// The next to evict, taken out of the queue.
    fn pop(&mut self) -> Option<(Place, Arc<str>)> {
        let (booted, (turn, id)) = match self.never_booted.pop_first() {
            Some(first) => (false, first),
            None => (true, self.booted.pop_first()?),
        };
        Some((Place { booted, turn }, id))
    }

    fn is_empty(&self) -> bool {
        self.never_booted.is_empty() && self.booted.is_empty()
    }
}

/// The table is full of connected charge points and `id` is not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gateway knows {0} charge points already, all connected (OCPP_MAX_CHARGE_POINTS)")]
pub struct Full(pub usize);

/// Why [`Registry::remove`] kept an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Kept {
    #[error("the gateway knows no such charge point")]
    Unknown,
    #[error("the charge point is connected")]
    Connected(Link),
}

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
    /// Taken after a stripe, never before one.
    parked: Mutex<Parked>,
    evicted: AtomicU64,
}

impl Registry {
    /// A table of at most `max` charge points.
    pub fn new(max: usize) -> Registry {
        Registry {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            max,
            known: AtomicUsize::new(0),
            connected: Default::default(),
            parked: Mutex::default(),
            evicted: AtomicU64::new(0),
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

    fn parked(&self) -> MutexGuard<'_, Parked> {
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `id` may connect as far as the table's size goes: it is known, there is room, or
    /// a disconnected charge point can make room.
    pub fn admits(&self, id: &str) -> Result<(), Full> {
        let room = self.known.load(Ordering::Relaxed) < self.max;
        if room || self.stripe(id).contains_key(id) || !self.parked().is_empty() {
            Ok(())
        } else {
            Err(Full(self.max))
        }
    }

    /// `link` now speaks for `id` (creating its entry, evicting a disconnected charge point when
    /// the table is full); returns the connection it replaces, which the caller closes.
    pub fn attach(
        &self,
        id: &Arc<str>,
        link: Link,
        remote_addr: Option<SocketAddr>,
        now: SystemTime,
    ) -> Result<Option<Link>, Full> {
        for _ in 0..EVICTION_TRIES {
            let mut stripe = self.stripe(id);
            let known = stripe.contains_key(id);
            if !known && self.known.fetch_add(1, Ordering::Relaxed) >= self.max {
                self.known.fetch_sub(1, Ordering::Relaxed);
                // Evicting takes another stripe's lock: never while holding this one.
                drop(stripe);
                if !self.evict_one() {
                    return Err(Full(self.max));
                }
                continue;
            }
            let entry = stripe.entry(id.clone()).or_insert_with(|| Entry {
                station: Station::new(id),
                link: None,
                parked: None,
            });
            if let Some(place) = entry.parked.take() {
                self.parked().unpark(place);
            }
            entry.station.connected(link.version, remote_addr, now);
            let replaced = entry.link.replace(link);
            self.count(Some(link), replaced);
            return Ok(replaced);
        }
        Err(Full(self.max))
    }

    /// Removes the next disconnected charge point in eviction order; false when there is none.
    fn evict_one(&self) -> bool {
        loop {
            let Some((place, id)) = self.parked().pop() else {
                return false;
            };
            let mut stripe = self.stripe(&id);
            // It may have reconnected (and left again, to a later place) since it was popped.
            if matches!(stripe.get(&id), Some(entry) if entry.parked == Some(place)) {
                stripe.remove(&id);
                self.known.fetch_sub(1, Ordering::Relaxed);
                self.evicted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(charge_point = %id, booted = place.booted, "evicted from the full charge-point table");
                return true;
            }
        }
    }

    /// Connection `conn` of `id` closed: the charge point is disconnected unless a newer
    /// connection speaks for it already. True when `conn` was the current one.
    pub fn detach(&self, id: &Arc<str>, conn: ConnId, now: SystemTime) -> bool {
        let mut stripe = self.stripe(id);
        let Some(entry) = stripe.get_mut(id) else {
            return false;
        };
        match entry.link {
            Some(link) if link.conn == conn => {
                entry.link = None;
                entry.station.disconnected(now);
                entry.parked = Some(self.parked().park(id, entry.station.has_booted()));
                self.count(None, Some(link));
                true
            }
            _ => false,
        }
    }

    /// Forgets `id`, if it is disconnected or `closing` is the connection that speaks for it
    /// (the caller closes that one).
    pub fn remove(&self, id: &str, closing: Option<ConnId>) -> Result<(), Kept> {
        let mut stripe = self.stripe(id);
        let entry = stripe.get(id).ok_or(Kept::Unknown)?;
        if let Some(link) = entry.link.filter(|link| Some(link.conn) != closing) {
            return Err(Kept::Connected(link));
        }
        let entry = stripe.remove(id).ok_or(Kept::Unknown)?;
        if let Some(place) = entry.parked {
            self.parked().unpark(place);
        }
        self.count(None, entry.link);
        self.known.fetch_sub(1, Ordering::Relaxed);
        Ok(())
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

    /// Disconnected charge points evicted to make room for new ones, since the start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
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
    use super::super::central::{BootStatus, Update};
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
            !registry.detach(&id, a.conn, now),
            "the replaced one leaves nothing"
        );
        assert_eq!(registry.link("CP1"), Some(b));
        assert!(registry.detach(&id, b.conn, now));
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
        registry.detach(&Arc::from("b"), link(0, Version::V16).conn, now);
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

    /// Connects `id` on connection `n`, boots it when asked, and disconnects it.
    fn visit(registry: &Registry, id: &str, n: u64, boot: bool) {
        let id: Arc<str> = Arc::from(id);
        let now = SystemTime::now();
        let link = link(n, Version::V16);
        registry.attach(&id, link, None, now).unwrap();
        if boot {
            let update = Update::Boot {
                vendor: "V".into(),
                model: "M".into(),
                firmware: None,
                serial: None,
                status: BootStatus::Accepted,
            };
            registry.update(&id, |station| station.apply(&update, now));
        }
        assert!(registry.detach(&id, link.conn, now));
    }

    fn ids(registry: &Registry) -> Vec<String> {
        let page = registry.page(None, 100, None);
        let ids = page.stations.iter().map(|s| s["id"].as_str().unwrap());
        ids.map(str::to_owned).collect()
    }

    #[test]
    fn a_full_table_evicts_the_never_booted_first_then_the_longest_gone() {
        let registry = Registry::new(3);
        visit(&registry, "booted-early", 1, true);
        visit(&registry, "idle-1", 2, false);
        visit(&registry, "idle-2", 3, false);
        assert_eq!(registry.admits("new-1"), Ok(()), "room can be made");
        let now = SystemTime::now();
        for (n, (newcomer, evicted)) in [
            ("new-1", "idle-1"),
            ("new-2", "idle-2"),
            ("new-3", "booted-early"),
        ]
        .into_iter()
        .enumerate()
        {
            let link = link(10 + n as u64, Version::V16);
            assert_eq!(
                registry.attach(&Arc::from(newcomer), link, None, now),
                Ok(None)
            );
            assert!(registry.station_json(evicted).is_none(), "{evicted}");
            assert_eq!(registry.evicted(), n as u64 + 1);
        }
        assert_eq!(ids(&registry), ["new-1", "new-2", "new-3"]);
        assert_eq!(registry.known(), 3);
        // All connected: nobody to evict.
        assert_eq!(registry.admits("new-4"), Err(Full(3)));
        let link = link(20, Version::V16);
        assert_eq!(
            registry.attach(&Arc::from("new-4"), link, None, now),
            Err(Full(3))
        );
        assert_eq!(registry.connected(Version::V16), 3);
    }

    #[test]
    fn a_reconnect_takes_a_charge_point_out_of_the_eviction_order() {
        let registry = Registry::new(2);
        visit(&registry, "a", 1, false);
        visit(&registry, "b", 2, false);
        // "a" comes back and leaves again: now "b" has been gone longest.
        visit(&registry, "a", 3, false);
        let now = SystemTime::now();
        let c = link(4, Version::V201);
        assert_eq!(registry.attach(&Arc::from("c"), c, None, now), Ok(None));
        assert_eq!(ids(&registry), ["a", "c"]);
        // "a" connected is not evictable; "c" leaves and is.
        registry
            .attach(&Arc::from("a"), link(5, Version::V16), None, now)
            .unwrap();
        assert!(registry.detach(&Arc::from("c"), c.conn, now));
        registry
            .attach(&Arc::from("d"), link(6, Version::V16), None, now)
            .unwrap();
        assert_eq!(ids(&registry), ["a", "d"]);
        assert_eq!(registry.evicted(), 2);
    }

    #[test]
    fn remove_forgets_disconnected_charge_points_and_connected_ones_only_when_closing() {
        let registry = Registry::new(2);
        visit(&registry, "gone", 1, true);
        let now = SystemTime::now();
        let (id, live) = (Arc::from("live"), link(2, Version::V201));
        registry.attach(&id, live, None, now).unwrap();
        assert_eq!(registry.remove("nobody", None), Err(Kept::Unknown));
        assert_eq!(registry.remove("gone", None), Ok(()));
        assert_eq!(registry.remove("gone", None), Err(Kept::Unknown));
        assert_eq!(registry.remove("live", None), Err(Kept::Connected(live)));
        let other = link(3, Version::V201).conn;
        assert_eq!(
            registry.remove("live", Some(other)),
            Err(Kept::Connected(live))
        );
        assert_eq!(registry.remove("live", Some(live.conn)), Ok(()));
        assert_eq!(
            (registry.known(), registry.connected(Version::V201)),
            (0, 0)
        );
        // The closing connection's own detach finds nothing, and a removed one is not evicted.
        assert!(!registry.detach(&id, live.conn, now));
        visit(&registry, "x", 4, false);
        visit(&registry, "y", 5, false);
        assert_eq!(registry.evicted(), 0);
    }

    #[test]
    fn evictions_stay_cheap_when_ids_keep_cycling() {
        // A table full of charge points that left, and as many newcomers cycling through: each
        // connect evicts one. A scan of the table per connect would take minutes here.
        let max = 20_000;
        let registry = Registry::new(max);
        let now = SystemTime::now();
        for n in 0..2 * max as u64 {
            let id: Arc<str> = Arc::from(format!("cp-{n}"));
            let link = link(n, Version::V16);
            registry.attach(&id, link, None, now).unwrap();
            registry.detach(&id, link.conn, now);
        }
        assert_eq!(registry.known(), max);
        assert_eq!(registry.evicted(), max as u64);
        assert!(registry.station_json("cp-0").is_none());
        assert!(registry
            .station_json(&format!("cp-{}", 2 * max - 1))
            .is_some());
    }
}
