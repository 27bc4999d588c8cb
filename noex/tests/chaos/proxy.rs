//! A TCP proxy: a replaced node, bound to another loopback address than the one it
//! advertises, is reached through it at its advertised address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Forwards connections made to `from` to `to`: a replaced node, bound to another
/// loopback address, is reached at the address it advertises.
pub(crate) fn proxy(from: SocketAddr, to: SocketAddr) -> smol::Task<()> {
    smol::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match smol::net::TcpListener::bind(from).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    smol::Timer::after(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the proxy at {from} cannot bind: {e}"),
            }
        };
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                continue;
            };
            smol::spawn(async move {
                let Ok(outbound) = smol::net::TcpStream::connect(to).await else {
                    return;
                };
                let (a, b) = (inbound.clone(), outbound.clone());
                let up = async move {
                    let _ = futures_lite::io::copy(a.clone(), b.clone()).await;
                    let _ = b.shutdown(std::net::Shutdown::Both);
                    let _ = a.shutdown(std::net::Shutdown::Both);
                };
                let down = async move {
                    let _ = futures_lite::io::copy(outbound.clone(), inbound.clone()).await;
                    let _ = inbound.shutdown(std::net::Shutdown::Both);
                    let _ = outbound.shutdown(std::net::Shutdown::Both);
                };
                futures_lite::future::zip(up, down).await;
            })
            .detach();
        }
    })
}
