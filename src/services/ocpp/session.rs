//! One charge point's connection, as its identity: who it is, which version it speaks, when
//! it last spoke, how its boot went, and its [`Downlink`]. Only the connection's callbacks and
//! code the hub runs on its shard touch it; the `Port` trait lets both drive the downlink.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::hub::ConnId;
use crate::{ConnCtx, Message, ShardCtx};

use super::central::BootStatus;
use super::downlink::Downlink;
use super::errors::Version;
use super::events::{Direction, Event, EventKind, JsonText};
use super::Service;

/// A charge point's connection state.
pub struct Session {
    pub id: Arc<str>,
    pub version: Version,
    pub remote_addr: Option<SocketAddr>,
    /// When it last sent a message.
    pub last_rx: Instant,
    /// How its last BootNotification was answered.
    pub boot: Option<BootStatus>,
    pub downlink: Downlink,
}

impl Session {
    pub fn new(id: &str, version: Version, remote_addr: Option<SocketAddr>) -> Session {
        Session {
            id: Arc::from(id),
            version,
            remote_addr,
            last_rx: Instant::now(),
            boot: None,
            downlink: Downlink::default(),
        }
    }

    /// An event of this charge point, now.
    pub fn event(&self, direction: Option<Direction>, kind: EventKind) -> Event {
        Event {
            charge_point_id: self.id.clone(),
            direction,
            kind,
            action: None,
            message_id: None,
            payload: None,
            received_at: SystemTime::now(),
            protocol: Some(self.version.subprotocol()),
        }
    }
}

/// What the downlink needs of a connection: its session, a way to send and to set timers,
/// Implemented by a connection's own callback context and by a
/// shard reached through the hub.
pub trait Port {
    fn session(&mut self) -> Option<&mut Session>;
    fn send_text(&mut self, text: &str);
    fn set_timer(&mut self, after: std::time::Duration, token: u64);
}

impl Port for ConnCtx<'_> {
    fn session(&mut self) -> Option<&mut Session> {
        self.identity_mut::<Session>()
    }
    fn send_text(&mut self, text: &str) {
        self.send(Message::Text(text));
    }
    fn set_timer(&mut self, after: std::time::Duration, token: u64) {
        ConnCtx::set_timer(self, after, token);
    }
}

/// A connection of a shard, reached through the hub.
pub struct OnShard<'s, 'a> {
    pub shard: &'s mut ShardCtx<'a>,
    pub conn: ConnId,
}

impl Port for OnShard<'_, '_> {
    fn session(&mut self) -> Option<&mut Session> {
        self.shard.identity_mut::<Session>(self.conn)
    }
    fn send_text(&mut self, text: &str) {
        self.shard.send(self.conn, Message::Text(text));
    }
    fn set_timer(&mut self, after: std::time::Duration, token: u64) {
        self.shard.set_timer(self.conn, after, token);
    }
}

/// Sends the next queued command, if none is outstanding: the CALL, its timer, its event.
pub fn pump(service: &Service, port: &mut impl Port) {
    let Some(session) = port.session() else {
        return;
    };
    let Some(dispatch) = session.downlink.next(Instant::now()) else {
        return;
    };
    let event = service.events.enabled().then(|| {
        let mut event = session.event(Some(Direction::Downlink), EventKind::Call);
        event.action = Some(dispatch.action.clone());
        event.message_id = Some(dispatch.message_id.clone());
        event.payload = Some(JsonText::of(&dispatch.payload));
        event
    });
    port.send_text(&dispatch.text);
    port.set_timer(dispatch.after, dispatch.token);
    if let Some(event) = event {
        service.events.publish(event);
    }
}
