//! The frames of Raya's request-response protocol: a little-endian `u32` length, then the
//! frame as an rkyv archive ([`super::archive`]), checked before it is read. Lengths above the
//! configured maximum are refused before anything is allocated, and a frame that does not check
//! is an error, never a panic: the frames come from the network.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

/// The protocol name of Raya's point-to-point messages.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/raya/rpc/1");

/// Whom a frame is for on the receiving node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The component that serves the frame's name on that node (a GCS table, a scheduler, the
    /// object manager, the node manager).
    System,
    /// The user actor with this id: reserved; no node sends it (user actors are reached through
    /// their node manager, `node_manager/DeliverCalls`).
    Actor(u128),
}

/// A request: a typed message, serialized, for one actor on the far node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    /// The message type's route id ([`super::route_id`]).
    pub route: u64,
    /// The actor it is for.
    pub target: Target,
    /// The message, in its format ([`super::WireMessage::encode`]).
    pub body: Vec<u8>,
}

/// The route of a request that did not decode. libp2p's request-response behaviour drops
/// inbound read errors without saying which peer caused them, so the codec hands such a frame
/// on as a request on this route (its body the reason) and the network drops the peer.
pub const MALFORMED_ROUTE: u64 = 0;

impl Frame {
    fn malformed(reason: impl std::fmt::Display) -> Frame {
        Frame {
            route: MALFORMED_ROUTE,
            target: Target::System,
            body: reason.to_string().into_bytes(),
        }
    }
}

/// Why a request got no reply from the far actor.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum WireError {
    /// The far node serves no message of this type.
    #[error("the node does not serve message type {0:#x}")]
    UnknownRoute(u64),
    /// The target actor does not live on the far node.
    #[error("no such actor on the node")]
    NoSuchActor,
    /// The message did not decode as its type.
    #[error("malformed message: {0}")]
    Decode(String),
    /// The far actor stopped before it answered.
    #[error("the actor stopped before it answered")]
    ActorGone,
    /// The far node refused the message because of who sent it (it names another node than
    /// its sender, only the head may send it, or the sender is not a member), or because what
    /// it carries or asks for is over a bound.
    #[error("refused: {0}")]
    Refused(String),
}

/// A reply: the handler's result, serialized, or why there is none.
pub type Reply = Result<Vec<u8>, WireError>;

/// The request-response codec: length-prefixed postcard frames with size limits.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest request accepted, in bytes.
    pub max_request: usize,
    /// Largest reply accepted, in bytes.
    pub max_reply: usize,
}

/// Reads one length-prefixed frame of at most `max` bytes (a larger length is refused before
/// anything is allocated). Shared by the request codec and the object streams.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max}"),
        ));
    }
    // Memory follows the bytes that arrive, not the length a peer claims: a frame announced
    // at the limit and trickled (or never sent) costs what was sent.
    let mut buf = Vec::with_capacity(len.min(FIRST_READ));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// What a frame's buffer starts with; it grows as the rest arrives.
const FIRST_READ: usize = 64 * 1024;

/// Writes one length-prefixed frame of at most `max` bytes.
pub async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
    max: usize,
) -> io::Result<()> {
    if body.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is over the limit of {max}", body.len()),
        ));
    }
    io.write_all(&(body.len() as u32).to_le_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

fn decode<T: super::archive::Archived>(bytes: &[u8]) -> io::Result<T> {
    T::from_archive(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode<T: super::archive::Archived>(value: &T) -> io::Result<Vec<u8>> {
    value
        .to_archive()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Reply;

    fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Frame>> + Send
    where
        T: AsyncRead + Unpin + Send,
    {
        let max = self.max_request;
        async move {
            match read_frame(io, max).await {
                Ok(bytes) => Ok(decode::<Frame>(&bytes)
                    .ok()
                    .filter(|f| f.route != MALFORMED_ROUTE)
                    .unwrap_or_else(|| Frame::malformed("the frame is not a Raya request"))),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Frame::malformed(e)),
                Err(e) => Err(e),
            }
        }
    }

    fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Reply>> + Send
    where
        T: AsyncRead + Unpin + Send,
    {
        let max = self.max_reply;
        async move { decode(&read_frame(io, max).await?) }
    }

    fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: AsyncWrite + Unpin + Send,
    {
        let max = self.max_request;
        async move { write_frame(io, &encode(&req)?, max).await }
    }

    fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Reply,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: AsyncWrite + Unpin + Send,
    {
        let max = self.max_reply;
        async move { write_frame(io, &encode(&res)?, max).await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;

    fn codec() -> FrameCodec {
        FrameCodec {
            max_request: 1024,
            max_reply: 1024,
        }
    }

    #[test]
    fn a_frame_round_trips() {
        futures::executor::block_on(async {
            let frame = Frame {
                route: 7,
                target: Target::Actor(42),
                body: vec![1, 2, 3],
            };
            let mut buf = Vec::new();
            codec()
                .write_request(&RPC_PROTOCOL, &mut buf, frame.clone())
                .await
                .unwrap();
            let back = codec()
                .read_request(&RPC_PROTOCOL, &mut buf.as_slice())
                .await
                .unwrap();
            assert_eq!(back.route, 7);
            assert_eq!(back.target, Target::Actor(42));
            assert_eq!(back.body, vec![1, 2, 3]);
        });
    }

    #[test]
    fn oversized_and_garbage_frames_are_refused() {
        futures::executor::block_on(async {
            // A length over the limit is refused before the body is read: the request is
            // handed on as malformed, so the network knows which peer sent it.
            let mut big = (1_000_000u32).to_le_bytes().to_vec();
            big.extend_from_slice(&[0; 16]);
            let f = codec()
                .read_request(&RPC_PROTOCOL, &mut big.as_slice())
                .await
                .unwrap();
            assert_eq!(f.route, MALFORMED_ROUTE);
            assert!(String::from_utf8_lossy(&f.body).contains("over the limit"));
            // A body that is not a frame.
            let mut junk = 5u32.to_le_bytes().to_vec();
            junk.extend_from_slice(&[0xff; 5]);
            let f = codec()
                .read_request(&RPC_PROTOCOL, &mut junk.as_slice())
                .await
                .unwrap();
            assert_eq!(f.route, MALFORMED_ROUTE);
            // A reply that does not decode is an error.
            let e = codec()
                .read_response(&RPC_PROTOCOL, &mut junk.as_slice())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            // A truncated frame.
            let mut short = 10u32.to_le_bytes().to_vec();
            short.extend_from_slice(&[1, 2]);
            assert!(
                codec()
                    .read_request(&RPC_PROTOCOL, &mut short.as_slice())
                    .await
                    .is_err()
            );
            // Writing an oversized frame is refused too.
            let frame = Frame {
                route: 1,
                target: Target::System,
                body: vec![0; 4096],
            };
            let mut out = Vec::new();
            assert!(
                codec()
                    .write_request(&RPC_PROTOCOL, &mut out, frame)
                    .await
                    .is_err()
            );
        });
    }
}
