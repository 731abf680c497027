//! Reading what a connection sends before it is served — its request headers, or its TLS
//! ClientHello — into a buffer that grows only as bytes arrive: an idle connection holds no
//! buffer at all, a slow one a few hundred bytes. Only then does the connection get hyper's
//! and rustls's buffers, through [`Prefixed`], which hands the bytes read so far back first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Request headers (request line included) larger than this are refused.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// A TLS record carries at most 2^14 bytes plus some overhead; a first record larger than
/// this is not a ClientHello.
const MAX_RECORD: usize = 5 + (1 << 14) + 256;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    More,
    Done,
    TooLarge,
    /// Not what this port speaks (e.g. plain HTTP to the TLS port).
    Wrong,
}

#[derive(Debug)]
pub(super) enum HeadError {
    /// The client closed (or reset) the connection first.
    Closed,
    TooLarge,
    Wrong,
}

/// Whether `buf` holds a complete request head; `new` is where the bytes not looked at yet
/// start. Empty lines before the request line are dropped (RFC 9112 §2.2), so they neither
/// count as a head nor grow the buffer.
pub(super) fn request_head(buf: &mut Vec<u8>, new: usize) -> Progress {
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let from = if skip > 0 {
        buf.drain(..skip);
        0
    } else {
        new.saturating_sub(3)
    };
    let from = from.min(buf.len());
    // Where the head ends (after its blank line), if it does.
    let end = buf[from..]
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| from + i + 2)
        .into_iter()
        .chain(
            buf[from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| from + i + 4),
        )
        .min();
    if end.is_some_and(|e| e <= MAX_HEAD) {
        Progress::Done
    } else if end.is_some() || buf.len() > MAX_HEAD {
        Progress::TooLarge
    } else {
        Progress::More
    }
}

/// Whether `buf` holds the first TLS record (the ClientHello, or its first part).
// One signature for every check, as `request_head` needs (it drains the buffer).
#[allow(clippy::ptr_arg)]
pub(super) fn tls_record(buf: &mut Vec<u8>, _new: usize) -> Progress {
    match buf.first() {
        None => return Progress::More,
        Some(0x16) => {}
        Some(_) => return Progress::Wrong,
    }
    if buf.len() < 5 {
        return Progress::More;
    }
    let len = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len > MAX_RECORD {
        Progress::TooLarge
    } else if buf.len() >= len {
        Progress::Done
    } else {
        Progress::More
    }
}

/// Anything sent yet: the first bytes of the connection.
#[allow(clippy::ptr_arg)]
pub(super) fn anything(buf: &mut Vec<u8>, _new: usize) -> Progress {
    if buf.is_empty() {
        Progress::More
    } else {
        Progress::Done
    }
}

/// Room for the next read: nothing until bytes come, then twice what came so far.
fn grow(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() < 64 {
        buf.reserve(buf.len().clamp(512, MAX_RECORD));
    }
}

/// Reads a plain TCP connection into `buf` until `done` says so. Waits for readiness first,
/// so a connection that sends nothing never gets a buffer.
pub(super) async fn read_tcp(
    s: &TcpStream,
    buf: &mut Vec<u8>,
    done: fn(&mut Vec<u8>, usize) -> Progress,
) -> Result<(), HeadError> {
    let mut new = 0;
    loop {
        match done(buf, new) {
            Progress::Done => return Ok(()),
            Progress::TooLarge => return Err(HeadError::TooLarge),
            Progress::Wrong => return Err(HeadError::Wrong),
            Progress::More => {}
        }
        s.readable().await.map_err(|_| HeadError::Closed)?;
        new = buf.len();
        grow(buf);
        match s.try_read_buf(buf) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// Reads any stream (TLS) into `buf` until its request head is complete.
pub(super) async fn read_stream<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<(), HeadError> {
    let mut new = 0;
    loop {
        match request_head(buf, new) {
            Progress::Done => return Ok(()),
            Progress::TooLarge => return Err(HeadError::TooLarge),
            Progress::Wrong => return Err(HeadError::Wrong),
            Progress::More => {}
        }
        new = buf.len();
        grow(buf);
        match s.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(_) => {}
        }
    }
}

/// A stream that first yields the bytes already read from it.
pub(super) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(super) fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(out.remaining());
            out.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_are_complete_at_the_blank_line() {
        let mut b = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        assert_eq!(request_head(&mut b, 0), Progress::More);
        let n = b.len();
        b.extend_from_slice(b"\r\n");
        assert_eq!(
            request_head(&mut b, n),
            Progress::Done,
            "the end spans two reads"
        );
        let mut b = b"GET / HTTP/1.0\n\n".to_vec();
        assert_eq!(request_head(&mut b, 0), Progress::Done);
        // Empty lines first are dropped, not taken for a head.
        let mut b = b"\r\n\r\n\r\nGET".to_vec();
        assert_eq!(request_head(&mut b, 0), Progress::More);
        assert_eq!(b, b"GET");
        let mut b = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(request_head(&mut b, 0), Progress::TooLarge);
        // Also when the whole oversized head came in one read.
        let mut b = vec![b'a'; MAX_HEAD];
        b.extend_from_slice(b"\r\n\r\n");
        assert_eq!(request_head(&mut b, 0), Progress::TooLarge);
    }

    #[test]
    fn the_first_tls_record_is_read_whole() {
        let mut b = vec![0x16, 3, 1, 0, 4, 1, 2];
        assert_eq!(tls_record(&mut b, 0), Progress::More);
        b.extend_from_slice(&[3, 4]);
        assert_eq!(tls_record(&mut b, 0), Progress::Done);
        assert_eq!(
            tls_record(&mut b"GET / HTTP/1.1".to_vec(), 0),
            Progress::Wrong
        );
        assert_eq!(
            tls_record(&mut vec![0x16, 3, 1, 0xff, 0xff], 0),
            Progress::TooLarge
        );
    }

    #[tokio::test]
    async fn prefixed_yields_the_prefix_then_the_stream() {
        let inner: &[u8] = b" world";
        let mut p = Prefixed::new(b"hello".to_vec(), inner);
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut p, &mut out)
            .await
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
