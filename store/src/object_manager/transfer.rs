//! Object transfer: locating an object at its owner and pulling it over a stream
//! ([`OBJECT_PROTOCOL`]) in chunks, and serving the pulls of other nodes. A small object
//! naming no other needs no pull: the owner's answer carries it.
//!
//! A pull is a request (the object's id), a header (its length and the references it names, or
//! why it cannot be sent, or "busy"), the bytes, and the puller's acknowledgement. The puller
//! counts the references the header names (registering with their owners) before it
//! acknowledges, and the sender keeps its own until then, so an object named by the one pulled
//! is never freed in between. A node serves at most 64 pulls at once; more wait their turn, and
//! past a bounded queue a puller is told it is busy and tries again. Every read and write of a
//! stream has a timeout, so a stalled peer cannot pin a transfer; a pull that keeps failing (the
//! holder or the owner unreachable) fails after the object lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use raya_cluster::transport::codec::{read_frame, write_frame};
use raya_cluster::transport::inflight::{settled, settling};
use raya_cluster::transport::{NetError, Network, OBJECT_PROTOCOL, Target};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::locate::{ASK_AGAIN, Watches};
use super::messages::{LocateObject, Located, MAX_INLINE, MAX_OBJECT};
use crate::object_store::{Lookup, Status, StoreCore};
use crate::raw_ref::{RawRef, collect_refs};
use crate::wire_value::{contained, keeping};

/// Largest pull request frame, in bytes.
const MAX_REQUEST_FRAME: usize = 4096;

/// Largest pull header, in bytes (it lists the references the object names).
const MAX_HEADER_FRAME: usize = 16 << 20;

/// Bytes per read and per write of an object's stream.
const CHUNK: usize = 1 << 20;

/// Transfers served at once; more wait for a turn.
const MAX_SERVED: usize = 64;

/// Transfers waiting for a turn, at most; past it a puller is told the node is busy.
const MAX_WAITING: usize = 4096;

/// How long opening a stream, and each read or write of it, may take.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct PullRequest {
    id: ObjectId,
}

#[derive(Serialize, Deserialize)]
enum PullHeader {
    /// The encoded object follows: `len` bytes, naming `refs`.
    Bytes { len: u64, refs: Vec<RawRef> },
    /// Too many transfers: ask again later.
    Busy,
    /// It cannot be sent.
    Error(String),
}

