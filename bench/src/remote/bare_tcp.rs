//! The bare TCP limits of the remote workloads: a ping-pong and a batched stream of
//! length-prefixed frames over a loopback connection, on two sets of bare threads.

use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use futures_lite::io::BufReader;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{Frames, Remote, Step, BARE_BATCH};
use crate::bare::BareThreads;
use crate::common::{percentile, smol_limit, Plan, Rep, THREADS};

/// The bare limits: two sets of bare threads, a fresh loopback connection per repetition.
pub(super) struct BareRemote {
    side_a: BareThreads,
    side_b: BareThreads,
    frames: Frames,
}

impl BareRemote {
    pub(super) fn new(frames: Frames) -> BareRemote {
        BareRemote {
            side_a: BareThreads::new(THREADS),
            side_b: BareThreads::new(THREADS),
            frames,
        }
    }
}

impl Remote for BareRemote {
    fn rep(&mut self, step: Step, plan: &Plan) -> Rep<Vec<f64>> {
        let stream = |size: usize, count: u64, frame: usize| {
            let elapsed = bare_stream(&self.side_a, &self.side_b, count, frame)?;
            let rate = count as f64 / elapsed.as_secs_f64();
            Ok(vec![rate, rate * size as f64 / 1e6])
        };
        match step {
            Step::Call => {
                let t = bare_ping_pong(
                    &self.side_a,
                    &self.side_b,
                    plan.call_warmup / 10,
                    plan.remote_calls,
                    self.frames.call,
                    self.frames.reply,
                )?;
                Ok(vec![
                    percentile(&t, 50.0) as f64 / 1e3,
                    percentile(&t, 99.0) as f64 / 1e3,
                ])
            }
            Step::Cast16 => stream(16, plan.remote_casts_small, self.frames.cast16),
            Step::Cast1k => stream(1024, plan.remote_casts_large, self.frames.cast1k),
            Step::Big | Step::BigVec | Step::BigMemory => Err("no bare large-message limit".into()),
        }
    }
}

/// Reads one length-prefixed frame into `buffer`.
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    buffer.clear();
    buffer.resize(len, 0);
    reader.read_exact(buffer).await
}

/// A frame of `frame_len` bytes in all (prefix included).
fn frame(frame_len: usize, fill: u8) -> Vec<u8> {
    let body = frame_len.max(5) - 4;
    let mut frame = Vec::with_capacity(body + 4);
    frame.extend_from_slice(&(body as u32).to_be_bytes());
    frame.resize(body + 4, fill);
    frame
}

/// A connected pair of loopback sockets with `TCP_NODELAY`: (A's end, B's end).
async fn tcp_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (a, b) = futures_lite::future::zip(TcpStream::connect(address), listener.accept()).await;
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

/// Bare ping-pong: `warmup` then `samples` timed round trips (ns, sorted).
fn bare_ping_pong(
    side_a: &BareThreads,
    side_b: &BareThreads,
    warmup: u64,
    samples: u64,
    request_len: usize,
    reply_len: usize,
) -> Rep<Vec<u64>> {
    let (client, server) = smol_limit("bare tcp pair", tcp_pair())?.map_err(|e| e.to_string())?;
    let answering = side_b.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, server.clone());
        let mut writer = server;
        let reply = frame(reply_len, 2);
        let mut buffer = Vec::new();
        while read_frame(&mut reader, &mut buffer).await.is_ok() {
            std::hint::black_box(&buffer);
            if writer.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    let timing = side_a.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, client.clone());
        let mut writer = client;
        let request = frame(request_len, 1);
        let mut buffer = Vec::new();
        let mut times = Vec::with_capacity(samples as usize);
        for i in 0..warmup + samples {
            let start = Instant::now();
            writer
                .write_all(&request)
                .await
                .map_err(|e| e.to_string())?;
            read_frame(&mut reader, &mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            if i >= warmup {
                times.push(start.elapsed().as_nanos() as u64);
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
        Ok::<_, String>(times)
    });
    let mut times = smol_limit("bare ping-pong", timing)??;
    smol_limit("bare ping-pong server", answering)?;
    times.sort_unstable();
    Ok(times)
}

/// Bare batched stream of `count` frames of `frame_len` bytes: the time from the first
/// write until the reader has decoded the last frame.
fn bare_stream(
    side_a: &BareThreads,
    side_b: &BareThreads,
    count: u64,
    frame_len: usize,
) -> Rep<Duration> {
    let (client, server) = smol_limit("bare tcp pair", tcp_pair())?.map_err(|e| e.to_string())?;
    let reading = side_b.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, server);
        let mut buffer = Vec::new();
        let mut bytes = 0u64;
        for _ in 0..count {
            read_frame(&mut reader, &mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            bytes += buffer.len() as u64;
        }
        Ok::<_, String>((Instant::now(), bytes))
    });
    let writing = side_a.spawn(0, |_| async move {
        let mut writer = client;
        let one = frame(frame_len, 3);
        let mut batch = Vec::with_capacity(BARE_BATCH + frame_len);
        let start = Instant::now();
        for i in 0..count {
            // The frame's bytes are copied into the batch, as noex's writer encodes them.
            batch.extend_from_slice(&one);
            std::hint::black_box(i);
            if batch.len() >= BARE_BATCH {
                writer.write_all(&batch).await.map_err(|e| e.to_string())?;
                batch.clear();
            }
        }
        writer.write_all(&batch).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((start, writer))
    });
    let (start, writer) = smol_limit("bare stream writer", writing)??;
    let (end, bytes) = smol_limit("bare stream reader", reading)??;
    drop(writer);
    if bytes != count * (frame_len.max(5) as u64 - 4) {
        return Err("the bare reader lost bytes".into());
    }
    Ok(end - start)
}
