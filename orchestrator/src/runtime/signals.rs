//! SIGINT and SIGTERM (Ctrl-C only, off Unix), as one stream of "stop" requests.
//!
//! Only with the `signals` cargo feature (default), which enables tokio's
//! `signal` feature. Without it, [`Signals`] is a type with no value: the
//! driver's `Option<Signals>` is always `None`, and nothing here reaches tokio.

#[cfg(feature = "signals")]
use crate::error::Error;

/// Without the `signals` feature: no signal can be listened for.
#[cfg(not(feature = "signals"))]
pub(crate) enum Signals {}

#[cfg(not(feature = "signals"))]
impl Signals {
    pub(crate) async fn recv(&mut self) {
        match *self {}
    }
}

/// Listens for the signals that ask the process to stop.
#[cfg(feature = "signals")]
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

#[cfg(feature = "signals")]
impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime.
    pub(crate) fn install() -> Result<Self, Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
                terminate: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Completes at the next SIGINT or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
