//! [`Notifier`], what shows an [`Alert`] as a desktop notification: the platform's notification service in the
//! real window (through `notify-rust`), whatever the caller gives in tests, which record what would be shown.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use palomar_client::model::Alert;

/// Shows an alert to a user who is not looking at the window; the window decides when.
#[derive(Clone)]
pub struct Notifier(Arc<dyn Fn(&Alert) + Send + Sync>);

impl Notifier {
    /// A notifier that does `show` for each alert.
    pub fn new(show: impl Fn(&Alert) + Send + Sync + 'static) -> Notifier {
        Notifier(Arc::new(show))
    }

    /// The platform's notification service. The call can wait on D-Bus, so it is made on `runtime`'s blocking
    /// threads, never the window's; a platform without the service (no notification daemon, no session bus,
    /// as in CI) is said once in the log and otherwise left alone: the window's attention request remains.
    pub fn desktop(runtime: tokio::runtime::Handle) -> Notifier {
        let warned = Arc::new(AtomicBool::new(false));
        Notifier::new(move |alert| {
            let Alert { title, body } = alert.clone();
            let warned = Arc::clone(&warned);
            runtime.spawn_blocking(move || {
                let shown = notify_rust::Notification::new().appname("Palomar").summary(&title).body(&body).show();
                if let Err(error) = shown
                    && !warned.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(%error, "cannot show a desktop notification (the next failures are not logged)");
                }
            });
        })
    }

    pub fn show(&self, alert: &Alert) {
        (self.0)(alert);
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Notifier")
    }
}
