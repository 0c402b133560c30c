//! Presence: who is online, with which connections, in which rooms. Each
//! user has a home shard (a hash of the user id); that shard alone keeps
//! the user's entry, as a shard-local [`Presence`], and every change to it
//! arrives there through the hub in order. So "first connection of a user
//! in a room" and "last one left" are decided in one place, with no lock,
//! wherever the user's connections are. Sans-IO: the caller announces.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use crate::hub::ConnId;

use super::rooms::Room;

/// The shard that keeps `user_id`'s presence, of `shards`.
pub fn home_shard(user_id: &str, shards: usize) -> usize {
    // SipHash with fixed keys: the same user maps to the same shard on
    // every thread of the process.
    let mut hasher = std::hash::DefaultHasher::new();
    user_id.hash(&mut hasher);
    (hasher.finish() % shards.max(1) as u64) as usize
}

/// One online user, as `/ws/online` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
    pub user_id: Arc<str>,
    pub username: Arc<str>,
    /// When its first open connection connected.
    pub connected_at: SystemTime,
    pub connections: usize,
}

struct Entry {
    username: Arc<str>,
    connected_at: SystemTime,
    conns: Vec<ConnId>,
    /// Room id → the room and how many of the user's connections are in it.
    rooms: HashMap<Arc<str>, (Arc<Room>, usize)>,
}

/// The users whose home is this shard.
#[derive(Default)]
pub struct Presence {
    users: HashMap<Arc<str>, Entry>,
}

impl Presence {
    /// Connection `conn` of `user` opened.
    pub fn connect(&mut self, user: &Arc<str>, username: &Arc<str>, conn: ConnId, at: SystemTime) {
        let entry = self.users.entry(user.clone()).or_insert_with(|| Entry {
            username: username.clone(),
            connected_at: at,
            conns: Vec::new(),
            rooms: HashMap::new(),
        });
        entry.conns.push(conn);
    }

    /// Connection `conn` of `user` closed (after leaving its rooms).
    pub fn disconnect(&mut self, user: &str, conn: ConnId) {
        if let Some(entry) = self.users.get_mut(user) {
            entry.conns.retain(|&c| c != conn);
            if entry.conns.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// A connection of `user` joined `room`: true when it is the user's
    /// first there (announce it).
    pub fn join(&mut self, user: &str, room: &Arc<Room>) -> bool {
        let Some(entry) = self.users.get_mut(user) else {
            return false;
        };
        let (kept, count) = entry
            .rooms
            .entry(room.id.clone())
            .or_insert_with(|| (room.clone(), 0));
        if !Arc::ptr_eq(kept, room) {
            // The room was deleted and made anew: the old count is void.
            *kept = room.clone();
            *count = 0;
        }
        *count += 1;
        let first = *count == 1;
        if first {
            room.count_user(true);
        }
        first
    }

    /// A connection of `user` left `room`: true when it was the user's last
    /// there (announce it).
    pub fn leave(&mut self, user: &str, room: &Arc<Room>) -> bool {
        let Some(entry) = self.users.get_mut(user) else {
            return false;
        };
        let Some((kept, count)) = entry.rooms.get_mut(&room.id) else {
            return false;
        };
        if !Arc::ptr_eq(kept, room) {
            return false;
        }
        *count -= 1;
        let last = *count == 0;
        if last {
            entry.rooms.remove(&room.id);
            room.count_user(false);
        }
        last
    }

    /// The open connections of `user`.
    pub fn connections(&self, user: &str) -> &[ConnId] {
        self.users.get(user).map_or(&[], |e| &e.conns)
    }

    /// Users online here.
    pub fn count(&self) -> usize {
        self.users.len()
    }

    /// Every user online here.
    pub fn list(&self) -> Vec<OnlineUser> {
        self.users
            .iter()
            .map(|(id, e)| OnlineUser {
                user_id: id.clone(),
                username: e.username.clone(),
                connected_at: e.connected_at,
                connections: e.conns.len(),
            })
            .collect()
    }

    /// The users here in room `room`.
    pub fn in_room(&self, room: &Arc<Room>) -> Vec<OnlineUser> {
        self.list()
            .into_iter()
            .filter(|u| {
                let rooms = &self.users[&u.user_id].rooms;
                rooms
                    .get(&room.id)
                    .is_some_and(|(kept, _)| Arc::ptr_eq(kept, room))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::realtime::rooms::RoomTable;

    fn conn(n: u32) -> ConnId {
        ConnId::from_u64(u64::from(n) << 32 | 1)
    }

    #[test]
    fn presence_is_per_user_not_per_connection() {
        let table = RoomTable::new(10, 0);
        let room = table.create("r", "", "").unwrap();
        let (alice, name): (Arc<str>, Arc<str>) = (Arc::from("alice"), Arc::from("Alice"));
        let mut p = Presence::default();
        p.connect(&alice, &name, conn(1), SystemTime::now());
        p.connect(&alice, &name, conn(2), SystemTime::now());
        assert!(p.join("alice", &room), "first tab announces");
        assert!(!p.join("alice", &room), "second tab does not");
        assert_eq!(room.users(), 1);
        assert!(!p.leave("alice", &room), "one tab left, one stays");
        assert!(p.leave("alice", &room), "the last tab leaving announces");
        assert_eq!(room.users(), 0);
        assert_eq!(p.connections("alice"), &[conn(1), conn(2)]);
        p.disconnect("alice", conn(1));
        assert_eq!(p.list()[0].connections, 1);
        p.disconnect("alice", conn(2));
        assert_eq!(p.count(), 0);
        assert!(!p.leave("alice", &room), "an unknown user leaves nothing");
    }

    #[test]
    fn a_room_made_anew_starts_counting_again() {
        let table = RoomTable::new(10, 0);
        let old = table.create("r", "", "").unwrap();
        let user: Arc<str> = Arc::from("u");
        let mut p = Presence::default();
        p.connect(&user, &user, conn(1), SystemTime::now());
        assert!(p.join("u", &old));
        table.remove("r");
        let new = table.create("r", "", "").unwrap();
        assert!(
            !p.leave("u", &new),
            "a leave of the new room is not the old one's"
        );
        assert!(p.join("u", &new));
        assert_eq!(p.in_room(&new).len(), 1);
        assert!(p.in_room(&old).is_empty());
        assert_eq!(new.users(), 1);
    }

    #[test]
    fn home_shards_are_stable_and_in_range() {
        for user in ["a", "b", "user-42", ""] {
            let shard = home_shard(user, 3);
            assert!(shard < 3);
            assert_eq!(shard, home_shard(user, 3));
        }
        assert_eq!(home_shard("x", 0), 0);
    }
}
