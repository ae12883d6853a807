//! The HTTP/1.1 server around the app: hyper serving poem's endpoint, with the time limits poem's
//! own server does not offer (SPEC §7). A client has `server.header_timeout` (10 s) from the
//! first byte of a request to its last header, and a keep-alive connection waits at most
//! `server.idle_timeout` (60 s) for its next request; a client that disconnects mid-request has
//! its handler dropped, which stops its database statement (see `db::lanes`).
//!
//! hyper has one timer for both waits (`header_read_timeout`, which starts when it begins to wait
//! for a request, idle or not): it gets a per-connection [`Clock`] whose deadline is the idle one
//! until the connection reads a byte, then the header one.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// How long each wait of a connection may last.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its headers.
    pub header: Duration,
    /// From the end of a response (or the connection's start) to the next request's first byte.
    pub idle: Duration,
}

/// Serves `endpoint` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (at most `grace`).
pub async fn run<E>(
    listener: TcpListener,
    endpoint: E,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    E: Endpoint + 'static,
{
    let endpoint = Arc::new(endpoint.map_to_response());
    let local = match listener.local_addr() {
        Ok(addr) => Addr::SocketAddr(addr),
        Err(_) => Addr::Custom("tcp", "".into()),
    };
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let clock = Clock::new(timeouts);
        let io = TokioIo::new(Watched {
            inner: stream,
            clock: clock.state.clone(),
        });
        let (endpoint, local) = (endpoint.clone(), local.clone());
        let service = hyper::service::service_fn(move |request| {
            let (endpoint, local) = (endpoint.clone(), local.clone());
            async move {
                let request = poem::Request::from((
                    request,
                    LocalAddr(local),
                    RemoteAddr(Addr::SocketAddr(remote)),
                    Scheme::HTTP,
                ));
                let response: hyper::Response<_> = endpoint.get_response(request).await.into();
                Ok::<_, Infallible>(response)
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(clock)
            // The clock shortens this to the header timeout once the request's first byte is in.
            .header_read_timeout(timeouts.idle)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, remote = %remote, "connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("requests still running after {grace:?}: stopping anyway");
        }
    }
}

/// What the clock and the connection's reads share.
#[derive(Debug)]
struct ClockState {
    timeouts: Timeouts,
    /// When the current wait for a request began, and when its first byte was read.
    wait: Mutex<(Instant, Option<Instant>)>,
    /// Whether the first byte of the awaited request has been read (a cheap check per read).
    started: AtomicBool,
}

impl ClockState {
    fn deadline(&self) -> Instant {
        let (since, first_byte) = *self.wait.lock().unwrap_or_else(PoisonError::into_inner);
        match first_byte {
            Some(at) => at + self.timeouts.header,
            None => since + self.timeouts.idle,
        }
    }
}

/// hyper's timer for one connection.
#[derive(Debug, Clone)]
struct Clock {
    state: Arc<ClockState>,
}

impl Clock {
    fn new(timeouts: Timeouts) -> Self {
        Self {
            state: Arc::new(ClockState {
                timeouts,
                wait: Mutex::new((Instant::now(), None)),
                started: AtomicBool::new(false),
            }),
        }
    }
}

impl Timer for Clock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(Fixed(Box::pin(tokio::time::sleep(duration))))
    }

    /// hyper asks for this when it starts waiting for a request: a new wait begins.
    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn Sleep>> {
        *self
            .state
            .wait
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (Instant::now(), None);
        self.state.started.store(false, Ordering::Relaxed);
        let deadline = self.state.deadline();
        Box::pin(RequestWait {
            state: self.state.clone(),
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            deadline,
        })
    }
}

/// A plain sleep (hyper's other timers; the HTTP/1 server uses none today).
struct Fixed(Pin<Box<tokio::time::Sleep>>);

impl Future for Fixed {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Sleep for Fixed {}

/// The wait for one request: ends at the idle deadline, or at the header deadline once a byte of
/// the request has been read. hyper polls it again after every read while the headers are
/// incomplete, which is when the deadline can have moved.
struct RequestWait {
    state: Arc<ClockState>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    deadline: Instant,
}

impl Future for RequestWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.state.deadline();
        if deadline != self.deadline {
            self.deadline = deadline;
            self.sleep.as_mut().reset(deadline.into());
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl Sleep for RequestWait {}

/// The connection's socket, noting the first byte read during each wait for a request.
struct Watched<S> {
    inner: S,
    clock: Arc<ClockState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && !self.clock.started.swap(true, Ordering::Relaxed) {
            self.clock
                .wait
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1 = Some(Instant::now());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
