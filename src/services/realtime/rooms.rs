//! The room table: which rooms exist, their names and counters. Rooms are
//! created at start, over the admin API or (when allowed) by a `join`; the
//! table is read on joins and admin calls only, never per message (a
//! connection keeps the rooms it is in). Membership itself is the hub's
//! channel table: one channel per room incarnation, so a room deleted and
//! made anew under the same id never shares members or counts with the old.
//! Rooms a join made are reclaimed once empty for a grace period; the table
//! lock orders that against joins, so no join ever lands in a reclaimed room.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Longest room id, in bytes.
pub const MAX_ROOM_ID: usize = 128;

/// One incarnation of a room: deleting a room and creating one with the same
/// id makes a new `Room`, with its own channel and counters.
#[derive(Debug)]
pub struct Room {
    pub id: Arc<str>,
    pub name: String,
    pub description: String,
    pub created_at: SystemTime,
    /// Which room of this table it is: unique for the life of the table.
    pub incarnation: u64,
    /// The hub channel its members are subscribed to (id and incarnation).
    pub channel: Arc<str>,
    /// A join made it (`WS_AUTO_CREATE_ROOMS`): it goes once empty a while.
    pub auto: bool,
    /// In the table still (false once deleted or reclaimed).
    live: AtomicBool,
    /// Messages published to it.
    messages: AtomicU64,
    /// Connections in it: taken under the table's read lock, so a reclaim
    /// (under its write lock) that sees 0 sees a room nobody holds.
    connections: AtomicUsize,
    /// Users in it (a user with several connections counts once); kept by
    /// the users' presence shards.
    users: AtomicUsize,
    /// For a room a join made: when a sweep first found it empty (its clock,
    /// in ms, never 0), or 0 when it has not or a join came since.
    empty_since: AtomicU64,
}

impl Room {
    fn new(id: &str, name: &str, description: &str, incarnation: u64, auto: bool) -> Room {
        Room {
            id: Arc::from(id),
            name: if name.is_empty() { id } else { name }.to_owned(),
            description: description.to_owned(),
            created_at: SystemTime::now(),
            incarnation,
            channel: Arc::from(format!("rt:room:{id}#{incarnation}")),
            auto,
            live: AtomicBool::new(true),
            messages: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
            empty_since: AtomicU64::new(0),
        }
    }

    /// Whether the room is still in the table: a connection that holds a
    /// room no longer live holds a deleted one.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
    pub fn count_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }
    /// A connection that [entered](RoomTable::enter) the room left it.
    pub(super) fn connection_left(&self) {
        bump(&self.connections, false);
    }
    /// A user's first connection entered (`true`), or its last one left.
    pub(super) fn count_user(&self, entered: bool) {
        bump(&self.users, entered);
    }
    /// Counts a connection in; only under the table's read lock.
    fn connection_entered(&self) {
        bump(&self.connections, true);
        self.empty_since.store(0, Ordering::Release);
    }
}

fn bump(counter: &AtomicUsize, up: bool) {
    if up {
        counter.fetch_add(1, Ordering::AcqRel);
    } else {
        // Never below zero, whatever order the shards report in.
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Why a room could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("room {0:?} exists already")]
    Exists(String),
    #[error("the server holds {0} rooms, its limit (WS_MAX_ROOMS)")]
    Limit(usize),
    #[error(
        "a join may create a room only while fewer than {0} exist \
         (WS_MAX_ROOMS less WS_ADMIN_ROOM_RESERVE)"
    )]
    AutoLimit(usize),
    #[error("a room id is 1 to 128 bytes without control characters or spaces")]
    BadId,
}

impl RoomError {
    /// The machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::Exists(_) => "room_exists",
            RoomError::Limit(_) | RoomError::AutoLimit(_) => "room_limit",
            RoomError::BadId => "bad_room_id",
        }
    }
}

/// Every room, by id.
pub struct RoomTable {
    rooms: RwLock<BTreeMap<Arc<str>, Arc<Room>>>,
    max_rooms: usize,
    /// A join may create a room only while fewer rooms than this exist:
    /// the rest of `max_rooms` is the admin API's.
    auto_limit: usize,
    /// The incarnation the next room gets.
    next_incarnation: AtomicU64,
}

impl RoomTable {
    /// A table of at most `max_rooms` rooms, of which joins may not take the
    /// last `admin_reserve`.
    pub fn new(max_rooms: usize, admin_reserve: usize) -> RoomTable {
        RoomTable {
            rooms: RwLock::default(),
            max_rooms,
            auto_limit: max_rooms.saturating_sub(admin_reserve),
            next_incarnation: AtomicU64::new(1),
        }
    }

