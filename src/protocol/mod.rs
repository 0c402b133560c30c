//! The sans-IO protocol core: bytes in, events and bytes out; no sockets here.
//!
//! `http` and `handshake` parse the HTTP/1.1 upgrade and write responses;
//! `frame`, `mask`, `utf8` and `close` are the RFC 6455 building blocks;
//! `reader` turns a byte stream into messages and control events, and
//! `writer` encodes server frames; `deflate` is RFC 7692 permessage-deflate.
//! Every function here takes arbitrary bytes and answers with an error
//! value, never a panic.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod mask;
pub mod reader;
pub mod utf8;
pub mod writer;

pub use error::ProtocolError;
