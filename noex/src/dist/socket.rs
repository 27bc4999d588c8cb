//! A connection's TCP socket as its reader reads it (plain, or under TLS): it reads the
//! socket itself and, when it finds nothing, waits for it in the poller of the scheduler
//! thread it runs on (see `node::executors::poller`), so that a frame arriving for a
//! sleeping thread wakes that thread, and no other first. Off the node's threads it waits
//! in async-io's reactor. Writes go through async-io (see `transport`).

use std::io::{self, IoSliceMut, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;

use crate::node::executors::poller::Watch;
use crate::node::executors::watch_readable;

/// See the module docs.
pub(crate) struct Socket {
    /// For writing, and for what else async-net offers.
    tcp: TcpStream,
    socket: Arc<Async<std::net::TcpStream>>,
    /// The socket's watch in the poller of the thread that last waited for it.
    watch: Option<Watch>,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream) -> Socket {
        Socket {
            socket: tcp.clone().into(),
            tcp,
            watch: None,
        }
    }

    /// The socket, as async-net has it (under TLS: see `transport`).
    #[cfg(feature = "tls")]
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Reads with `read` until it reads or fails; when it finds nothing, the task waits for
    /// the socket to be readable.
    fn poll_with(
        &mut self,
        cx: &mut Context<'_>,
        mut read: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match read(self.socket.get_ref()) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => return Poll::Ready(result),
            }
            match watch_readable(&mut self.watch, &self.socket, cx.waker()) {
                // Armed: the thread's poller wakes the task.
                Some(Ok(())) => return Poll::Pending,
                Some(Err(error)) => return Poll::Ready(Err(error)),
                // Not on a scheduler thread.
                None => {
                    self.watch = None;
                    std::task::ready!(self.socket.poll_readable(cx))?;
                }
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_with(cx, |mut socket| socket.read(&mut *buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_with(cx, |mut socket| socket.read_vectored(&mut *bufs))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::Node;

    async fn start(name: &str, seed: Option<&Node>) -> Node {
        crate::dist::testing::start_node(name, "socket tests", seed).await
    }

    #[test]
    fn a_connections_reader_waits_in_its_threads_poller() {
        smol::block_on(async {
            let b = start("socket-b", None).await;
            let a = start("socket-a", Some(&b)).await;
            let c = start("socket-c", Some(&b)).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            // Each node's readers, once they found nothing to read, wait in a poller of
            // the node's threads: one socket watched per connection.
            for node in [&a, &b, &c] {
                while node.connected_nodes().len() < 2 || node.inner.executors.watched_sockets() < 2
                {
                    assert!(
                        Instant::now() < deadline,
                        "{:?} watches {} sockets, with {} peers",
                        node.local_node_id(),
                        node.inner.executors.watched_sockets(),
                        node.connected_nodes().len()
                    );
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
                assert_eq!(node.inner.executors.watched_sockets(), 2);
            }
            // A connection that ends leaves the poller.
            c.shutdown();
            for node in [&a, &b] {
                while node.connected_nodes().len() > 1 || node.inner.executors.watched_sockets() > 1
                {
                    assert!(
                        Instant::now() < deadline,
                        "{:?} still watches {} sockets",
                        node.local_node_id(),
                        node.inner.executors.watched_sockets()
                    );
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
                assert_eq!(node.inner.executors.watched_sockets(), 1);
            }
        });
    }
}
