//! Jellyfish's own request-response protocol: typed messages, a version, and hard size limits.
//!
//! Every message travels on its own libp2p stream as one CBOR value. The protocol name carries
//! the major version (a peer that speaks another major version simply does not negotiate it);
//! each message also carries [`WIRE_VERSION`] so that a minor change can be refused with a clear
//! error instead of being misread. Anything over the size limit or not decodable is refused with
//! an [`io::Error`] that names the problem; libp2p reports it as a failed request and the
//! connection and the peer carry on.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The libp2p protocol name of Jellyfish's request-response protocol.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new(jellyfish_protocols::RPC);

/// The Kademlia protocol name: our own DHT, apart from any public one (the relay's is the same
/// constant, [`jellyfish_protocols::KAD`]).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new(jellyfish_protocols::KAD);

/// Version stamped into every message; a peer refuses messages of another version.
/// 2: stores are answered with a receipt; witness and claim requests.
/// 3: a store carries the owner's [`crate::warrant::Warrant`] (copies signed), and holders
/// forward it when they repair.
/// 4: warrants carry the time they were signed (blocks unrenewed for months expire).
/// 5: storage challenges of many blocks in one request ([`Request::ProveEach`], in place of
/// one block's `Prove`).
pub const WIRE_VERSION: u16 = 5;

/// Largest request a peer reads. Room for a 1 MiB block plus its envelope, later.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// Largest response a peer reads.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// Most fellow holders one store request names: the other copies of the most a warrant may
/// ask for ([`crate::warrant::MAX_COPIES`]).
pub const MAX_NAMED_FELLOWS: usize = crate::warrant::MAX_COPIES as usize - 1;

/// A peer's id on the wire, as its bytes ([`PeerId::to_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerName(#[serde(with = "crate::crypto::aead::serde_bytes_vec")] Vec<u8>);

impl PeerName {
    /// The peer named; `None` if the bytes are not a peer id.
    pub fn peer(&self) -> Option<PeerId> {
        PeerId::from_bytes(&self.0).ok()
    }
}

impl From<&PeerId> for PeerName {
    fn from(peer: &PeerId) -> Self {
        Self(peer.to_bytes())
    }
}

/// The fellow holders a store request to `peer` names: the others among `peers`, each once,
/// at most [`MAX_NAMED_FELLOWS`].
pub fn fellows_of<'a>(peer: &PeerId, peers: impl IntoIterator<Item = &'a PeerId>) -> Vec<PeerName> {
    let mut named: Vec<PeerName> = Vec::new();
    for other in peers.into_iter().filter(|p| *p != peer) {
        let name = PeerName::from(other);
        if named.len() < MAX_NAMED_FELLOWS && !named.contains(&name) {
            named.push(name);
        }
    }
    named
}

