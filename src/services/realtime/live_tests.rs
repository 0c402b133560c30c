//! Orderings a real race produces only by chance, made certain: the service
//! runs on a real two-shard server on a loopback port, clients speak to it
//! over WebSocket, and the test itself performs the two halves of an admin
//! operation with client traffic in between.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{Config, Secret};
use crate::{Server, ServerHandle};

use super::membership::{delete_room, evict_everywhere};
use super::session::{Session, ALL_CHANNEL};
use super::{attach, Service};

/// Any single wait for a message or for the counts to settle.
const WAIT: Duration = Duration::from_secs(10);
const SHARDS: usize = 2;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A realtime connection: its user and its shard.
struct Client {
    ws: Ws,
    user: String,
    shard: usize,
}

/// A two-shard server with anonymous users and no rate limit, and its service.
fn start() -> (ServerHandle, Arc<Service>) {
    start_with(|_| {})
}

/// As [`start`], with `configure` applied to the configuration.
fn start_with(configure: impl FnOnce(&mut Config)) -> (ServerHandle, Arc<Service>) {
    let mut cfg = Config::load(None, &|k| std::env::var(k).ok()).expect("config");
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = SHARDS;
    configure(&mut cfg);
    cfg.realtime.jwt_secret = Secret::default();
    cfg.realtime.rate_limit_per_minute = 0;
    let service = Arc::new(Service::new(&cfg.realtime).expect("service"));
    let handle = attach(Server::builder(cfg), service.clone())
        .start()
        .expect("server starts");
    (handle, service)
}

impl Client {
    async fn open(handle: &ServerHandle) -> Client {
        let url = format!("ws://{}/ws", handle.local_addr());
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("upgrade");
        let mut client = Client {
            ws,
            user: String::new(),
            shard: usize::MAX,
        };
        let welcome = client.expect("welcome").await;
        client.user = welcome["data"]["user_id"].as_str().unwrap().to_owned();
        client.shard = shard_of(handle, &client.user).await;
        client
    }

    async fn send(&mut self, message: Value) {
        self.ws
            .send(WsMessage::Text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next message that is not a presence announcement.
    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the connection open")
                .expect("a frame");
            let WsMessage::Text(text) = frame else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if !matches!(
                message["message_type"].as_str(),
                Some("user_joined" | "user_left")
            ) {
                return message;
            }
        }
    }

    async fn expect(&mut self, message_type: &str) -> Value {
        let message = self.next().await;
        assert_eq!(message["message_type"], message_type, "{message}");
        message
    }

    async fn join(&mut self, room: &str) {
        self.send(json!({"message_type": "join", "room": room}))
            .await;
        assert_eq!(self.expect("room_joined").await["room"], room);
    }
}

/// The shard of user `user`'s (only) connection.
async fn shard_of(handle: &ServerHandle, user: &str) -> usize {
    let user: Arc<str> = Arc::from(user);
    let found = handle
        .hub()
        .run_on_all(move |shard| {
            shard
                .channel_member_ids(ALL_CHANNEL)
                .into_iter()
                .any(|id| shard.identity_mut::<Session>(id).map(|s| &*s.user.id) == Some(&*user))
        })
        .await
        .unwrap();
    found.iter().position(|&here| here).expect("the connection")
}

/// Opens connections until `per_shard` sit on each shard.
async fn clients_on_each_shard(handle: &ServerHandle, per_shard: usize) -> Vec<Vec<Client>> {
    let mut by_shard: Vec<Vec<Client>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for _ in 0..40 * per_shard {
        let client = Client::open(handle).await;
        if by_shard[client.shard].len() < per_shard {
            by_shard[client.shard].push(client);
        }
        if by_shard.iter().all(|c| c.len() == per_shard) {
            return by_shard;
        }
    }
    panic!("connections did not land on every shard");
}

/// `client` says `{"round", "n"}` in room `x`.
async fn say(client: &mut Client, round: usize, n: u32) {
    let message =
        json!({"message_type": "room_message", "room": "x", "data": {"round": round, "n": n}});
    client.send(message).await;
}

