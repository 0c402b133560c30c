//! Presence: who is online, with which connections, in which rooms. Each
//! user has a home shard (a hash of the user id); that shard alone keeps
//! the user's entry, as a shard-local [`Presence`], from [`Report`]s the
//! connections' shards send it through the hub. A report is a connection's
//! whole state (its rooms, or gone), not a change, so a report lost to a full
//! mailbox is made good by sending the connection's state again later, and
//! the user's arrivals and departures are worked out here, in one place,
//! with no lock. Sans-IO: the caller announces.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use crate::hub::ConnId;

use super::rooms::Room;
use super::session::User;

/// The shard that keeps `user_id`'s presence, of `shards`.
pub fn home_shard(user_id: &str, shards: usize) -> usize {
    // SipHash with fixed keys: the same user maps to the same shard on
    // every thread of the process.
    let mut hasher = std::hash::DefaultHasher::new();
    user_id.hash(&mut hasher);
    (hasher.finish() % shards.max(1) as u64) as usize
}

/// One connection's state, for its user's home shard.
#[derive(Debug, Clone)]
pub struct Report {
    pub user: Arc<User>,
    pub conn: ConnId,
    /// When the connection opened.
    pub connected_at: SystemTime,
    /// The rooms it is in (each incarnation once), or `None`: it closed.
    pub rooms: Option<Vec<Arc<Room>>>,
}

impl Report {
    /// Connection `conn` of `user` has closed.
    pub fn closed(user: Arc<User>, conn: ConnId) -> Report {
        Report {
            user,
            conn,
            connected_at: SystemTime::UNIX_EPOCH,
            rooms: None,
        }
    }
}

/// Where a report moved the user as a whole: the rooms it entered (its first
/// connection there) and left (its last one).
#[derive(Debug, Default)]
pub struct Changes {
    pub arrived: Vec<Arc<Room>>,
    pub departed: Vec<Arc<Room>>,
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
    /// Each open connection and the rooms it is in (in incarnation order),
    /// in connection order.
    conns: Vec<(ConnId, Vec<Arc<Room>>)>,
    /// Room incarnation → the room and how many of the connections are in it.
    rooms: HashMap<u64, (Arc<Room>, usize)>,
}

impl Entry {
    /// A connection's rooms went from `old` to `new` (both in incarnation
    /// order): one walk through both, however many rooms.
    fn moved(&mut self, old: &[Arc<Room>], new: &[Arc<Room>]) -> Changes {
        let mut changes = Changes::default();
        let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => return changes,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(o), Some(n)) => o.incarnation.cmp(&n.incarnation),
            };
            match order {
                Ordering::Equal => {
                    old.next();
                    new.next();
                }
                Ordering::Less => {
                    let room = old.next().expect("peeked");
                    self.leave(room, &mut changes);
                }
                Ordering::Greater => {
                    let room = new.next().expect("peeked");
                    self.enter(room, &mut changes);
                }
            }
        }
    }

    fn enter(&mut self, room: &Arc<Room>, changes: &mut Changes) {
        let (_, count) = self
            .rooms
            .entry(room.incarnation)
            .or_insert_with(|| (room.clone(), 0));
        *count += 1;
        if *count == 1 {
            room.count_user(true);
            changes.arrived.push(room.clone());
        }
    }

    fn leave(&mut self, room: &Arc<Room>, changes: &mut Changes) {
        let Some((_, count)) = self.rooms.get_mut(&room.incarnation) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.rooms.remove(&room.incarnation);
            room.count_user(false);
            changes.departed.push(room.clone());
        }
    }
}

/// The users whose home is this shard.
#[derive(Default)]
pub struct Presence {
    users: HashMap<Arc<str>, Entry>,
}

impl Presence {
    /// Takes in a connection's state, however stale the one it had.
    pub fn apply(&mut self, report: Report) -> Changes {
        let Report {
            user,
            conn,
            connected_at,
            rooms,
        } = report;
        let Some(mut rooms) = rooms else {
            return self.closed(&user.id, conn);
        };
        rooms.sort_unstable_by_key(|room| room.incarnation);
        let entry = self.users.entry(user.id.clone()).or_insert_with(|| Entry {
            username: user.name.clone(),
            connected_at,
            conns: Vec::with_capacity(1),
            rooms: HashMap::new(),
        });
        let at = match entry.conns.iter().position(|(c, _)| *c == conn) {
            Some(at) => at,
            None => {
                entry.conns.push((conn, Vec::new()));
                entry.conns.len() - 1
            }
        };
        let old = std::mem::take(&mut entry.conns[at].1);
        let changes = entry.moved(&old, &rooms);
        entry.conns[at].1 = rooms;
        changes
    }

