//! One proxied connection: what each mode does with its bytes and with its end.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::modes::ModeOf;
use super::{Mode, Shared};

/// The most bytes read at once: one chunk, delayed as a whole.
const CHUNK: usize = 16 * 1024;

/// Chunks waiting to be written, per direction, before reading waits too.
const QUEUE: usize = 256;

/// Serves `client` on a task of its own until it ends or `stop` is cancelled; it is
/// counted as open until then.
pub(super) fn spawn(client: TcpStream, shared: &Arc<Shared>, stop: CancellationToken) {
    let open = Open::new(shared);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let _open = open;
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = serve(client, &shared) => {}
        }
    });
}

/// Counts a connection as open while it lives.
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(shared))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(client: TcpStream, shared: &Shared) {
    let mode = ModeOf::new(
        shared.modes.subscribe(),
        source(&client, shared),
        Arc::clone(&shared.dropped),
    );
    match mode.now() {
        Mode::Reset => reset(&client),
        Mode::BlackHole => sink(client, mode).await,
        Mode::Pass | Mode::Delay(_) => match TcpStream::connect(shared.target).await {
            Ok(server) => relay(client, server, mode).await,
            Err(_) => reset(&client),
        },
    }
}

/// The name the proxy's classifier gives the connection's source, if any.
fn source(client: &TcpStream, shared: &Shared) -> Option<String> {
    let classify = shared.classify.as_ref()?;
    classify(client.peer_addr().ok()?, client.local_addr().ok()?)
}

/// Forwards both ways until one side ends (hidden while the mode is a black hole) or
/// the mode becomes [`Mode::Reset`].
async fn relay(mut client: TcpStream, mut server: TcpStream, mut mode: ModeOf) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let mut rst = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        tokio::select! {
            _ = pump(&mut cr, &mut sw, mode.clone()) => false,
            _ = pump(&mut sr, &mut cw, mode.clone()) => false,
            _ = mode.until(|m| m == Mode::Reset) => true,
        }
    };
    if !rst {
        let after = mode.until(|m| m != Mode::BlackHole).await;
        rst = after == Some(Mode::Reset);
    }
    if rst {
        reset(&client);
        reset(&server);
    }
}

/// A connection accepted during a black hole: read and dropped until the client closes
/// or the mode changes, then closed (reset if the mode became [`Mode::Reset`]).
async fn sink(mut client: TcpStream, mut mode: ModeOf) {
    let mut buf = vec![0; CHUNK];
    let counter = mode.clone();
    let drain = async {
        while let Ok(n @ 1..) = client.read(&mut buf).await {
            counter.dropped(n);
        }
    };
    tokio::select! {
        _ = drain => return,
        _ = mode.until(|m| m != Mode::BlackHole) => {}
    }
    if mode.now() == Mode::Reset {
        reset(&client);
    }
}

/// Copies `from` to `to` in the mode of each chunk as it is read, until `from` ends
/// (after writing what was read) or either side fails.
async fn pump(from: &mut ReadHalf<'_>, to: &mut WriteHalf<'_>, mode: ModeOf) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        loop {
            let mut buf = vec![0; CHUNK];
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            buf.truncate(n);
            let due = match mode.now() {
                Mode::Pass => Instant::now(),
                Mode::Delay(d) => Instant::now() + d,
                Mode::BlackHole | Mode::Reset => {
                    mode.dropped(n);
                    continue;
                }
            };
            if tx.send((due, buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async {
        while let Some((due, buf)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            to.write_all(&buf).await?;
        }
        Ok(())
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Makes the socket's close an RST (SO_LINGER 0); it is sent when the socket is dropped.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}
