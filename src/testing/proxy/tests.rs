//! Each mode with real sockets on 127.0.0.1, an echo server (or a server the test
//! holds) behind the proxy.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{Mode, Proxy};

/// How long anything that should happen at once may take.
const PROMPT: Duration = Duration::from_secs(5);

/// How long a read must see nothing to count as silence.
const QUIET: Duration = Duration::from_millis(300);

/// A server that echoes every connection.
async fn echo() -> SocketAddr {
    let (addr, mut accepted) = server().await;
    tokio::spawn(async move {
        while let Some(mut s) = accepted.recv().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that hands each connection it accepts to the test.
async fn server() -> (SocketAddr, mpsc::UnboundedReceiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

async fn connect(proxy: &Proxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).await.unwrap()
}

/// Writes `msg` and reads as many bytes back.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    timeout(PROMPT, s.read_exact(&mut back))
        .await
        .expect("the echo comes back")
        .unwrap();
    back
}

/// True if a read sees neither bytes nor a close for [`QUIET`].
async fn silent(s: &mut TcpStream) -> bool {
    let mut buf = [0; 64];
    timeout(QUIET, s.read(&mut buf)).await.is_err()
}

/// Asserts that the connection ends (EOF or reset) promptly, and returns how.
async fn ends(s: &mut TcpStream) -> ErrorKind {
    let mut buf = [0; 64];
    match timeout(PROMPT, s.read(&mut buf)).await {
        Ok(Ok(0)) => ErrorKind::UnexpectedEof,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => e.kind(),
        other => panic!("expected the connection to end, got {other:?}"),
    }
}

/// Polls `done` (every few milliseconds, at most [`PROMPT`]).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PROMPT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts_open_connections() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    assert_eq!(proxy.mode(), Mode::Pass);
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    assert_eq!(round_trip(&mut a, b"hello").await, b"hello");
    assert_eq!(round_trip(&mut b, b"world").await, b"world");
    assert_eq!(proxy.connections(), 2);
    drop(a);
    until("one connection left", || proxy.connections() == 1).await;
}

#[tokio::test]
async fn a_black_hole_keeps_connections_open_and_silent_until_pass_again() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut old = connect(&proxy).await;
    assert_eq!(round_trip(&mut old, b"before").await, b"before");
    proxy.set_mode(Mode::BlackHole);
    old.write_all(b"lost").await.unwrap();
    assert!(silent(&mut old).await, "an open connection hears nothing");
    let mut new = connect(&proxy).await;
    new.write_all(b"lost too").await.unwrap();
    assert!(silent(&mut new).await, "a new connection hears nothing");
    until("both connections open", || proxy.connections() == 2).await;
    proxy.set_mode(Mode::Pass);
    let mut fresh = connect(&proxy).await;
    assert_eq!(round_trip(&mut fresh, b"after").await, b"after");
    assert_eq!(
        ends(&mut new).await,
        ErrorKind::UnexpectedEof,
        "closed at the heal"
    );
}

