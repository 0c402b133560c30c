//! Services built on the public library API (handlers, hub, HTTP routes):
//! each is a user of the engine, never a part of it, and imports nothing
//! from `engine/`.

pub mod json_depth;
pub mod ocpp;
pub mod realtime;