/// What one peer asks of another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Introduces the sender; answered with [`Response::Hello`].
    Hello {
        /// Free text naming the sender's software, for diagnostics only.
        agent: String,
    },
    /// Asks the receiver to hold a sealed block for its owner; answered with
    /// [`Response::Stored`] or [`Response::Refused`].
    StoreBlock {
        /// The sealed block (its address is the root of its hash tree, [`crate::proof`]).
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        block: Vec<u8>,
        /// The owner's signed word for it, with the copies to keep and the owner's pledges:
        /// the holder keeps it beside the block and forwards it when it repairs.
        warrant: crate::warrant::Warrant,
        /// Sent by a holder repairing the block, not by its owner: the owner is likely
        /// offline, so its donating browser too, and the receiver counts its pledges as
        /// [`crate::donor_audit::Book::kept`] does.
        #[serde(default)]
        repair: bool,
        /// The other peers the sender asks to hold the block (at most [`MAX_NAMED_FELLOWS`]):
        /// the receiver challenges them at its sweeps from then on, the fellow holders it
        /// would otherwise learn by surveying the block's neighbourhood once it arrived
        /// ([`crate::holder::Repairer`]). A claim, not a proof: a named peer that does not
        /// hold the block fails its first challenge, and the block is then checked in full.
        /// Left out when empty, as peers older than this field send it (their blocks are
        /// surveyed as before), and ignored by them (serde passes over unknown fields).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fellows: Vec<PeerName>,
    },
    /// Asks for a block by address; answered with [`Response::Block`] or [`Response::Refused`].
    FetchBlock {
        /// The block's address.
        id: crate::block::BlockId,
    },
    /// Asks the holder to drop a block; only its owner may. Answered with
    /// [`Response::Deleted`] or [`Response::Refused`].
    DeleteBlock {
        /// The block's address.
        id: crate::block::BlockId,
        /// The owner's RSA public key, SPKI DER.
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        owner: Vec<u8>,
        /// The owner's RSA-PSS signature over [`delete_statement`] of the address.
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        signature: Vec<u8>,
        /// The owner's hand-overs from its account's earlier keys ([`crate::key_history`]):
        /// a block claimed by an earlier key may be freed by a later one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        history: Vec<crate::key_history::KeyLink>,
    },
    /// Moves an account's claim on a block from one of its earlier keys to its current one,
    /// after a password change: the old key, which whoever knew the old password may hold,
    /// then has no claim left to free the block with. Answered with [`Response::Claimed`] or
    /// [`Response::Refused`].
    Claim {
        /// The block's address.
        id: crate::block::BlockId,
        /// The account's current RSA public key, SPKI DER.
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        owner: Vec<u8>,
        /// Its RSA-PSS signature over [`claim_statement`] of the address.
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        signature: Vec<u8>,
        /// The hand-overs from the earlier keys to `owner` ([`crate::key_history`]).
        history: Vec<crate::key_history::KeyLink>,
    },
    /// Storage challenges: asks the holder to prove it holds each block, with the leaf each
    /// challenge names ([`crate::proof`]); answered with [`Response::Proofs`] (one answer per
    /// challenge, in order) or [`Response::Refused`]. Anyone may ask: each answer is checked
    /// against the address alone. Many blocks in one request: a repairer checking the blocks
    /// that just arrived asks each nearby peer once about all of them, not once per block
    /// (each request is a data channel opened and closed, the largest cost on a tab's main
    /// thread in the cluster profiles).
    ProveEach {
        /// At most [`MAX_CHALLENGES`]: each block's address and a random number naming a leaf.
        challenges: Vec<(crate::block::BlockId, u32)>,
    },
    /// Asks a peer what it holds, answered with [`Response::Inventory`]: holders ask it of the
    /// peers whose pledges they count, then challenge each sampled block
    /// ([`crate::donor_audit`]).
    Inventory,
    /// The receipts of a block's other holders, from its owner after an upload: the receiver,
    /// itself a holder of each block, may later ask those holders to prove they still hold it
    /// ([`crate::receipt`]). Answered with [`Response::Noted`].
    Witness {
        /// At most [`crate::receipt::MAX_WITNESSED_BLOCKS`].
        blocks: Vec<crate::receipt::Witnessed>,
    },
    /// A transport probe: bytes to receive and drop, answered with [`Response::Discarded`].
    /// Benchmarks send these to measure what the connection alone does ([`crate::probe`]).
    Discard {
        /// Anything, up to one sealed block.
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        payload: Vec<u8>,
    },
    /// A transport probe: asks for `len` zero bytes (at most one sealed block), answered with
    /// [`Response::Block`]. No worse an amplifier than fetching any known block.
    Fill {
        /// Bytes wanted.
        len: u32,
    },
}

/// Most challenges one [`Request::ProveEach`] carries: 64 proofs of about 4.4 KiB each are
/// 280 KiB, well inside [`MAX_RESPONSE_BYTES`].
pub const MAX_CHALLENGES: usize = 64;

/// Most block addresses an inventory names.
pub const MAX_INVENTORY_SAMPLE: usize = 4;

/// What an owner signs to have a block deleted.
pub fn delete_statement(id: &crate::block::BlockId) -> Vec<u8> {
    [b"jellyfish/delete/v1/".as_slice(), &id.0].concat()
}

