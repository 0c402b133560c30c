//! One realtime connection's own state, kept as its identity: the user it
//! speaks for, the rooms it is in, its rate limit. Only the connection's
//! callbacks (and code run on its shard: a room deleted, a presence report
//! sent again) touch it.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use crate::hub::ConnId;

use super::presence::{home_shard, Report};
use super::rate::TokenBucket;
use super::rooms::Room;

/// Who a connection speaks for: from the token, or made up for an
/// anonymous connection.
#[derive(Debug)]
pub struct User {
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// The token's `role` is `admin`: may broadcast.
    pub admin: bool,
}

impl User {
    pub fn new(id: &str, name: &str, admin: bool) -> User {
        User {
            id: Arc::from(id),
            name: Arc::from(name),
            admin,
        }
    }

    /// The shard that keeps this user's presence.
    pub fn home(&self, shards: usize) -> usize {
        home_shard(&self.id, shards)
    }
}

/// The hub channel every realtime connection is subscribed to.
pub const ALL_CHANNEL: &str = "rt:all";

/// A realtime connection's state.
pub struct Session {
    pub user: Arc<User>,
    /// The rooms it is in, in join order.
    pub rooms: Vec<Arc<Room>>,
    /// The room `?room_id=` (or `/ws/connect`'s default) asked for, joined
    /// when the connection opens.
    pub connect_room: Option<Arc<Room>>,
    /// When the token stops being valid (its `exp` plus the leeway), as
    /// Unix seconds; `None` for anonymous users.
    pub expires_at: Option<u64>,
    /// When the connection was accepted.
    pub connected_at: SystemTime,
    /// The connection is closing: its rooms are left, its user's home shard
    /// is to forget it.
    pub closed: bool,
    bucket: Option<TokenBucket>,
    /// Messages refused by the rate limit since the last one let through.
    refused_in_row: u32,
}

/// What the rate limit says of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Refused; answer with an error.
    Refused,
    /// Refused too many times in a row: close the connection.
    Abuse,
}

impl Session {
    /// `per_minute` 0 means no rate limit.
    pub fn new(user: Arc<User>, per_minute: u32, burst: u32) -> Session {
        let bucket = (per_minute > 0).then(|| {
            let burst = if burst == 0 {
                (per_minute / 10).max(1)
            } else {
                burst
            };
            TokenBucket::new(per_minute, burst, now_ms())
        });
        Session {
            user,
            rooms: Vec::new(),
            connect_room: None,
            expires_at: None,
            connected_at: SystemTime::now(),
            closed: false,
            bucket,
            refused_in_row: 0,
        }
    }

    /// Takes one message from the rate limit.
    pub fn admit(&mut self, close_after: u32) -> Admit {
        let Some(bucket) = &mut self.bucket else {
            return Admit::Yes;
        };
        if bucket.try_take(now_ms()) {
            self.refused_in_row = 0;
            return Admit::Yes;
        }
        self.refused_in_row += 1;
        if close_after > 0 && self.refused_in_row >= close_after {
            Admit::Abuse
        } else {
            Admit::Refused
        }
    }

    /// What the user's home shard is to know of connection `conn` (this one).
    pub fn report(&self, conn: ConnId) -> Report {
        Report {
            user: self.user.clone(),
            conn,
            connected_at: self.connected_at,
            rooms: (!self.closed).then(|| self.rooms.clone()),
        }
    }

    /// The room `id` among those it is in.
    pub fn room(&self, id: &str) -> Option<&Arc<Room>> {
        self.rooms.iter().find(|r| &*r.id == id)
    }

    /// Forgets room `id`; returns it if it was in it.
    pub fn remove_room(&mut self, id: &str) -> Option<Arc<Room>> {
        let at = self.rooms.iter().position(|r| &*r.id == id)?;
        Some(self.rooms.remove(at))
    }

    /// Forgets `room`, that incarnation only; whether it was in it.
    pub fn remove_incarnation(&mut self, room: &Arc<Room>) -> bool {
        let at = self.rooms.iter().position(|r| Arc::ptr_eq(r, room));
        at.map(|at| self.rooms.remove(at)).is_some()
    }
}

/// Milliseconds on the process's monotonic clock.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_refuses_then_calls_it_abuse() {
        let user = Arc::new(User::new("u", "U", false));
        let mut session = Session::new(user.clone(), 60, 2);
        assert_eq!(session.admit(3), Admit::Yes);
        assert_eq!(session.admit(3), Admit::Yes);
        assert_eq!(session.admit(3), Admit::Refused);
        assert_eq!(session.admit(3), Admit::Refused);
        assert_eq!(session.admit(3), Admit::Abuse);
        let mut unlimited = Session::new(user, 0, 0);
        assert!((0..10_000).all(|_| unlimited.admit(1) == Admit::Yes));
    }
}