/// Waits until room `id` counts `members` connections and users (one user
/// a connection here), and checks that as many are subscribed to it.
async fn settle(handle: &ServerHandle, service: &Service, id: &str, members: usize) {
    let room = service.rooms.get(id).expect("the room");
    let deadline = tokio::time::Instant::now() + WAIT;
    while (room.connections(), room.users()) != (members, members) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {id} counts {} connections and {} users, want {members} of each",
            room.connections(),
            room.users(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let subscribed = handle.hub().channel_members(&room.channel).await.unwrap();
    assert_eq!(subscribed, members, "connections subscribed to room {id}");
}

/// A room deleted while a shard has not yet removed its members, made anew
/// and joined on that shard in the meantime: the late removal of the old
/// room takes nobody out of the new one, and every count ends exact. Each
/// round puts the window on the other shard.
#[test]
fn a_late_removal_of_a_deleted_room_never_touches_the_room_made_anew() {
    let (handle, service) = start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        service.rooms.create("x", "", "").unwrap();
        let mut clients = clients_on_each_shard(&handle, 2).await;
        for shard in &mut clients {
            shard[0].join("x").await;
        }
        settle(&handle, &service, "x", SHARDS).await;
        for round in 0..20 {
            let s = round % SHARDS;
            let old = service.rooms.remove("x").unwrap();
            service.rooms.create("x", "", "").unwrap();
            // On shard s, before the removal reaches it: a newcomer joins the
            // new room, then a member of the old one joins it again.
            let [member, newcomer] = &mut clients[s][..] else {
                unreachable!()
            };
            newcomer.join("x").await;
            member
                .send(json!({"message_type": "join", "room": "x"}))
                .await;
            let mut member_saw = vec![member.next().await];
            if member_saw[0]["message_type"] != "room_joined" {
                member_saw.push(member.next().await);
            }
            evict_everywhere(&service, &handle.hub(), old).await;
            // The newcomer is still in the new room: its message comes back.
            say(newcomer, round, 0).await;
            assert_eq!(newcomer.expect("room_message").await["data"]["n"], 0);
            let kinds: Vec<&str> = member_saw
                .iter()
                .map(|m| m["message_type"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, ["room_deleted", "room_joined"], "{member_saw:?}");
            assert_eq!(member.expect("room_message").await["data"]["n"], 0);
            // The old room's member on the other shard is taken out, and
            // comes back.
            let other = &mut clients[1 - s][0];
            assert_eq!(other.expect("room_deleted").await["room"], "x");
            other.join("x").await;
            settle(&handle, &service, "x", 3).await;
            say(&mut clients[s][1], round, 1).await;
            for (shard, i) in [(0, 0), (1, 0), (s, 1)] {
                let heard = clients[shard][i].expect("room_message").await;
                assert_eq!(heard["data"], json!({"round": round, "n": 1}), "{heard}");
            }
            let newcomer = &mut clients[s][1];
            newcomer
                .send(json!({"message_type": "leave", "room": "x"}))
                .await;
            newcomer.expect("room_left").await;
            settle(&handle, &service, "x", 2).await;
        }
    });
    handle.shutdown();
    handle.join().unwrap();
}

/// A room deleted while a shard's mailbox is full: the deletion asks that
/// shard again until it takes its members out, rather than leave them in a
/// room that no longer exists, never told.
#[test]
fn a_deletion_waits_out_a_full_mailbox() {
    let (handle, service) = start_with(|cfg| cfg.server.mailbox_commands = 4);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        service.rooms.create("d", "", "").unwrap();
        let mut clients = clients_on_each_shard(&handle, 1).await;
        for shard in &mut clients {
            shard[0].join("d").await;
        }
        settle(&handle, &service, "d", SHARDS).await;
        // Shard 1 stalls, with its mailbox full behind it.
        let hub = handle.hub();
        let (release, stalled) = std::sync::mpsc::channel::<()>();
        hub.post_run(1, move |_| {
            let _ = stalled.recv_timeout(WAIT);
        })
        .unwrap();
        let mut filled = 0;
        while hub.post_run(1, |_| {}).is_ok() {
            filled += 1;
            assert!(filled < 100, "the mailbox never filled");
        }
        let deletion = tokio::spawn({
            let (service, hub) = (service.clone(), hub.clone());
            async move { delete_room(&service, &hub, "d").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.send(()).unwrap();
        let removed = tokio::time::timeout(WAIT, deletion).await.unwrap().unwrap();
        assert_eq!(removed, Some(SHARDS), "members removed");
        for shard in &mut clients {
            assert_eq!(shard[0].expect("room_deleted").await["room"], "d");
            shard[0]
                .send(json!({"message_type": "room_message", "room": "d", "data": {}}))
                .await;
            assert_eq!(
                shard[0].expect("error").await["data"]["code"],
                "not_in_room"
            );
        }
    });
    handle.shutdown();
    handle.join().unwrap();
}