/// What an account's current key signs to take over its earlier key's claim on a block.
pub fn claim_statement(id: &crate::block::BlockId) -> Vec<u8> {
    [b"jellyfish/claim/v1/".as_slice(), &id.0].concat()
}

/// What a peer answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The answer to [`Request::Hello`].
    Hello {
        /// Free text naming the responder's software.
        agent: String,
        /// How many peers the responder is connected to right now.
        connected_peers: u32,
    },
    /// The block is held, and the holder signs for it.
    Stored {
        /// The holder's receipt ([`crate::receipt::Receipt`]).
        receipt: crate::receipt::Receipt,
    },
    /// The block asked for.
    Block {
        /// Its sealed bytes (the asker checks their hash).
        #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
        bytes: Vec<u8>,
    },
    /// The block is gone.
    Deleted,
    /// The block is held for the account's current key (or not held at all).
    Claimed,
    /// The answer to [`Request::Inventory`].
    Inventory {
        /// Bytes held for others.
        held: u64,
        /// Up to [`MAX_INVENTORY_SAMPLE`] addresses of held blocks, picked at random.
        sample: Vec<crate::block::BlockId>,
    },
    /// The answer to [`Request::ProveEach`]: one per challenge, in the order asked.
    Proofs {
        /// A proof, or why there is none.
        answers: Vec<Proved>,
    },
    /// The answer to [`Request::Witness`].
    Noted {
        /// Receipts kept: valid, for a block the receiver holds for that owner.
        kept: u32,
    },
    /// The answer to [`Request::Discard`].
    Discarded,
    /// The request was understood but refused; the text says why.
    Refused {
        /// A reason a person can read.
        reason: String,
    },
}

/// One block's answer within [`Response::Proofs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proved {
    /// One leaf of the block and its path to the address.
    Proof(crate::proof::Proof),
    /// No proof; the text says why (not held, say).
    Refused(String),
}

/// The unit on the wire: a version and one message.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    v: u16,
    body: T,
}

/// Encodes a message into the bytes sent on the wire.
pub fn encode<T: Serialize>(body: &T) -> io::Result<Vec<u8>> {
    let envelope = Envelope {
        v: WIRE_VERSION,
        body,
    };
    cbor4ii::serde::to_vec(Vec::new(), &envelope)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("cannot encode: {e}")))
}

/// Decodes bytes from the wire, refusing oversized, malformed or other-version messages.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> io::Result<T> {
    if bytes.len() > max {
        return Err(too_large(max));
    }
    let envelope: Envelope<T> = cbor4ii::serde::from_slice(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed message refused: {e}"),
        )
    })?;
    if envelope.v != WIRE_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "message of wire version {} refused: this peer speaks version {WIRE_VERSION}",
                envelope.v
            ),
        ));
    }
    Ok(envelope.body)
}

fn too_large(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("message refused: larger than the limit of {max} bytes"),
    )
}

/// Reads one whole message, never buffering more than `max + 1` bytes.
async fn read_message<T, R>(io: &mut R, max: usize) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut bytes = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut bytes).await?;
    if bytes.is_empty() {
        // Closed with nothing said: the connection went away (or the sender gave up), which
        // the requester may take as a reason to ask again; not a malformed message.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream closed before any message",
        ));
    }
    // libp2p drops a request that never decoded without telling the application: say why here.
    decode(&bytes, max).inspect_err(|e| tracing::warn!("inbound message refused: {e}"))
}

async fn write_message<T, W>(io: &mut W, body: &T, max: usize) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    let bytes = encode(body)?;
    // Refuse locally what the other side would refuse anyway, with the same message.
    if bytes.len() > max {
        return Err(too_large(max));
    }
    io.write_all(&bytes).await?;
    io.close().await
}

