//! What the load generator needs of a connection, whatever it is connected to, so the Palomar server and the
//! reference relay are driven and measured by the same code.

use std::future::Future;

use palomar_proto::MessageId;

use crate::scenario::Scenario;

/// What one incoming frame carried, as far as the load generator is concerned.
#[derive(Debug)]
pub enum Event {
    /// The target took the oldest message this connection sent that it had not acknowledged yet.
    Accepted(MessageId),
    /// A message of the connection's room, with its text.
    Delivered(String),
    /// The target refused something; the text says what.
    Refused(String),
}

/// How to open the connections of a run.
pub trait Wire: Send + Sync + 'static {
    type Inbound: Inbound;
    type Outbound: Outbound;

    /// Connects client `client` of `scenario` and makes it a member of its room, ready to send and receive.
    fn connect(
        &self,
        scenario: &Scenario,
        client: usize,
    ) -> impl Future<Output = anyhow::Result<(Self::Inbound, Self::Outbound)>> + Send;
}

/// The receiving half of a connection; it answers whatever keeps the connection alive by itself.
pub trait Inbound: Send + 'static {
    /// Waits for the next frame and appends what it carried to `events`; `Ok(false)` when the target closed
    /// the connection.
    fn next(&mut self, events: &mut Vec<Event>) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

/// The sending half of a connection.
pub trait Outbound: Send + 'static {
    fn send(&mut self, id: MessageId, text: String) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Says goodbye, when the target has a way to.
    fn close(self) -> impl Future<Output = ()> + Send;
}
