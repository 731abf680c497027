//! The socket lettre speaks SMTP over. lettre's step-by-step `AsyncSmtpConnection` runs on a
//! stream we open ourselves (a `TcpStream` with `TCP_NODELAY`: lettre leaves Nagle on, which
//! adds ~40 ms to the body on loopback; or our own TLS stream for implicit TLS), wrapped in
//! [`Wire`], which lets the session see two things lettre doesn't tell: the TLS version a
//! STARTTLS handshake negotiated (a [`ServerHelloSniffer`] fed with what is read in the clear),
//! and whether the message terminator had been sent when the body stage timed out (a count of
//! the reads polled: lettre reads the final reply only after writing the whole message).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::ServerHelloSniffer;

/// Counts what happened on the socket, shared between [`Wire`] and the sender.
#[derive(Debug, Default)]
pub(super) struct WireStats {
    reads_polled: AtomicU64,
    sniffer: Mutex<ServerHelloSniffer>,
}

impl WireStats {
    /// How many reads have been polled on the socket so far.
    pub(super) fn reads_polled(&self) -> u64 {
        self.reads_polled.load(Ordering::Relaxed)
    }

    /// The ServerHello sniffer (a poisoned lock is taken over: it only holds bytes seen).
    pub(super) fn sniffer(&self) -> MutexGuard<'_, ServerHelloSniffer> {
        self.sniffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a [`Wire`] wraps: a TCP stream, or our own TLS stream for implicit TLS.
pub(super) enum Inner {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The stream lettre talks over, counting reads and sniffing the ServerHello into `stats`.
pub(super) struct Wire {
    inner: Inner,
    peer: SocketAddr,
    stats: Arc<WireStats>,
}

impl Wire {
    pub(super) fn new(inner: Inner, peer: SocketAddr, stats: Arc<WireStats>) -> Wire {
        Wire { inner, peer, stats }
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Wire({})", self.peer)
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.stats.reads_polled.fetch_add(1, Ordering::Relaxed);
        let before = buf.filled().len();
        let r = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let (Poll::Ready(Ok(())), Inner::Tcp(_)) = (&r, &this.inner) {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                this.stats.sniffer().feed(new);
            }
        }
        r
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}
