//! Hints over `LISTEN`/`NOTIFY`, off the hot path: sent only when tasks go back to the
//! shared pool (never by a task's own writes, since a `NOTIFY` takes a lock at commit that
//! serialises the commits of every session that notifies).
//!
//! One listener task per store (started by the first [`Notifier::listen`]) keeps a
//! connection of its own (not from the pool: a
//! pooled connection's notifications are dropped), reconnects with backoff when it is
//! lost, and sends an empty queue name each time it is listening again: hints sent
//! meanwhile were lost, so listeners look at every queue. Hints of other schemas in the same
//! database are ignored. The task ends with the store.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use futures::FutureExt;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Client, Config};
use tokio_util::sync::CancellationToken;

use super::errors::{pg_error, pool_error, Doing};
use super::PgStore;
use crate::store::{Notifier, StoreError};

/// The channel every taskmesh store in a database notifies on; payloads are
/// `{schema}/{queue}`.
const CHANNEL: &str = "taskmesh_hints";

/// The longest pause between two attempts to connect the listener.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The listener's end of the hints; dropping it stops the listener.
pub(super) struct Hints {
    sender: broadcast::Sender<String>,
    /// What the listener needs, until the first call to `subscribe` starts it.
    start: Mutex<Option<(Config, String)>>,
    stop: CancellationToken,
    _stop: tokio_util::sync::DropGuard,
}

impl Hints {
    /// The hints of the store with `config`, in `schema`; nothing runs yet.
    pub(super) fn new(config: Config, schema: String) -> Self {
        let (sender, _) = broadcast::channel(crate::store::notify::BACKLOG);
        let stop = CancellationToken::new();
        Self {
            sender,
            start: Mutex::new(Some((config, schema))),
            _stop: stop.clone().drop_guard(),
            stop,
        }
    }

    /// A receiver of the hints; the first call starts the listener task on the current
    /// runtime (so that its first empty name, once listening, reaches this receiver).
    fn subscribe(&self) -> broadcast::Receiver<String> {
        let receiver = self.sender.subscribe();
        if let Some((config, schema)) = self.start.lock().take() {
            let (sender, stop) = (self.sender.clone(), self.stop.clone());
            tokio::spawn(listen(config, schema, sender, stop));
        }
        receiver
    }
}

type Messages = BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>;

/// A connection of its own, with the stream of its asynchronous messages (polling the
/// stream drives the connection).
async fn connect(config: &Config) -> Result<(Client, Messages), StoreError> {
    let failed = |e| pg_error(Doing::Other("connecting the hint listener"), e);
    #[cfg(feature = "postgres-tls")]
    let (client, mut conn) = config
        .connect(super::tls::connector()?)
        .await
        .map_err(failed)?;
    #[cfg(not(feature = "postgres-tls"))]
    let (client, mut conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(failed)?;
    let messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx)).boxed();
    Ok((client, messages))
}

async fn listen(
    config: Config,
    schema: String,
    sender: broadcast::Sender<String>,
    stop: CancellationToken,
) {
    let prefix = format!("{schema}/");
    let mut pause = Duration::from_millis(100);
    loop {
        let session = async {
            let (client, mut messages) = connect(&config).await?;
            subscribe(&client, &mut messages).await?;
            // Hints sent before (or while the listener was away) are lost: look
            // everywhere. (The first one also tells a listener that hints now arrive.)
            let _ = sender.send(String::new());
            pause = Duration::from_millis(100);
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| pg_error(Doing::Other("listening"), e))?;
                if let AsyncMessage::Notification(n) = message {
                    if let Some(queue) = n.payload().strip_prefix(&prefix) {
                        let _ = sender.send(queue.to_owned());
                    }
                }
            }
            Ok::<(), StoreError>(())
        };
        tokio::select! {
            () = stop.cancelled() => return,
            ended = session => if let Err(e) = ended {
                tracing::debug!(error = %e, "the postgres hint listener reconnects");
            },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(jittered(pause)) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Sends `LISTEN` while driving the connection until it is answered.
async fn subscribe(client: &Client, messages: &mut Messages) -> Result<(), StoreError> {
    let failed = |e| pg_error(Doing::Other("listening"), e);
    let sql = format!("LISTEN {CHANNEL}");
    let mut listening = std::pin::pin!(client.batch_execute(&sql));
    loop {
        tokio::select! {
            done = &mut listening => return done.map_err(failed),
            message = messages.next() => match message {
                Some(Err(e)) => return Err(failed(e)),
                None => return Err(StoreError::Unavailable {
                    source: "the hint listener's connection closed".into(),
                }),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// `pause` plus up to a half of it, so that many processes do not reconnect together.
fn jittered(pause: Duration) -> Duration {
    pause + pause.mul_f64(rand::random::<f64>() / 2.0)
}

impl Notifier for PgStore {
    fn notify(&self, queues: Vec<String>) -> BoxFuture<'static, Result<(), StoreError>> {
        let pool = self.pool().clone();
        let prefix = format!("{}/", self.schema());
        async move {
            let client = pool
                .get()
                .await
                .map_err(|e| pool_error(Doing::Other("sending hints"), e))?;
            let payloads: Vec<String> = queues.iter().map(|q| format!("{prefix}{q}")).collect();
            client
                .execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                    &[&CHANNEL, &payloads],
                )
                .await
                .map_err(|e| pg_error(Doing::Other("sending hints"), e))?;
            Ok(())
        }
        .boxed()
    }

    fn listen(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.inner.hints.subscribe())
    }
}
