//! The byte stream of a connection between nodes: plain TCP, or TLS over it (the `tls`
//! feature; see `TlsConfig`).
//!
//! The handshake runs over a whole [`Stream`]; an established connection is split into a
//! [`ReadHalf`] for its reader and a [`WriteHalf`] for its writer. A plain TCP stream is
//! cloned for that (both halves are the same socket); a TLS stream holds one TLS session,
//! so its halves share it behind a lock that each holds only for one poll.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};

use super::cluster::Cluster;
use super::socket::Socket;

#[cfg(feature = "tls")]
type Tls = futures_rustls::TlsStream<Socket>;

/// A connection's byte stream, before it is split.
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<Tls>),
}

/// The reading half of an established connection.
pub(crate) enum ReadHalf {
    Plain(Socket),
    #[cfg(feature = "tls")]
    Tls(futures_lite::io::ReadHalf<Tls>),
}

/// The writing half of an established connection.
pub(crate) enum WriteHalf {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(futures_lite::io::WriteHalf<Tls>),
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.get_ref().0.tcp(),
        }
    }

    /// `true` over TLS: the bytes on the socket are not the frames themselves, so nothing
    /// may write to the socket but the TLS session.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(stream) => (
                ReadHalf::Plain(Socket::new(stream.clone())),
                WriteHalf::Plain(stream),
            ),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => {
                let (read, write) = futures_lite::io::split(*stream);
                (ReadHalf::Tls(read), WriteHalf::Tls(write))
            }
        }
    }
}

/// Forwards a poll to whichever stream `$self` holds.
macro_rules! forward {
    ($self:ident, $stream:ident => $poll:expr) => {
        match $self.get_mut() {
            Self::Plain($stream) => $poll,
            #[cfg(feature = "tls")]
            Self::Tls($stream) => $poll,
        }
    };
}

/// `AsyncRead` for a type whose variants each hold a reader.
macro_rules! forward_read {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                forward!(self, s => Pin::new(s).poll_read(cx, buf))
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [io::IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                forward!(self, s => Pin::new(s).poll_read_vectored(cx, bufs))
            }
        }
    };
}

/// `AsyncWrite` for a type whose variants each hold a writer. (Over TLS, a flush writes
/// what the session has encrypted but not yet written.)
macro_rules! forward_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                forward!(self, s => Pin::new(s).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                forward!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                forward!(self, s => Pin::new(s).poll_flush(cx))
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                forward!(self, s => Pin::new(s).poll_close(cx))
            }
        }
    };
}

forward_read!(Stream);
forward_write!(Stream);
forward_read!(ReadHalf);
forward_write!(WriteHalf);

impl Cluster {
    /// Runs the TLS handshake of an accepted connection, if this node has TLS.
    pub(super) async fn secure_accepted(&self, tcp: TcpStream) -> std::io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.config.tls {
            return tls.accept(tcp).await;
        }
        Ok(Stream::Plain(tcp))
    }

    /// Runs the TLS handshake of a connection dialled to `address`, if this node has TLS.
    pub(super) async fn secure_dialled(
        &self,
        address: &str,
        tcp: TcpStream,
    ) -> std::io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.config.tls {
            return tls.connect(address, tcp).await;
        }
        let _ = address;
        Ok(Stream::Plain(tcp))
    }
}