    /// Whether `id` may name a room.
    pub fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= MAX_ROOM_ID
            && !id.chars().any(|c| c.is_control() || c.is_whitespace())
    }

    /// A room of the admin API or `WS_DEFAULT_ROOMS`: it stays until deleted.
    pub fn create(&self, id: &str, name: &str, description: &str) -> Result<Arc<Room>, RoomError> {
        let mut rooms = self.write();
        self.insert(&mut rooms, id, name, description, false)
    }

    fn insert(
        &self,
        rooms: &mut BTreeMap<Arc<str>, Arc<Room>>,
        id: &str,
        name: &str,
        description: &str,
        auto: bool,
    ) -> Result<Arc<Room>, RoomError> {
        if !Self::valid_id(id) {
            return Err(RoomError::BadId);
        }
        if rooms.contains_key(id) {
            return Err(RoomError::Exists(id.to_owned()));
        }
        if auto && rooms.len() >= self.auto_limit {
            return Err(RoomError::AutoLimit(self.auto_limit));
        }
        if rooms.len() >= self.max_rooms {
            return Err(RoomError::Limit(self.max_rooms));
        }
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
        let room = Arc::new(Room::new(id, name, description, incarnation, auto));
        rooms.insert(room.id.clone(), room.clone());
        Ok(room)
    }

    /// The room `id`, or, with `create`, a new empty one made as a join
    /// would (when the limits allow): the check before an upgrade.
    pub fn find_or_create(&self, id: &str, create: bool) -> Result<Option<Arc<Room>>, RoomError> {
        self.find(id, create, false)
    }

    /// Counts a connection into room `id`, made first when `create` allows
    /// (as [`find_or_create`](RoomTable::find_or_create)); the caller
    /// subscribes it and calls [`Room::connection_left`] when it leaves.
    pub fn enter(&self, id: &str, create: bool) -> Result<Option<Arc<Room>>, RoomError> {
        self.find(id, create, true)
    }

    fn find(&self, id: &str, create: bool, enter: bool) -> Result<Option<Arc<Room>>, RoomError> {
        {
            let rooms = self.read();
            if let Some(room) = rooms.get(id) {
                if enter {
                    room.connection_entered();
                }
                return Ok(Some(room.clone()));
            }
        }
        if !create {
            return Ok(None);
        }
        let mut rooms = self.write();
        let room = match rooms.get(id) {
            // Another connection made it meanwhile.
            Some(room) => room.clone(),
            None => {
                if rooms.len() >= self.auto_limit {
                    Self::give_way(&mut rooms);
                }
                self.insert(&mut rooms, id, id, "", true)?
            }
        };
        if enter {
            room.connection_entered();
        }
        Ok(Some(room))
    }

    /// Joins have made all the rooms they may: the empty room a join made
    /// that has been empty the longest (as the sweeps saw it; the oldest of
    /// those they have not seen) goes now, grace or not, so empty rooms
    /// never keep others from making one. Under the write lock.
    fn give_way(rooms: &mut BTreeMap<Arc<str>, Arc<Room>>) {
        let oldest = rooms
            .values()
            .filter(|room| room.auto && room.connections() == 0)
            .min_by_key(|room| {
                let since = room.empty_since.load(Ordering::Acquire);
                (since == 0, since, room.incarnation)
            })
            .cloned();
        if let Some(room) = oldest {
            rooms.remove(&room.id);
            room.live.store(false, Ordering::Release);
            tracing::debug!(room = %room.id, "empty room made by a join reclaimed for a new one");
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.read().get(id).cloned()
    }

    /// Takes room `id` out of the table; it is no longer live.
    pub fn remove(&self, id: &str) -> Option<Arc<Room>> {
        let room = self.write().remove(id)?;
        room.live.store(false, Ordering::Release);
        Some(room)
    }

    /// One sweep at `now_ms` (a clock of the caller's, never 0): marks the
    /// rooms joins made that are empty and not marked yet, and takes out
    /// those marked at least `grace_ms` ago and empty ever since. Returns
    /// the rooms taken out.
    pub fn reclaim_empty(&self, grace_ms: u64, now_ms: u64) -> Vec<Arc<Room>> {
        let due = |room: &Room| {
            let since = room.empty_since.load(Ordering::Acquire);
            room.auto
                && room.connections() == 0
                && (since == 0 || now_ms.saturating_sub(since) >= grace_ms)
        };
        // Most sweeps find nothing to do: they take the read lock only.
        if !self.read().values().any(|room| due(room)) {
            return Vec::new();
        }
        // Joins count themselves in under the read lock: while this holds
        // the write lock, a room that counts no connection has none.
        let mut rooms = self.write();
        let mut reclaimed = Vec::new();
        rooms.retain(|_, room| {
            if !due(room) {
                return true;
            }
            if room.empty_since.load(Ordering::Acquire) == 0 {
                room.empty_since.store(now_ms, Ordering::Release);
                return true;
            }
            room.live.store(false, Ordering::Release);
            reclaimed.push(room.clone());
            false
        });
        reclaimed
    }

    /// Every room, in id order.
    pub fn list(&self) -> Vec<Arc<Room>> {
        self.read().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Arc<str>, Arc<Room>>> {
        self.rooms.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Arc<str>, Arc<Room>>> {
        self.rooms.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove_and_limits() {
        let table = RoomTable::new(2, 0);
        let a = table.create("a", "", "first").unwrap();
        assert_eq!((a.name.as_str(), &*a.channel), ("a", "rt:room:a#1"));
        assert_eq!(
            table.create("a", "A", "").unwrap_err(),
            RoomError::Exists("a".into())
        );
        assert_eq!(table.create("", "", "").unwrap_err(), RoomError::BadId);
        assert_eq!(table.create("a b", "", "").unwrap_err(), RoomError::BadId);
        assert!(table.enter("b", true).unwrap().is_some());
        assert_eq!(
            table.find_or_create("c", true).unwrap_err(),
            RoomError::AutoLimit(2)
        );
        assert_eq!(table.create("c", "", "").unwrap_err(), RoomError::Limit(2));
        assert!(table.find_or_create("c", false).unwrap().is_none());
        let ids: Vec<_> = table.list().iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [Arc::from("a"), Arc::from("b")]);
        assert!(table.remove("a").is_some());
        assert_eq!(table.count(), 1);
        assert!(table.get("a").is_none());
        assert!(!a.is_live());
    }

    #[test]
    fn joins_never_take_the_admin_reserve() {
        let table = RoomTable::new(4, 2);
        table.create("default", "", "").unwrap();
        assert!(table.enter("made-by-join", true).unwrap().unwrap().auto);
        assert_eq!(
            table.enter("one-too-many", true).unwrap_err(),
            RoomError::AutoLimit(2)
        );
        assert_eq!(RoomError::AutoLimit(2).code(), "room_limit");
        assert!(!table.create("admin-1", "", "").unwrap().auto);
        table.create("admin-2", "", "").unwrap();
        assert_eq!(
            table.create("admin-3", "", "").unwrap_err(),
            RoomError::Limit(4)
        );
    }

    #[test]
    fn a_room_made_anew_is_another_incarnation_with_its_own_channel() {
        let table = RoomTable::new(10, 0);
        let old = table.create("r", "", "").unwrap();
        table.remove("r");
        let new = table.create("r", "", "").unwrap();
        assert_ne!(old.incarnation, new.incarnation);
        assert_ne!(old.channel, new.channel);
        assert!(new.is_live() && !old.is_live());
    }

    #[test]
    fn empty_rooms_joins_made_go_after_the_grace_and_the_others_stay() {
        let table = RoomTable::new(10, 0);
        table.create("kept", "", "").unwrap();
        let busy = table.enter("busy", true).unwrap().unwrap();
        let idle = table.enter("idle", true).unwrap().unwrap();
        idle.connection_left();
        assert!(
            table.reclaim_empty(1000, 1).is_empty(),
            "marked, not yet due"
        );
        assert!(table.reclaim_empty(1000, 999).is_empty());
        // A join within the grace starts it again.
        table
            .enter("idle", false)
            .unwrap()
            .unwrap()
            .connection_left();
        assert!(table.reclaim_empty(1000, 1500).is_empty(), "marked anew");
        assert!(table.reclaim_empty(1000, 2499).is_empty());
        let gone = table.reclaim_empty(1000, 2500);
        assert_eq!(gone.len(), 1);
        assert!(Arc::ptr_eq(&gone[0], &idle) && !idle.is_live());
        assert!(table.get("idle").is_none());
        assert!(busy.is_live() && table.get("kept").is_some());
        // The next join of the id makes another incarnation.
        let again = table.enter("idle", true).unwrap().unwrap();
        assert_ne!(again.incarnation, idle.incarnation);
    }

    #[test]
    fn when_joins_need_room_the_room_empty_the_longest_gives_way_at_once() {
        let table = RoomTable::new(4, 0);
        let busy = table.enter("busy", true).unwrap().unwrap();
        for id in ["a", "b", "c"] {
            table.enter(id, true).unwrap().unwrap().connection_left();
        }
        table.reclaim_empty(60_000, 5); // the sweep saw a, b and c empty
        table.enter("b", false).unwrap().unwrap().connection_left(); // b emptied again since
        let d = table.enter("d", true).unwrap().unwrap();
        let ids: Vec<_> = table.list().iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["b", "busy", "c", "d"], "a went: empty the longest");
        d.connection_left();
        // c (seen empty by the sweep), then b and d (not seen: the older
        // first) give way.
        table.enter("e", true).unwrap().unwrap();
        assert!(table.get("c").is_none());
        table.enter("f", true).unwrap().unwrap();
        assert!(table.get("b").is_none());
        table.enter("g", true).unwrap().unwrap();
        assert!(table.get("d").is_none());
        assert_eq!(
            table.enter("h", true).unwrap_err(),
            RoomError::AutoLimit(4),
            "rooms in use never give way"
        );
        assert!(busy.is_live());
    }

    #[test]
    fn counters_never_go_below_zero() {
        let room = Room::new("r", "", "", 1, false);
        room.count_user(false);
        room.count_user(true);
        room.connection_entered();
        room.connection_entered();
        room.connection_left();
        room.connection_left();
        room.connection_left();
        assert_eq!((room.users(), room.connections()), (1, 0));
    }
}