#[tokio::test]
async fn a_black_hole_hides_a_close_until_the_heal() {
    let (addr, mut accepted) = server().await;
    let proxy = Proxy::start(addr).await.unwrap();
    let mut client = connect(&proxy).await;
    let server_side = timeout(PROMPT, accepted.recv()).await.unwrap().unwrap();
    proxy.set_mode(Mode::BlackHole);
    drop(server_side);
    assert!(silent(&mut client).await, "the close is hidden");
    proxy.set_mode(Mode::Pass);
    assert_eq!(ends(&mut client).await, ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn reset_resets_open_connections_and_new_ones() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut old = connect(&proxy).await;
    assert_eq!(round_trip(&mut old, b"hi").await, b"hi");
    proxy.set_mode(Mode::Reset);
    assert_eq!(ends(&mut old).await, ErrorKind::ConnectionReset);
    let mut new = connect(&proxy).await;
    assert_eq!(ends(&mut new).await, ErrorKind::ConnectionReset);
    until("no connection open", || proxy.connections() == 0).await;
}

#[tokio::test]
async fn delay_adds_latency_each_way_and_keeps_the_order() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let d = Duration::from_millis(150);
    proxy.set_mode(Mode::Delay(d));
    let mut s = connect(&proxy).await;
    let began = Instant::now();
    assert_eq!(round_trip(&mut s, b"ping").await, b"ping");
    let took = began.elapsed();
    assert!(
        took >= 2 * d,
        "a round trip took {took:?}, less than twice {d:?}"
    );
    s.write_all(b"a").await.unwrap();
    s.write_all(b"b").await.unwrap();
    proxy.set_mode(Mode::Pass);
    assert_eq!(
        round_trip(&mut s, b"c").await,
        b"a",
        "a later chunk never overtakes a delayed one"
    );
    let mut rest = [0; 2];
    timeout(PROMPT, s.read_exact(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&rest, b"bc");
}

#[tokio::test]
async fn a_client_close_closes_the_server_side() {
    let (addr, mut accepted) = server().await;
    let proxy = Proxy::start(addr).await.unwrap();
    let client = connect(&proxy).await;
    let mut server_side = timeout(PROMPT, accepted.recv()).await.unwrap().unwrap();
    drop(client);
    assert_eq!(ends(&mut server_side).await, ErrorKind::UnexpectedEof);
    until("no connection open", || proxy.connections() == 0).await;
}

#[tokio::test]
async fn a_server_close_closes_the_client_side() {
    let (addr, mut accepted) = server().await;
    let proxy = Proxy::start(addr).await.unwrap();
    let mut client = connect(&proxy).await;
    let server_side = timeout(PROMPT, accepted.recv()).await.unwrap().unwrap();
    drop(server_side);
    assert_eq!(ends(&mut client).await, ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn cut_refuses_connects_and_restore_listens_on_the_same_port() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let addr = proxy.addr();
    let mut old = connect(&proxy).await;
    assert_eq!(round_trip(&mut old, b"x").await, b"x");
    proxy.cut();
    assert_eq!(ends(&mut old).await, ErrorKind::UnexpectedEof);
    let deadline = Instant::now() + PROMPT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "connects still accepted after the cut"
        );
        tokio::task::yield_now().await;
    }
    let refused = TcpStream::connect(addr).await.map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    proxy.restore().await.unwrap();
    assert_eq!(proxy.addr(), addr);
    let mut new = connect(&proxy).await;
    assert_eq!(round_trip(&mut new, b"back").await, b"back");
}

#[tokio::test]
async fn a_dropped_proxy_closes_its_connections() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut s = connect(&proxy).await;
    assert_eq!(round_trip(&mut s, b"x").await, b"x");
    drop(proxy);
    assert_eq!(ends(&mut s).await, ErrorKind::UnexpectedEof);
}

/// Connects from a port of its own, which `sources` names `source`.
async fn connect_as(proxy: &Proxy, sources: &Sources, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    sources.lock().insert(port, source.to_owned());
    socket.connect(proxy.addr()).await.unwrap()
}

type Sources = std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<u16, String>>>;

#[tokio::test]
async fn a_source_mode_applies_to_the_connections_of_that_source_only() {
    let sources = Sources::default();
    let names = sources.clone();
    let classify = std::sync::Arc::new(move |client: SocketAddr, proxy: SocketAddr| {
        assert_eq!(proxy.ip(), client.ip(), "both ends are on 127.0.0.1");
        names.lock().get(&client.port()).cloned()
    });
    let proxy = Proxy::start_classified(echo().await, classify)
        .await
        .unwrap();
    let mut a = connect_as(&proxy, &sources, "a").await;
    let mut b = connect_as(&proxy, &sources, "b").await;
    assert_eq!(round_trip(&mut a, b"a").await, b"a");
    proxy.set_source_mode("a", Some(Mode::BlackHole));
    a.write_all(b"lost").await.unwrap();
    assert!(
        silent(&mut a).await,
        "an open connection of a hears nothing"
    );
    assert_eq!(round_trip(&mut b, b"b").await, b"b", "b still passes");
    let mut a2 = connect_as(&proxy, &sources, "a").await;
    a2.write_all(b"lost too").await.unwrap();
    assert!(silent(&mut a2).await, "a new connection of a hears nothing");
    proxy.set_mode(Mode::Reset);
    assert_eq!(ends(&mut b).await, ErrorKind::ConnectionReset);
    assert!(silent(&mut a2).await, "a's own mode wins over the proxy's");
    proxy.set_mode(Mode::Pass);
    proxy.set_source_mode("a", None);
    let mut a3 = connect_as(&proxy, &sources, "a").await;
    assert_eq!(round_trip(&mut a3, b"back").await, b"back");
}