/// The [`libp2p::request_response::Codec`] for [`Request`] and [`Response`].
#[derive(Debug, Clone, Default)]
pub struct Codec;

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let started = web_time::Instant::now();
        let request = read_message(io, MAX_REQUEST_BYTES).await;
        // How long a large request (a block) took to arrive, for `tests/bench/cluster.mjs
        // --profile`: from its stream's negotiation to its last byte.
        if let Ok(Request::StoreBlock { block, .. }) = &request {
            tracing::debug!(
                target: crate::TIMING,
                read_ms = started.elapsed().as_millis() as u64,
                bytes = block.len(),
                "request read"
            );
        }
        request
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &request, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &response, MAX_RESPONSE_BYTES).await
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
/// Longest quote of another peer's words shown to a person.
pub const MAX_QUOTE_CHARS: usize = 80;

impl Request {
    /// What kind of request it is, in a word: for logs and profiles, never the bytes it carries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::StoreBlock { repair: false, .. } => "store",
            Self::StoreBlock { repair: true, .. } => "repair store",
            Self::FetchBlock { .. } => "fetch",
            Self::DeleteBlock { .. } => "delete",
            Self::Claim { .. } => "claim",
            Self::ProveEach { .. } => "prove",
            Self::Inventory => "inventory",
            Self::Witness { .. } => "witness",
            Self::Discard { .. } => "discard",
            Self::Fill { .. } => "fill",
        }
    }
}

impl Response {
    /// What kind of answer it is, in a word: for messages, never the bytes it carries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Stored { .. } => "stored",
            Self::Block { .. } => "a block",
            Self::Deleted => "deleted",
            Self::Claimed => "claimed",
            Self::Proofs { .. } => "proofs",
            Self::Inventory { .. } => "an inventory",
            Self::Noted { .. } => "noted",
            Self::Discarded => "discarded",
            Self::Refused { .. } => "refused",
        }
    }
}

