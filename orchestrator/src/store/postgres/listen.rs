//! The connection that LISTENs for other replicas' notifications.
//!
//! It is a dedicated connection, not a pooled one (LISTEN is session
//! state), kept between calls of `listen()` so that no notification falls
//! between two of them, and dropped on any failure so that the next call
//! reconnects. A connection can die silently (a NAT forgets it, a pooler
//! in transaction mode never delivers): every [`CHECK_EVERY`] it asks the
//! server which channels it listens on, and gives up when that fails, is
//! late, or no longer names the channel.
//!
//! Behind a pooler in transaction mode (PgBouncer) LISTEN is accepted but
//! the session it binds to is lent to other clients between statements, so
//! notifications do not come back, and the check above passes or fails at
//! random. So a new listener first proves that notifications reach it: it
//! sends one to itself through the pool (another session) and waits for it
//! ([`Listener::probe`]). The store gives LISTEN up when they do not, and
//! relies on polling.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Inner, Op};
use crate::store::StoreError;

/// How often a waiting listener checks that its connection still listens.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The payloads of probes start so: a listener ignores other replicas'.
const PROBE: &str = "probe ";

/// A connection that listens on the schema's channel.
pub(super) struct Listener {
    pub(super) client: tokio_postgres::Client,
    /// One item per notification (coalesced while nobody waits); closed
    /// when the connection ends.
    notified: mpsc::Receiver<()>,
    /// A notification taken off `notified` while probing, not yet reported.
    pending: bool,
    /// This listener's probe payload, and the signal that it came back.
    probe: String,
    probed: Arc<Notify>,
    /// Drives the connection; aborted with the listener.
    connection: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Listener {
    /// Opens the connection and LISTENs.
    pub(super) async fn connect(inner: &Inner) -> Result<Listener, StoreError> {
        let mut config = inner.config.clone();
        config.application_name(&inner.listener_name);
        let (client, mut connection) = tokio::time::timeout(inner.op_timeout(), config.connect(NoTls))
            .await
            .map_err(|_| inner.target.timed_out("connecting the listener"))?
            .map_err(|e| inner.target.connect_error(&e))?;
        let (notify, notified) = mpsc::channel(1);
        // Unique enough: a clash would only make one probe pass for two.
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let probe =
            format!("{PROBE}{} {} {}", std::process::id(), nanos.as_nanos(), PROBES.fetch_add(1, Ordering::Relaxed));
        let probed = Arc::new(Notify::new());
        let (mine, came_back) = (probe.clone(), probed.clone());
        let connection = tokio::spawn(async move {
            loop {
                match poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) if n.payload() == mine => came_back.notify_one(),
                    Some(Ok(AsyncMessage::Notification(n))) if n.payload().starts_with(PROBE) => {}
                    Some(Ok(AsyncMessage::Notification(_))) => {
                        // Full: a wake-up is pending already, which is enough.
                        if let Err(mpsc::error::TrySendError::Closed(())) = notify.try_send(()) {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        let listener = Listener { client, notified, pending: false, probe, probed, connection };
        inner.count(Op::Listen);
        let listen = format!("LISTEN \"{}\"", inner.channel);
        tokio::time::timeout(inner.op_timeout(), listener.client.batch_execute(&listen))
            .await
            .map_err(|_| inner.target.timed_out("LISTEN"))?
            .map_err(|e| inner.target.query_error("LISTEN", &e))?;
        Ok(listener)
    }

    /// Whether a notification sent through the pool (another session)
    /// reaches this connection within [`CHECK_EVERY`]; an error when it
    /// cannot be sent or when this connection closes meanwhile (a dead
    /// connection is not a pooler: LISTEN must not be given up for it).
    pub(super) async fn probe(&mut self, inner: &Inner) -> Result<bool, StoreError> {
        let payload = self.probe.clone();
        inner
            .run(Op::Listen, move |conn| {
                Box::pin(async move {
                    conn.execute(
                        "SELECT pg_notify($1, $2)",
                        &[(&conn.inner.channel, Type::TEXT), (&payload, Type::TEXT)],
                    )
                    .await?;
                    Ok(())
                })
            })
            .await?;
        let deadline = tokio::time::sleep(CHECK_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = self.probed.notified() => return Ok(true),
                notified = self.notified.recv() => match notified {
                    // Another replica's: reported by the next `wait`.
                    Some(()) => self.pending = true,
                    None => return Err(self.closed(inner)),
                },
                () = &mut deadline => return Ok(false),
            }
        }
    }

    fn closed(&self, inner: &Inner) -> StoreError {
        StoreError::Unreachable(format!(
            "the connection listening for notifications on {} closed",
            inner.target.shown()
        ))
    }

    /// Resolves at the next notification (at once for one that arrived
    /// since the last call), or fails when the connection is lost.
    pub(super) async fn wait(&mut self, inner: &Inner) -> Result<(), StoreError> {
        if std::mem::take(&mut self.pending) {
            return Ok(());
        }
        loop {
            tokio::select! {
                notified = self.notified.recv() => {
                    return match notified {
                        Some(()) => Ok(()),
                        None => Err(self.closed(inner)),
                    };
                }
                () = tokio::time::sleep(CHECK_EVERY) => self.check(inner).await?,
            }
        }
    }

    /// Fails unless the server answers, in time, that this connection
    /// listens on the channel.
    pub(super) async fn check(&self, inner: &Inner) -> Result<(), StoreError> {
        inner.count(Op::Listen);
        let rows = tokio::time::timeout(CHECK_EVERY, self.client.query_typed("SELECT pg_listening_channels()", &[]))
            .await
            .map_err(|_| inner.target.timed_out("checking the listening connection"))?
            .map_err(|e| inner.target.query_error("checking the listening connection", &e))?;
        let listening = rows.iter().any(|row| row.try_get::<_, &str>(0).is_ok_and(|c| c == inner.channel));
        if listening {
            Ok(())
        } else {
            Err(StoreError::Unreachable(format!(
                "the connection listening for notifications on {} no longer listens on {}",
                inner.target.shown(),
                inner.channel
            )))
        }
    }
}
