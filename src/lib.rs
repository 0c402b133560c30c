//! ringgate: a thread-per-core io_uring WebSocket gateway.
//!
//! The data path reads top-down through the folders: bytes arrive in an
//! [`engine`] driver (io_uring or epoll), become frames and messages in the
//! sans-IO [`protocol`] core, reach a route's [`Handler`], and travel to other
//! connections and shards through the [`hub`]. Plain HTTP (health, admin
//! routes) is the [`control`] plane's, on the same port.

pub mod config;
pub mod control;
pub mod engine;
pub mod handler;
pub mod hub;
pub mod logging;
pub mod protocol;
pub mod routes;
pub mod server;
pub mod services;

pub use axum;
pub use config::Config;
pub use control::{ApiError, MetricsSource, ServerView};
pub use engine::shard::{ConnInfo, ShardCtx};
pub use handler::{Accept, ConnCtx, Handler, Message, PendingUpgrade, Reject, UpgradeRequest};
pub use hub::{ConnId, Frame, Hub, HubError, HubStats};
pub use prometheus_client;
pub use server::{Server, ServerBuilder, ServerHandle};
