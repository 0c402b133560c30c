//! Downlink commands from the backend: [`Gateway::send_command`] finds the connection that
//! speaks for a charge point (on any shard), queues the CALL on that connection's
//! [`Downlink`](super::downlink::Downlink) through the hub, and waits for the charge point's
//! answer, the timeout, or the reason it will never come. No shard ever waits: the shard
//! queues and returns, the answer arrives on the connection's callback, and only the caller's
//! task (an HTTP request on the control plane, or a library user's) awaits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::hub::Hub;

use super::downlink::{Answer, Command, CommandError};
use super::frame::{is_action_name, MAX_ACTION};
use super::session::{pump, OnShard, Session};
use super::Service;

/// The handle a program embedding the gateway uses to command charge points. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(super) service: Arc<Service>,
}

/// A command the caller got wrong (answered 400 by the HTTP API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadCommand {
    #[error("action must be 1 to {MAX_ACTION} ASCII letters and digits")]
    Action,
    #[error("payload must be a JSON object")]
    Payload,
}

impl Gateway {
    /// The call timeout a command gets unless it says otherwise (`OCPP_CALL_TIMEOUT`).
    pub fn default_timeout(&self) -> Duration {
        self.service.cfg.call_timeout
    }

    /// Sends CALL `action` with `payload` to charge point `charge_point_id` and waits at most
    /// `timeout` (queueing included) for its CALLRESULT or CALLERROR. Commands to one charge
    /// point go one at a time, in order. A charge point whose connection is closing is not
    /// connected: the command is refused at once. `hub` is the running server's
    /// ([`crate::ServerHandle::hub`]).
    pub async fn send_command(
        &self,
        hub: &Hub,
        charge_point_id: &str,
        action: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Answer, CommandError> {
        check_command(action, &payload).map_err(|e| CommandError::Invalid(e.to_string()))?;
        let service = &self.service;
        let link = service
            .registry
            .link(charge_point_id)
            .ok_or_else(|| CommandError::NotConnected(charge_point_id.to_owned()))?;
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        let cmd = Command::new(
            action.to_owned(),
            payload,
            deadline,
            reply,
            &service.pending,
        );
        let on_shard = service.clone();
        let id = charge_point_id.to_owned();
        let queued = hub.run_on(link.conn.shard(), move |shard| {
            let mut port = OnShard {
                shard,
                conn: link.conn,
            };
            let max = on_shard.cfg.max_queued_commands;
            // Closing since the table was read: its downlink takes nothing more.
            let session = port.shard.identity_mut::<Session>(link.conn);
            let Some(session) = session.filter(|session| !session.downlink.is_closed()) else {
                return Err(CommandError::NotConnected(id));
            };
            session.downlink.enqueue(cmd, max)?;
            pump(&on_shard, &mut port);
            Ok(())
        });
        queued
            .await
            .map_err(|e| CommandError::Overloaded(e.to_string()))??;
        match tokio::time::timeout_at(deadline.into(), answer).await {
            Err(_) => Err(CommandError::Timeout(timeout)),
            // The shard dropped the command without settling it (the server is stopping).
            Ok(Err(_)) => Err(CommandError::Disconnected),
            Ok(Ok(outcome)) => outcome,
        }
    }
}

/// Checks a command's action name and payload before it is sent.
pub fn check_command(action: &str, payload: &Value) -> Result<(), BadCommand> {
    if !is_action_name(action) {
        return Err(BadCommand::Action);
    }
    if !payload.is_object() {
        return Err(BadCommand::Payload);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_are_checked_before_sending() {
        assert_eq!(check_command("Reset", &json!({"type": "Soft"})), Ok(()));
        assert_eq!(check_command("", &json!({})), Err(BadCommand::Action));
        assert_eq!(check_command("Re set", &json!({})), Err(BadCommand::Action));
        assert_eq!(
            check_command(&"A".repeat(65), &json!({})),
            Err(BadCommand::Action)
        );
        assert_eq!(check_command("Reset", &json!([])), Err(BadCommand::Payload));
    }
}
