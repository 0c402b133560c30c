//! The room table: which rooms exist, their names and counters. Rooms are
//! created at start, over the admin API or (when allowed) by a `join`; the
//! table is read on joins and admin calls only, never per message (a
//! connection keeps the rooms it is in). Membership itself is the hub's
//! channel table: one channel per room incarnation, so a room deleted and
//! made anew under the same id never shares members or counts with the old.

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
    /// In the table still (false once deleted).
    live: AtomicBool,
    /// Messages published to it.
    messages: AtomicU64,
    /// Connections in it.
    connections: AtomicUsize,
    /// Users in it (a user with several connections counts once); kept by
    /// the users' presence shards.
    users: AtomicUsize,
}

impl Room {
    fn new(id: &str, name: &str, description: &str, incarnation: u64) -> Room {
        Room {
            id: Arc::from(id),
            name: if name.is_empty() { id } else { name }.to_owned(),
            description: description.to_owned(),
            created_at: SystemTime::now(),
            incarnation,
            channel: Arc::from(format!("rt:room:{id}#{incarnation}")),
            live: AtomicBool::new(true),
            messages: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
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
        self.connections.load(Ordering::Relaxed)
    }
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }
    /// A connection entered (`true`) or left the room.
    pub(super) fn count_connection(&self, entered: bool) {
        bump(&self.connections, entered);
    }
    /// A user's first connection entered (`true`), or its last one left.
    pub(super) fn count_user(&self, entered: bool) {
        bump(&self.users, entered);
    }
}

fn bump(counter: &AtomicUsize, up: bool) {
    if up {
        counter.fetch_add(1, Ordering::Relaxed);
    } else {
        // Never below zero, whatever order the shards report in.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Why a room could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("room {0:?} exists already")]
    Exists(String),
    #[error("the server holds {0} rooms, its limit (WS_MAX_ROOMS)")]
    Limit(usize),
    #[error("a room id is 1 to 128 bytes without control characters or spaces")]
    BadId,
}

impl RoomError {
    /// The machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::Exists(_) => "room_exists",
            RoomError::Limit(_) => "room_limit",
            RoomError::BadId => "bad_room_id",
        }
    }
}

/// Every room, by id.
pub struct RoomTable {
    rooms: RwLock<BTreeMap<Arc<str>, Arc<Room>>>,
    max_rooms: usize,
    /// The incarnation the next room gets.
    next_incarnation: AtomicU64,
}

impl RoomTable {
    pub fn new(max_rooms: usize) -> RoomTable {
        RoomTable {
            rooms: RwLock::default(),
            max_rooms,
            next_incarnation: AtomicU64::new(1),
        }
    }

    /// Whether `id` may name a room.
    pub fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= MAX_ROOM_ID
            && !id.chars().any(|c| c.is_control() || c.is_whitespace())
    }

    pub fn create(&self, id: &str, name: &str, description: &str) -> Result<Arc<Room>, RoomError> {
        if !Self::valid_id(id) {
            return Err(RoomError::BadId);
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if rooms.contains_key(id) {
            return Err(RoomError::Exists(id.to_owned()));
        }
        if rooms.len() >= self.max_rooms {
            return Err(RoomError::Limit(self.max_rooms));
        }
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
        let room = Arc::new(Room::new(id, name, description, incarnation));
        rooms.insert(room.id.clone(), room.clone());
        Ok(room)
    }

    /// The room `id`, or, with `create`, a new one (when the limit allows).
    pub fn get_or_create(&self, id: &str, create: bool) -> Result<Option<Arc<Room>>, RoomError> {
        match self.get(id) {
            Some(room) => Ok(Some(room)),
            None if create => match self.create(id, id, "") {
                Ok(room) => Ok(Some(room)),
                // Another connection created it meanwhile.
                Err(RoomError::Exists(_)) => Ok(self.get(id)),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.read().get(id).cloned()
    }

    /// Takes room `id` out of the table; it is no longer live.
    pub fn remove(&self, id: &str) -> Option<Arc<Room>> {
        let room = self
            .rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)?;
        room.live.store(false, Ordering::Release);
        Some(room)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove_and_limits() {
        let table = RoomTable::new(2);
        let a = table.create("a", "", "first").unwrap();
        assert_eq!((a.name.as_str(), &*a.channel), ("a", "rt:room:a#1"));
        assert_eq!(
            table.create("a", "A", "").unwrap_err(),
            RoomError::Exists("a".into())
        );
        assert_eq!(table.create("", "", "").unwrap_err(), RoomError::BadId);
        assert_eq!(table.create("a b", "", "").unwrap_err(), RoomError::BadId);
        assert!(table.get_or_create("b", true).unwrap().is_some());
        assert_eq!(
            table.get_or_create("c", true).unwrap_err(),
            RoomError::Limit(2)
        );
        assert!(table.get_or_create("c", false).unwrap().is_none());
        let ids: Vec<_> = table.list().iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [Arc::from("a"), Arc::from("b")]);
        assert!(table.remove("a").is_some());
        assert_eq!(table.count(), 1);
        assert!(table.get("a").is_none());
        assert!(!a.is_live());
    }

    #[test]
    fn a_room_made_anew_is_another_incarnation_with_its_own_channel() {
        let table = RoomTable::new(10);
        let old = table.create("r", "", "").unwrap();
        table.remove("r");
        let new = table.create("r", "", "").unwrap();
        assert_ne!(old.incarnation, new.incarnation);
        assert_ne!(old.channel, new.channel);
        assert!(new.is_live() && !old.is_live());
    }

    #[test]
    fn counters_never_go_below_zero() {
        let room = Room::new("r", "", "", 1);
        room.count_user(false);
        room.count_user(true);
        room.count_connection(true);
        room.count_connection(true);
        room.count_connection(false);
        assert_eq!((room.users(), room.connections()), (1, 1));
    }
}