/// Another peer's words (a refusal reason), made safe to show: control characters dropped,
/// at most [`MAX_QUOTE_CHARS`] characters, in quotes so it reads as a quote and not as
/// Jellyfish speaking. A hostile peer could otherwise put a page of text, or instructions
/// that look like ours, into every error a person sees.
pub fn quote(words: &str) -> String {
    let mut clean: String = words
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTE_CHARS + 1)
        .collect();
    if clean.chars().count() > MAX_QUOTE_CHARS {
        clean = clean.chars().take(MAX_QUOTE_CHARS - 1).collect();
        clean.push('…');
    }
    format!("\"{}\"", clean.trim())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_stream_closed_before_any_message_is_a_cut_not_a_malformed_message() {
        use libp2p::request_response::Codec as _;
        let mut empty = futures::io::Cursor::new(Vec::new());
        let read = futures::executor::block_on(Codec.read_response(&RPC_PROTOCOL, &mut empty));
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let mut junk = futures::io::Cursor::new(vec![0xff]);
        let read = futures::executor::block_on(Codec.read_response(&RPC_PROTOCOL, &mut junk));
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn round_trip() {
        let request = Request::Hello {
            agent: "test".into(),
        };
        let bytes = encode(&request).unwrap();
        assert_eq!(
            decode::<Request>(&bytes, MAX_REQUEST_BYTES).unwrap(),
            request
        );
    }

    #[test]
    fn a_stores_fellow_names_round_trip_and_are_left_out_when_there_are_none() {
        let (me, a, b) = (PeerId::random(), PeerId::random(), PeerId::random());
        let store = |fellows| Request::StoreBlock {
            block: vec![7; 100],
            warrant: crate::warrant::Warrant::with_signature(vec![1; 10], 3, vec![], 9, vec![2]),
            repair: false,
            fellows,
        };
        // Each other peer once, the receiver left out.
        let named = fellows_of(&me, &[a, me, b, a]);
        assert_eq!(named, vec![PeerName::from(&a), PeerName::from(&b)]);
        assert_eq!(named[1].peer(), Some(b));
        let request = store(named);
        let bytes = encode(&request).unwrap();
        assert_eq!(
            decode::<Request>(&bytes, MAX_REQUEST_BYTES).unwrap(),
            request
        );
        // None named: encoded as a peer older than the names encodes a store.
        let bytes = encode(&store(Vec::new())).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"fellows"));
        // At most MAX_NAMED_FELLOWS, however many are given.
        let many: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
        assert_eq!(fellows_of(&me, &many).len(), MAX_NAMED_FELLOWS);
    }

    #[test]
    fn a_field_this_peer_does_not_know_is_passed_over() {
        // What lets a peer older than a store's names read the store: a newer peer's
        // `Hello { agent: "x", fellows: 1 }` reads as `Hello { agent: "x" }`.
        #[derive(Serialize)]
        enum Newer {
            Hello { agent: String, fellows: u8 },
        }
        let newer = Newer::Hello {
            agent: "x".into(),
            fellows: 1,
        };
        let bytes = cbor4ii::serde::to_vec(
            Vec::new(),
            &Envelope {
                v: WIRE_VERSION,
                body: newer,
            },
        )
        .unwrap();
        assert!(bytes.windows(7).any(|w| w == b"fellows"));
        assert_eq!(
            decode::<Request>(&bytes, MAX_REQUEST_BYTES).unwrap(),
            Request::Hello { agent: "x".into() }
        );
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        let err = decode::<Request>(&[0xff, 0x00, 0x13, 0x37], MAX_REQUEST_BYTES).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn oversized_is_refused_before_decoding() {
        let err = decode::<Request>(&[0u8; 101], 100).unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
    }

    #[test]
    fn other_wire_version_is_refused() {
        let bytes = cbor4ii::serde::to_vec(
            Vec::new(),
            &Envelope {
                v: WIRE_VERSION + 1,
                body: Request::Hello { agent: "x".into() },
            },
        )
        .unwrap();
        let err = decode::<Request>(&bytes, MAX_REQUEST_BYTES).unwrap_err();
        assert!(err.to_string().contains("wire version"), "{err}");
    }

    #[test]
    fn hand_made_envelope_decodes_like_ours() {
        // The cluster test hand-encodes envelopes; this keeps its encoding honest.
        let ours = encode(&Request::Hello { agent: "x".into() }).unwrap();
        let [high, low] = WIRE_VERSION.to_be_bytes();
        let mut theirs = vec![0xa2, 0x61, b'v', 0x19, high, low, 0x64];
        theirs.extend_from_slice(b"body");
        theirs.extend_from_slice(&[0xa1, 0x65]);
        theirs.extend_from_slice(b"Hello");
        theirs.extend_from_slice(&[0xa1, 0x65]);
        theirs.extend_from_slice(b"agent");
        theirs.extend_from_slice(&[0x61, b'x']);
        assert_eq!(
            decode::<Request>(&theirs, MAX_REQUEST_BYTES).unwrap(),
            decode::<Request>(&ours, MAX_REQUEST_BYTES).unwrap()
        );
    }

    #[test]
    fn truncated_message_is_refused() {
        let bytes = encode(&Request::Hello {
            agent: "a longer agent string".into(),
        })
        .unwrap();
        let err = decode::<Request>(&bytes[..bytes.len() - 3], MAX_REQUEST_BYTES).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn reader_stops_at_the_limit() {
        let big = vec![0u8; MAX_REQUEST_BYTES + 10_000];
        let mut cursor = futures::io::Cursor::new(big);
        let err = read_message::<Request, _>(&mut cursor, MAX_REQUEST_BYTES)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
        // Only one byte past the limit was read from the stream.
        assert_eq!(cursor.position() as usize, MAX_REQUEST_BYTES + 1);
    }

    #[test]
    fn other_peers_words_are_quoted_short_and_clean() {
        assert_eq!(
            quote("busy; try another peer"),
            "\"busy; try another peer\""
        );
        let long = "x".repeat(5000);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTE_CHARS + 2);
        assert!(quoted.ends_with("…\""));
        assert_eq!(quote("line\nbreak\u{1b}[31m"), "\"line break [31m\"");
        let block = Response::Block {
            bytes: vec![0; 1 << 20],
        };
        assert_eq!(block.kind(), "a block");
    }
}
