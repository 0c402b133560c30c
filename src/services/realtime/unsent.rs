//! What a shard could not post yet because another shard's mailbox was full,
//! kept until the janitor calls the shard back to post it again: the
//! connections whose home shard lacks their latest presence (read afresh
//! then, so one entry a connection), and server messages for each shard, in
//! the order they were made. Bounded: past a bound a message is dropped and
//! counted, never kept without end.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::hub::{ConnId, Frame, Hub, HubError};
use crate::{ConnCtx, ShardCtx};

use super::figures::ShardFigures;
use super::membership::post_report;
use super::presence::Report;
use super::session::{Session, User};
use super::Service;

/// Connections a shard keeps waiting for a report, at most.
const MAX_REPORTS: usize = 65_536;
/// Messages a shard keeps waiting for one other shard, at most.
const MAX_PARCELS: usize = 16_384;

/// A shard's thread, as a connection's callback or code the hub runs there
/// sees it: what posting from a shard needs.
pub(super) trait OnShard {
    fn hub(&self) -> &Hub;
    /// This shard's index.
    fn shard(&self) -> usize;
    fn local<T: Default + Send + 'static>(&mut self) -> &mut T;
}

impl OnShard for ConnCtx<'_> {
    fn hub(&self) -> &Hub {
        ConnCtx::hub(self)
    }
    fn shard(&self) -> usize {
        self.id().shard()
    }
    fn local<T: Default + Send + 'static>(&mut self) -> &mut T {
        ConnCtx::local(self)
    }
}

impl OnShard for ShardCtx<'_> {
    fn hub(&self) -> &Hub {
        ShardCtx::hub(self)
    }
    fn shard(&self) -> usize {
        self.index()
    }
    fn local<T: Default + Send + 'static>(&mut self) -> &mut T {
        ShardCtx::local(self)
    }
}

/// A server message for connections of one shard.
#[derive(Clone)]
pub(super) enum Parcel {
    /// To the members of `channel` on `shard`, but `except`.
    Channel {
        shard: usize,
        channel: Arc<str>,
        frame: Frame,
        except: Option<ConnId>,
    },
    /// To one connection.
    Conn { to: ConnId, frame: Frame },
}

impl Parcel {
    /// The shard it is for.
    fn shard(&self) -> usize {
        match self {
            Parcel::Channel { shard, .. } => *shard,
            Parcel::Conn { to, .. } => to.shard(),
        }
    }

    fn post(&self, hub: &Hub) -> Result<(), HubError> {
        match self.clone() {
            Parcel::Conn { to, frame } => hub.send_many(&[to], frame),
            Parcel::Channel {
                shard,
                channel,
                frame,
                except,
            } => hub.post_run(shard, move |shard| {
                for id in shard.channel_member_ids(&channel) {
                    if Some(id) != except {
                        shard.send_frame(id, &frame);
                    }
                }
            }),
        }
    }
}

/// What one shard has not posted yet.
#[derive(Default)]
pub(super) struct Unsent {
    /// Connections whose home shard lacks their latest state, with their
    /// user (for one that has closed by the time it is retried).
    reports: HashMap<ConnId, Arc<User>>,
    /// For each shard, the messages not posted to it yet, oldest first.
    parcels: HashMap<usize, VecDeque<Parcel>>,
    /// The janitor will call this shard back.
    called: bool,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        self.reports.is_empty() && self.parcels.is_empty()
    }
}

/// Sends `parcel` after any older one for its shard, or keeps it for later
/// when that shard's mailbox is full.
pub(super) fn send_parcel(service: &Service, place: &mut impl OnShard, parcel: Parcel) {
    let dest = parcel.shard();
    let hub = place.hub().clone();
    let unsent = place.local::<Unsent>();
    if !unsent.parcels.contains_key(&dest) {
        match parcel.post(&hub) {
            Err(HubError::MailboxFull { .. }) => {}
            // Posted, or the server is stopping: nobody to deliver to.
            _ => return,
        }
    }
    let queue = unsent.parcels.entry(dest).or_default();
    if queue.len() >= MAX_PARCELS {
        place.local::<ShardFigures>().unsent_dropped += 1;
        return;
    }
    queue.push_back(parcel);
    call_back(service, place, &hub);
}

/// Sends a connection's state to its user's home shard. When that shard's
/// mailbox is full, the connection is marked: whatever its state is when
/// the janitor calls back is sent then.
pub(super) fn send_report(service: &Arc<Service>, place: &mut impl OnShard, report: Report) {
    let hub = place.hub().clone();
    let (conn, user) = (report.conn, report.user.clone());
    let unsent = place.local::<Unsent>();
    match post_report(service, &hub, report) {
        // The latest state is on its way: nothing older is owed.
        Ok(()) if unsent.reports.is_empty() => {}
        Ok(()) => {
            unsent.reports.remove(&conn);
        }
        Err(HubError::MailboxFull { .. }) => {
            if unsent.reports.len() >= MAX_REPORTS && !unsent.reports.contains_key(&conn) {
                place.local::<ShardFigures>().unsent_dropped += 1;
                return;
            }
            unsent.reports.insert(conn, user);
            call_back(service, place, &hub);
        }
        Err(_) => {}
    }
}

/// Posts again what this shard could not, oldest first. When some is still
/// left it goes on after the shard's other work if this pass got anything
/// through (a mailbox drains at its shard's pace), else it asks the janitor
/// to call back later. Run by the janitor's call.
pub(super) fn retry(service: &Arc<Service>, shard: &mut ShardCtx<'_>) {
    let hub = shard.hub().clone();
    shard.local::<Unsent>().called = false;
    let mut posted = 0;
    let marked: Vec<(ConnId, Arc<User>)> = shard
        .local::<Unsent>()
        .reports
        .iter()
        .map(|(&conn, user)| (conn, user.clone()))
        .collect();
    for (conn, user) in marked {
        let report = match shard.identity_mut::<Session>(conn) {
            Some(session) => session.report(conn),
            None => Report::closed(user, conn),
        };
        if !matches!(
            post_report(service, &hub, report),
            Err(HubError::MailboxFull { .. })
        ) {
            shard.local::<Unsent>().reports.remove(&conn);
            posted += 1;
        }
    }
    let unsent = shard.local::<Unsent>();
    for queue in unsent.parcels.values_mut() {
        while let Some(parcel) = queue.front() {
            if let Err(HubError::MailboxFull { .. }) = parcel.post(&hub) {
                break;
            }
            queue.pop_front();
            posted += 1;
        }
    }
    unsent.parcels.retain(|_, queue| !queue.is_empty());
    if unsent.is_empty() {
        return;
    }
    if posted > 0 {
        unsent.called = true;
        let again = service.clone();
        if hub
            .post_run(shard.index(), move |shard| retry(&again, shard))
            .is_ok()
        {
            return;
        }
        shard.local::<Unsent>().called = false;
    }
    call_back(service, shard, &hub);
}

/// Asks the janitor to call this shard back, once until it does.
fn call_back(service: &Service, place: &mut impl OnShard, hub: &Hub) {
    let shard = place.shard();
    let unsent = place.local::<Unsent>();
    if !unsent.called {
        unsent.called = true;
        service.janitor.call_back(shard, hub);
    }
}