    fn closed(&mut self, user: &str, conn: ConnId) -> Changes {
        let Some(entry) = self.users.get_mut(user) else {
            return Changes::default();
        };
        let Some(at) = entry.conns.iter().position(|(c, _)| *c == conn) else {
            return Changes::default();
        };
        let (_, old) = entry.conns.remove(at);
        let changes = entry.moved(&old, &[]);
        if entry.conns.is_empty() {
            self.users.remove(user);
        }
        changes
    }

    /// The open connections of `user`.
    pub fn connections(&self, user: &str) -> Vec<ConnId> {
        self.users
            .get(user)
            .map_or_else(Vec::new, |e| e.conns.iter().map(|(c, _)| *c).collect())
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

    /// The users here in room `room` (that incarnation).
    pub fn in_room(&self, room: &Room) -> Vec<OnlineUser> {
        self.list()
            .into_iter()
            .filter(|u| self.users[&u.user_id].rooms.contains_key(&room.incarnation))
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

    fn report(user: &Arc<User>, n: u32, rooms: Option<&[&Arc<Room>]>) -> Report {
        Report {
            user: user.clone(),
            conn: conn(n),
            connected_at: SystemTime::UNIX_EPOCH,
            rooms: rooms.map(|rooms| rooms.iter().map(|&r| r.clone()).collect()),
        }
    }

    fn ids(rooms: &[Arc<Room>]) -> Vec<&str> {
        rooms.iter().map(|r| &*r.id).collect()
    }

    #[test]
    fn presence_is_per_user_not_per_connection() {
        let table = RoomTable::new(10, 0);
        let room = table.create("r", "", "").unwrap();
        let alice = Arc::new(User::new("alice", "Alice", false));
        let mut p = Presence::default();
        p.apply(report(&alice, 1, Some(&[])));
        p.apply(report(&alice, 2, Some(&[])));
        let first = p.apply(report(&alice, 1, Some(&[&room])));
        assert_eq!(ids(&first.arrived), ["r"], "first tab announces");
        assert!(p
            .apply(report(&alice, 2, Some(&[&room])))
            .arrived
            .is_empty());
        assert_eq!(room.users(), 1);
        let one_left = p.apply(report(&alice, 1, Some(&[])));
        assert!(one_left.departed.is_empty(), "one tab left, one stays");
        let last = p.apply(report(&alice, 2, None));
        assert_eq!(ids(&last.departed), ["r"], "the last tab closing announces");
        assert_eq!(room.users(), 0);
        assert_eq!(p.connections("alice"), [conn(1)]);
        assert_eq!(p.list()[0].connections, 1);
        p.apply(report(&alice, 1, None));
        assert_eq!(p.count(), 0);
        let unknown = p.apply(report(&alice, 1, None));
        assert!(
            unknown.departed.is_empty(),
            "an unknown connection leaves nothing"
        );
    }

    #[test]
    fn a_state_sent_again_changes_nothing_and_a_late_one_catches_up() {
        let table = RoomTable::new(10, 0);
        let (a, b) = (
            table.create("a", "", "").unwrap(),
            table.create("b", "", "").unwrap(),
        );
        let user = Arc::new(User::new("u", "U", false));
        let mut p = Presence::default();
        // The reports of "joined a" and "opened" were lost: the first that
        // arrives says it all.
        let caught_up = p.apply(report(&user, 1, Some(&[&a, &b])));
        assert_eq!(ids(&caught_up.arrived), ["a", "b"]);
        let again = p.apply(report(&user, 1, Some(&[&a, &b])));
        assert!(again.arrived.is_empty() && again.departed.is_empty());
        let moved = p.apply(report(&user, 1, Some(&[&b])));
        assert_eq!(ids(&moved.departed), ["a"]);
        assert_eq!((a.users(), b.users()), (0, 1));
    }

    #[test]
    fn a_room_made_anew_is_counted_apart_from_the_old_one() {
        let table = RoomTable::new(10, 0);
        let old = table.create("r", "", "").unwrap();
        let user = Arc::new(User::new("u", "U", false));
        let mut p = Presence::default();
        p.apply(report(&user, 1, Some(&[&old])));
        table.remove("r");
        let new = table.create("r", "", "").unwrap();
        // Another connection joins the new room while the first one still
        // holds the old: they count apart.
        let joined = p.apply(report(&user, 2, Some(&[&new])));
        assert_eq!(joined.arrived.len(), 1);
        assert!(Arc::ptr_eq(&joined.arrived[0], &new));
        let dropped = p.apply(report(&user, 1, Some(&[])));
        assert!(Arc::ptr_eq(&dropped.departed[0], &old));
        assert_eq!(p.in_room(&new).len(), 1);
        assert!(p.in_room(&old).is_empty());
        assert_eq!((old.users(), new.users()), (0, 1));
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