/// Checks bytes of an object stream (`object_manager/Pull`) as its two ends do: as the
/// request the serving node reads, and as the header the puller reads (its length within
/// [`MAX_OBJECT`]). Either may be what arrived.
pub(super) fn check_pull(body: &[u8], _: &raya_cluster::transport::Caller) -> Result<(), String> {
    let request = postcard::from_bytes::<PullRequest>(body).map(|_| ());
    let header = match postcard::from_bytes::<PullHeader>(body) {
        Ok(PullHeader::Bytes { len, .. }) if len > MAX_OBJECT => {
            Err(format!("{len} bytes is over the limit"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    request.map_err(|e| e.to_string()).or(header)
}

/// Why one attempt at a pull failed.
enum Failure {
    /// Worth trying again (the holder busy or unreachable).
    Transient(String),
    /// The object cannot be had from there.
    Final(TaskError),
}

/// Fetches object `id` from its owner: asks where it is (waiting for the owner's word while it
/// is pending, asking again after [`ASK_AGAIN`] if none came), then stores the value the answer
/// carries or pulls it from the node named. Fails when the owner stays unreachable, or the
/// object cannot be fetched, for `lease`.
pub(super) async fn locate_and_pull(
    net: &Network,
    watches: &Watches,
    core: &Arc<StoreCore>,
    id: ObjectId,
    owner: NodeId,
    lease: Duration,
) -> Result<(), TaskError> {
    let mut deadline = tokio::time::Instant::now() + lease;
    let mut pause = Duration::from_millis(50);
    loop {
        if core.status(id) != Status::Pending {
            return Ok(());
        }
        // Registered before the question: the owner's word may come before its answer.
        let mut watch = watches.watch(id, owner);
        let mut answer = match net
            .ask(owner.peer_id(), Target::System, LocateObject(id))
            .await
        {
            Ok(a) => a,
            Err(e) if transient(&e) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(e) => {
                return Err(TaskError::new(
                    TaskErrorKind::NodeDied,
                    format!(
                        "the owner of the object, node {owner}, is unreachable (for {lease:?}): {e}"
                    ),
                ));
            }
        };
        if matches!(answer, Located::Pending) {
            // The owner answers, and the object is still being made (perhaps again): it tells
            // this node when it is not.
            deadline = tokio::time::Instant::now() + lease;
            pause = Duration::from_millis(50);
            match watch.word(ASK_AGAIN).await {
                Some(word) => answer = word,
                None => continue,
            }
        }
        drop(watch);
        match answer {
            Located::At(node) => {
                let holder_budget = (lease / 4).max(Duration::from_millis(100));
                match pull_object(net, core, id, node, holder_budget).await {
                    Ok(()) => return Ok(()),
                    Err(e) if tokio::time::Instant::now() + pause < deadline => {
                        tracing::debug!(object = %id, %node, error = %e, "pull failed: asking the owner again");
                        tokio::time::sleep(jittered(pause)).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                    }
                    Err(e) => return Err(e),
                }
            }
            Located::Value(bytes) => return store_inline(core, id, owner, bytes).await,
            Located::Failed(e) => {
                core.fail(id, Arc::new(e));
                return Ok(());
            }
            Located::Unknown => {
                return Err(TaskError::new(
                    TaskErrorKind::ObjectLost,
                    format!("its owner, node {owner}, no longer has it"),
                ));
            }
            Located::Pending => {}
        }
    }
}

/// Stores the value an owner sent in its answer (at most [`MAX_INLINE`] bytes: a larger one is
/// refused as lost, the owner is not to be trusted past the bound).
async fn store_inline(
    core: &Arc<StoreCore>,
    id: ObjectId,
    owner: NodeId,
    bytes: Vec<u8>,
) -> Result<(), TaskError> {
    if bytes.len() > MAX_INLINE {
        return Err(TaskError::new(
            TaskErrorKind::ObjectLost,
            format!(
                "its owner, node {owner}, answered with {} bytes inline, more than {MAX_INLINE}",
                bytes.len()
            ),
        ));
    }
    // Storing may spill other objects to disk: not on the network's threads.
    let store = Arc::clone(core);
    let stored = tokio::task::spawn_blocking(move || store.complete(id, Value::from_bytes(bytes)))
        .await
        .map_err(|e| TaskError::new(TaskErrorKind::System, e.to_string()))?;
    stored
        .map(|_| ())
        .map_err(|e| TaskError::new(TaskErrorKind::StoreFull, e.to_string()))
}

fn transient(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Unreachable { .. }
            | NetError::Timeout { .. }
            | NetError::Busy
            | NetError::NotSent { .. }
    )
}

/// Pulls object `id` from node `from` into `core`, trying again while `from` is busy or
/// unreachable, up to `lease`.
pub(super) async fn pull_object(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    from: NodeId,
    lease: Duration,
) -> Result<(), TaskError> {
    let deadline = tokio::time::Instant::now() + lease;
    let mut pause = Duration::from_millis(50);
    loop {
        let started = tokio::time::Instant::now();
        let reason = match pull_once(net, core, id, from).await {
            Ok(()) => return Ok(()),
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Transient(reason)) => reason,
        };
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(TaskError::new(
                TaskErrorKind::ObjectLost,
                format!("could not fetch it from node {from} (for {lease:?}): {reason}"),
            ));
        }
        tracing::debug!(object = %id, %from, %reason, took = ?started.elapsed(), "pull failed: trying again");
        tokio::time::sleep(jittered(pause)).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// `pause`, between half and one and a half of it at random: pullers that failed together
/// (a holder that dropped a burst of streams it could not take in time) do not all come back
/// together.
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(rand::random_range(0.5..1.5))
}

/// `op`, failing as transient when it takes longer than the stream timeout.
async fn timed<T, E: std::fmt::Display>(
    what: &str,
    op: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(STREAM_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Transient(format!("{what}: {e}"))),
        Err(_) => Err(Failure::Transient(format!("{what}: timed out"))),
    }
}

async fn pull_once(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    from: NodeId,
) -> Result<(), Failure> {
    let lost = |e: String| {
        Failure::Final(TaskError::new(
            TaskErrorKind::ObjectLost,
            format!("could not fetch it from node {from}: {e}"),
        ))
    };
    let mut control = net.stream_control();
    let mut s = timed(
        "opening a stream",
        control.open_stream(from.peer_id(), OBJECT_PROTOCOL),
    )
    .await?;
    let req = postcard::to_stdvec(&PullRequest { id }).map_err(|e| lost(e.to_string()))?;
    timed(
        "sending the request",
        write_frame(&mut s, &req, MAX_REQUEST_FRAME),
    )
    .await?;
    let header = timed(
        "waiting for the header",
        read_frame(&mut s, MAX_HEADER_FRAME),
    )
    .await?;
    // The references the object names are counted here (and registered with their owners)
    // before the transfer is acknowledged.
    let (header, pending) = settling(|| postcard::from_bytes::<PullHeader>(&header));
    let header = header.map_err(|e| lost(format!("bad header: {e}")))?;
    let (len, refs) = match header {
        PullHeader::Bytes { len, refs } if len <= MAX_OBJECT => (len, refs),
        PullHeader::Bytes { len, .. } => {
            return Err(lost(format!("{len} bytes is over the limit")));
        }
        PullHeader::Busy => return Err(Failure::Transient("the node is busy".into())),
        PullHeader::Error(e) => return Err(lost(e)),
    };
    // Chunk by chunk, into a buffer that grows with what arrived (doubling, never past the
    // announced length): a sender that claims more than it sends costs what it sent.
    let mut buf: Vec<u8> = Vec::new();
    let no_memory = |_| lost(format!("no memory for {len} bytes"));
    buf.try_reserve_exact((len as usize).min(FIRST_RESERVE))
        .map_err(no_memory)?;
    let mut chunk = vec![0u8; CHUNK.min(len as usize).max(1)];
    while (buf.len() as u64) < len {
        let left = (len - buf.len() as u64) as usize;
        if buf.len() == buf.capacity() {
            buf.try_reserve_exact(left.min(buf.len().max(CHUNK)))
                .map_err(no_memory)?;
        }
        let want = chunk.len().min(left);
        let n = timed("reading the object", s.read(&mut chunk[..want])).await?;
        if n == 0 {
            return Err(Failure::Transient(format!(
                "the stream ended after {} of {len} bytes",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    settled(pending).await;
    // Storing may spill other objects to disk: not on the network's threads.
    let store = Arc::clone(core);
    let stored = tokio::task::spawn_blocking(move || store.complete(id, keeping(buf, refs)))
        .await
        .map_err(|e| lost(e.to_string()))?;
    // The sender may let go of the references the object names now.
    let _ = timed("acknowledging", write_frame(&mut s, &[1], 1)).await;
    let _ = s.close().await;
    match stored {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::Final(TaskError::new(
            TaskErrorKind::StoreFull,
            e.to_string(),
        ))),
    }
}

/// What a pulled object's buffer starts with before its bytes arrive.
const FIRST_RESERVE: usize = 64 << 20;

/// Accepts pull streams and sends the objects asked for, each on its own task, at most
/// [`MAX_SERVED`] at once; up to [`MAX_WAITING`] more wait for a turn, each for at most half
/// the stream timeout, and the others are told the node is busy (their pullers try again).
pub(super) fn serve_pulls(core: Arc<StoreCore>, net: &Network) {
    let mut control = net.stream_control();
    let mut incoming = match control.accept(OBJECT_PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "cannot accept object streams");
            return;
        }
    };
    let spawner = net.clone();
    let turns = Arc::new(Semaphore::new(MAX_SERVED));
    let waiting = Arc::new(AtomicUsize::new(0));
    net.spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let core = Arc::clone(&core);
            let (turns, waiting) = (Arc::clone(&turns), Arc::clone(&waiting));
            spawner.spawn(async move {
                if waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
                    waiting.fetch_sub(1, Ordering::Relaxed);
                    let _ = refuse_busy(&mut stream).await;
                    return;
                }
                // A puller waits for its header only so long: past half of that it is told
                // to come back, rather than served after it gave up.
                let turn = tokio::time::timeout(STREAM_TIMEOUT / 2, turns.acquire_owned()).await;
                waiting.fetch_sub(1, Ordering::Relaxed);
                let _turn = match turn {
                    Ok(Ok(t)) => t,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::debug!(%peer, "no turn for a pull: telling the puller to come back");
                        let _ = refuse_busy(&mut stream).await;
                        return;
                    }
                };
                let started = tokio::time::Instant::now();
                if let Err(e) = send_object(&core, &mut stream).await {
                    tracing::debug!(%peer, error = %e, took = ?started.elapsed(), "object transfer failed");
                }
            });
        }
    });
}

