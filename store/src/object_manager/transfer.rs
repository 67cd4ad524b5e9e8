//! Object transfer: locating an object at its owner and pulling it over a stream
//! ([`OBJECT_PROTOCOL`]) in chunks, and serving the pulls of other nodes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use raya_cluster::transport::codec::{read_frame, write_frame};
use raya_cluster::transport::{Network, OBJECT_PROTOCOL, Target};
use raya_common::{NodeId, ObjectId, TaskError, TaskErrorKind, Value};
use serde::{Deserialize, Serialize};

use super::messages::{LocateObject, Located, MAX_OBJECT};
use crate::object_store::{Lookup, Status, StoreCore};

/// Largest pull request and pull header frame, in bytes.
const MAX_CONTROL_FRAME: usize = 4096;

/// Bytes per read and per write of an object's stream.
const CHUNK: usize = 1 << 20;

/// Transfers served at once; past it a pull is refused.
const MAX_SERVED: usize = 64;

/// How long opening a stream, and waiting for a request or a header, may take.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct PullRequest {
    id: ObjectId,
}

#[derive(Serialize, Deserialize)]
enum PullHeader {
    Bytes(u64),
    Error(String),
}

pub(super) async fn locate_and_pull(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    owner: NodeId,
) -> Result<(), TaskError> {
    loop {
        if core.status(id) != Status::Pending {
            return Ok(());
        }
        let answer = net
            .ask(owner.peer_id(), Target::System, LocateObject(id))
            .await
            .map_err(|e| {
                TaskError::new(
                    TaskErrorKind::NodeDied,
                    format!("the owner of the object, node {owner}, is unreachable: {e}"),
                )
            })?;
        match answer {
            Located::At(node) => return pull_object(net, core, id, node).await,
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
            Located::Pending => continue,
        }
    }
}

/// Pulls object `id` from node `from` into `core`.
pub(super) async fn pull_object(
    net: &Network,
    core: &Arc<StoreCore>,
    id: ObjectId,
    from: NodeId,
) -> Result<(), TaskError> {
    let unreachable = |e: String| {
        TaskError::new(
            TaskErrorKind::ObjectLost,
            format!("could not fetch it from node {from}: {e}"),
        )
    };
    let mut control = net.stream_control();
    let mut s = tokio::time::timeout(
        STREAM_TIMEOUT,
        control.open_stream(from.peer_id(), OBJECT_PROTOCOL),
    )
    .await
    .map_err(|_| unreachable("timed out opening a stream".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let req = postcard::to_stdvec(&PullRequest { id }).map_err(|e| unreachable(e.to_string()))?;
    write_frame(&mut s, &req, MAX_CONTROL_FRAME)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let header = tokio::time::timeout(STREAM_TIMEOUT, read_frame(&mut s, MAX_CONTROL_FRAME))
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let header: PullHeader =
        postcard::from_bytes(&header).map_err(|e| unreachable(format!("bad header: {e}")))?;
    let len = match header {
        PullHeader::Bytes(n) if n <= MAX_OBJECT => n,
        PullHeader::Bytes(n) => return Err(unreachable(format!("{n} bytes is over the limit"))),
        PullHeader::Error(e) => return Err(unreachable(e)),
    };
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(len as usize)
        .map_err(|_| unreachable(format!("no memory for {len} bytes")))?;
    // Chunk by chunk: the buffer's pages are touched as the data arrives, not all up front.
    let mut chunk = vec![0u8; CHUNK.min(len as usize).max(1)];
    while (buf.len() as u64) < len {
        let want = chunk.len().min((len - buf.len() as u64) as usize);
        let n = s
            .read(&mut chunk[..want])
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if n == 0 {
            return Err(unreachable(format!(
                "the stream ended after {} of {len} bytes",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = s.close().await;
    match core.complete(id, Value::from_bytes(buf)) {
        Ok(_) => Ok(()),
        Err(e) => Err(TaskError::new(TaskErrorKind::StoreFull, e.to_string())),
    }
}

/// Accepts pull streams and sends the objects asked for, each on its own task.
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
    let in_flight = Arc::new(Mutex::new(0usize));
    net.spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let core = Arc::clone(&core);
            let in_flight = Arc::clone(&in_flight);
            {
                let mut n = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if *n >= MAX_SERVED {
                    tracing::warn!(%peer, "too many object transfers in flight: refused");
                    continue;
                }
                *n += 1;
            }
            spawner.spawn(async move {
                if let Err(e) = send_object(&core, &mut stream).await {
                    tracing::debug!(%peer, error = %e, "object transfer failed");
                }
                *in_flight.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            });
        }
    });
}

async fn send_object(core: &StoreCore, s: &mut libp2p::Stream) -> std::io::Result<()> {
    let req = tokio::time::timeout(STREAM_TIMEOUT, read_frame(s, MAX_CONTROL_FRAME))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    let req: PullRequest = postcard::from_bytes(&req)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let bytes = match core.get(req.id) {
        // Encoding a large value takes a while: not on the I/O threads.
        Lookup::Ready(v) => tokio::task::spawn_blocking(move || v.encoded_parts())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
        Lookup::Pending => Err("not ready".into()),
        Lookup::Failed(e) => Err(format!("it failed: {e}")),
        Lookup::Missing => Err("not on this node".into()),
    };
    let header = match &bytes {
        Ok(b) => PullHeader::Bytes(b.len() as u64),
        Err(e) => PullHeader::Error(e.clone()),
    };
    let h = postcard::to_stdvec(&header)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    write_frame(s, &h, MAX_CONTROL_FRAME).await?;
    if let Ok(b) = bytes {
        for part in b.slices() {
            for chunk in part.chunks(CHUNK) {
                s.write_all(chunk).await?;
            }
        }
        s.flush().await?;
    }
    s.close().await
}
