//! A TCP proxy in front of the test server that a test can cut and restore, to make
//! PostgreSQL unreachable without touching the server.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections from a local port to `target` while up.
#[derive(Debug)]
pub struct Proxy {
    target: SocketAddr,
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy = Proxy {
            target,
            addr,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and stops listening: connects are refused until
    /// [`restore`](Self::restore).
    pub fn cut(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, Arc::clone(&self.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let (mut client, mut server) = (client, server);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().push(pipe);
            }
        });
        self.tasks.lock().push(accept);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
