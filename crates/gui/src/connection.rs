//! One sign-in's engine, started on the tokio runtime that runs beside the window. A small task moves the
//! engine's events into a queue the window reads each frame and asks egui for a repaint whenever there is
//! news (an event, or a change in the number of messages waiting), so an idle window does not redraw.

use std::sync::mpsc as std_mpsc;

use palomar_client::engine::StartError;
use palomar_client::{Command, Engine, EngineConfig, Event};
use tokio::sync::{mpsc, watch};

pub struct Connection {
    commands: mpsc::Sender<Command>,
    events: std_mpsc::Receiver<Event>,
    outbox: watch::Receiver<usize>,
}

/// Why a command did not reach the engine.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the client is busy; try again in a moment")]
    Busy,
    #[error("the connection has stopped")]
    Stopped,
}

impl Connection {
    /// Opens the account's state and starts connecting; `repaint` is called whenever the window should look
    /// at the connection again.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: EngineConfig,
        repaint: impl Fn() + Send + 'static,
    ) -> Result<Connection, StartError> {
        let mut engine = {
            let _entered = runtime.enter();
            Engine::start(config)?
        };
        let commands = engine.commands();
        let outbox = engine.outbox_len();
        let mut outbox_changes = outbox.clone();
        let (tx, events) = std_mpsc::channel();
        runtime.spawn(async move {
            let mut watching = true;
            loop {
                tokio::select! {
                    event = engine.next_event() => {
                        let Some(event) = event else { break };
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    changed = outbox_changes.changed(), if watching => watching = changed.is_ok(),
                }
                repaint();
            }
            repaint();
        });
        Ok(Connection { commands, events, outbox })
    }

    /// The next event, if one is waiting.
    pub fn try_event(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    pub fn send(&self, command: Command) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SendError::Busy,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Messages in the outbox, not yet stored by the server.
    pub fn outbox_len(&self) -> usize {
        *self.outbox.borrow()
    }
}

impl Drop for Connection {
    /// Signing out or closing the window: the engine says goodbye; what was not stored stays in the outbox.
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Quit);
    }
}