async fn refuse_busy(s: &mut libp2p::Stream) -> std::io::Result<()> {
    let h = postcard::to_stdvec(&PullHeader::Busy)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    write_frame(s, &h, MAX_HEADER_FRAME).await?;
    s.close().await
}

fn io_timeout(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what}: timed out"))
}

async fn send_object(core: &Arc<StoreCore>, s: &mut libp2p::Stream) -> std::io::Result<()> {
    let req = tokio::time::timeout(STREAM_TIMEOUT, read_frame(s, MAX_REQUEST_FRAME))
        .await
        .map_err(|_| io_timeout("no request"))??;
    let req: PullRequest = postcard::from_bytes(&req)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    // Reading a spilled object and encoding a large one take a while: not on the I/O threads.
    let store = Arc::clone(core);
    let encoded = tokio::task::spawn_blocking(move || match store.get(req.id) {
        Lookup::Ready(v) => {
            let (parts, refs) = match contained(&v) {
                Some(refs) => (v.encoded_parts(), refs),
                None => collect_refs(|| v.encoded_parts()),
            };
            parts.map(|p| (p, refs)).map_err(|e| e.to_string())
        }
        Lookup::Pending => Err("not ready".into()),
        Lookup::Failed(e) => Err(format!("it failed: {e}")),
        Lookup::Missing => Err("not on this node".into()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let (header, body) = match encoded {
        Ok((parts, refs)) => (
            PullHeader::Bytes {
                len: parts.len() as u64,
                refs,
            },
            Some(parts),
        ),
        Err(e) => (PullHeader::Error(e), None),
    };
    let h = postcard::to_stdvec(&header)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    tokio::time::timeout(STREAM_TIMEOUT, write_frame(s, &h, MAX_HEADER_FRAME))
        .await
        .map_err(|_| io_timeout("writing the header"))??;
    if let Some(parts) = body {
        for part in parts.slices() {
            for chunk in part.chunks(CHUNK) {
                tokio::time::timeout(STREAM_TIMEOUT, s.write_all(chunk))
                    .await
                    .map_err(|_| io_timeout("writing the object"))??;
            }
        }
        tokio::time::timeout(STREAM_TIMEOUT, s.flush())
            .await
            .map_err(|_| io_timeout("flushing"))??;
        // The references the object names (kept in the header) live until the puller counted
        // its own.
        let _ = tokio::time::timeout(STREAM_TIMEOUT, read_frame(s, 1)).await;
    }
    drop(header);
    s.close().await
}
