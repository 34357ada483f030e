//! Sealed blocks on the network: placing one on the peers closest to its address (with their
//! receipts, then witnessed), fetching one from its holders and then from the peers near it,
//! freeing placed blocks, and the upload pipeline that places a file's blocks.

use super::*;

use std::sync::atomic::{AtomicBool, Ordering};

use futures::channel::oneshot;

use super::slots::Slots;

pub(super) use crate::net::with_deadline;

/// The pledges a store request carries: known at once, or only once the index an upload
/// loads alongside its first blocks is in. A block is read, sealed, signed for and walked for
/// meanwhile; only the requests to its holders wait (the warrant's signature does not cover
/// the pledges).
#[derive(Clone)]
pub(super) struct Pledged(futures::future::Shared<oneshot::Receiver<Vec<Pledge>>>);

impl Pledged {
    /// Pledges known now.
    pub(super) fn ready(pledges: Vec<Pledge>) -> Self {
        let (send, pledged) = Self::later();
        let _ = send.send(pledges);
        pledged
    }

    /// Pledges sent later; dropping the sender unsent cancels every store waiting for them
    /// (the upload failed its quota check, or its index did not load).
    pub(super) fn later() -> (oneshot::Sender<Vec<Pledge>>, Self) {
        let (send, receive) = oneshot::channel();
        (send, Self(receive.shared()))
    }

    /// The pledges, once known; [`FileError::Cancelled`] if they never will be.
    pub(super) async fn get(&self) -> Result<Vec<Pledge>, FileError> {
        self.0.clone().await.map_err(|_| FileError::Cancelled)
    }
}

/// Stores sealed bytes on up to [`Settings::copies_at`] `position` of the peers closest to
/// their address (more for a manifest or the index than for a data block), with the holders'
/// receipts. `pledges` go with each request, so holders can check the
/// owner's allowance.
pub(super) async fn place<N: Network>(
    drive: &Drive<N>,
    pledges: &[Pledge],
    bytes: Vec<u8>,
    position: u64,
) -> Result<(BlockRef, Placed), FileError> {
    let sealed = Outgoing {
        id: BlockId::of(&bytes),
        bytes,
        position,
    };
    place_sealed(
        drive,
        &Pledged::ready(pledges.to_vec()),
        sealed,
        async {},
        None,
    )
    .await
}

/// A sealed block on its way out: its address (hashed once, as it was sealed), its bytes, and
/// its position in the file.
pub(super) struct Outgoing {
    pub(super) id: BlockId,
    pub(super) bytes: Vec<u8>,
    pub(super) position: u64,
}

/// What the blocks of one upload share while they are placed: slots to send in, and where
/// each block's expected holders are told as soon as its walk is done.
pub(super) struct Pipeline {
    slots: Slots,
    /// Hears `(position, the block with the peers its walk named)` before any request goes
    /// out: an upload seals and places its manifest and index on that foresight while the
    /// blocks are still on their way ([`super::ahead`]).
    foresee: Option<Foresee>,
}

/// Where [`Pipeline`] tells each block's expected holders.
pub(super) type Foresee = futures::channel::mpsc::UnboundedSender<(u64, BlockRef)>;

/// [`place`], whose requests wait for pledges that may not be known yet and for `noted`
/// (the upload journal's note of the block: nothing reaches a holder that a closed tab's
/// next log-in would not know to free), and for a slot of `pipeline` if given. The warrant is
/// signed, the holders walked for and the block noted all at once, before the slot.
pub(super) async fn place_sealed<N: Network>(
    drive: &Drive<N>,
    pledged: &Pledged,
    sealed: Outgoing,
    noted: impl std::future::Future<Output = ()>,
    pipeline: Option<&Pipeline>,
) -> Result<(BlockRef, Placed), FileError> {
    let (client, session) = (&drive.client, &*drive.session);
    let Outgoing {
        id,
        bytes,
        position,
    } = sealed;
    let replicas = drive.settings.copies_at(position);
    let owner = session.public_key().to_der()?;
    let copies = u8::try_from(replicas).unwrap_or(u8::MAX);
    let signed_at = crate::platform::unix_secs();
    let started = web_time::Instant::now();
    let statement = crate::warrant::statement(&id, copies, Some(signed_at));
    let (signature, candidates, note_ms) = futures::join!(
        session.sign_statement_fast(&statement),
        client.placement_peers(id.0.to_vec(), replicas),
        async {
            noted.await;
            started.elapsed().as_millis() as u64
        }
    );
    let (signature, candidates) = (signature?, candidates?);
    let walked = web_time::Instant::now();
    if let Some(foresee) = pipeline.and_then(|p| p.foresee.as_ref()) {
        // Every peer of the first round answering "stored" makes exactly these the holders.
        let expected = BlockRef {
            id,
            holders: candidates
                .iter()
                .take(replicas)
                .map(ToString::to_string)
                .collect(),
        };
        let _ = foresee.unbounded_send((position, expected));
    }
    let pledges = pledged.get().await?;
    let _slot = match pipeline {
        Some(pipeline) => Some(pipeline.slots.take().await.ok_or(FileError::Cancelled)?),
        None => None,
    };
    let pledged_at = web_time::Instant::now();
    let warrant = Warrant::with_signature(owner.clone(), copies, pledges, signed_at, signature);
    let owner_hash = sha256(&owner);
    let mut holders: Vec<PeerId> = Vec::new();
    let mut receipts = Vec::new();
    let mut attempts = Attempts::default();
    // Ask in rounds of as many peers as copies are missing, nearest first. When the peers run
    // out short of the copies wanted, walk once more and ask whom the first walk missed, and
    // once more those that could not be reached (not those that failed slowly): on a network
    // still forming a walk can miss a tab that just joined, and a request can fail while its
    // connection is being upgraded. Peers that refused are not asked again.
    let mut remaining = candidates.into_iter();
    let mut asked: Vec<PeerId> = Vec::new();
    let mut unreachable: Vec<PeerId> = Vec::new();
    let mut walked_again = false;
    while holders.len() < replicas {
        let round: Vec<PeerId> = remaining.by_ref().take(replicas - holders.len()).collect();
        if round.is_empty() {
            if walked_again {
                break;
            }
            walked_again = true;
            let fresh = client
                .closest_peers(id.0.to_vec())
                .await
                .unwrap_or_default();
            let again: Vec<PeerId> = fresh
                .into_iter()
                .filter(|p| !asked.contains(p))
                .chain(unreachable.drain(..))
                .collect();
            remaining = again.into_iter();
            continue;
        }
        asked.extend(&round);
        let asks = round.iter().map(|peer| {
            // Its fellows: those holding it already and the others asked with it.
            let request = Request::StoreBlock {
                block: bytes.clone(),
                warrant: warrant.clone(),
                repair: false,
                fellows: crate::protocol::fellows_of(peer, holders.iter().chain(&round)),
            };
            let started = web_time::Instant::now();
            client
                .request(*peer, request)
                .map(move |answer| (answer, started.elapsed()))
        });
        for (peer, (answer, took)) in round.iter().zip(join_all(asks).await) {
            // Each holder's answer apart, for `tests/bench/cluster.mjs --profile`.
            tracing::debug!(
                target: crate::TIMING,
                position,
                took_ms = took.as_millis() as u64,
                "block store answered"
            );
            match answer {
                // Only a holder that signs for the block counts: one that took it without a
                // receipt naming itself could drop it with no co-holder ever able to ask.
                Ok(Response::Stored { receipt })
                    if receipt.verify(&id, &owner_hash).as_ref() == Ok(peer) =>
                {
                    holders.push(*peer);
                    receipts.push((*peer, receipt));
                }
                Ok(Response::Stored { .. }) => attempts.push(*peer, PeerFailure::NoReceipt),
                Ok(Response::Refused { reason }) => {
                    attempts.push(*peer, PeerFailure::Refused(reason))
                }
                Ok(other) => attempts.push(*peer, PeerFailure::Unexpected(other.kind())),
                Err(e) => {
                    // A peer that failed only after a long wait (a request timing out) is not
                    // waited for twice.
                    if took < drive.settings.fetch_deadline {
                        unreachable.push(*peer);
                    }
                    attempts.push(*peer, PeerFailure::Net(e));
                }
            }
        }
    }
    // Where a block's time goes, for `tests/bench/cluster.mjs --profile` (`?log=timing`).
    let ms = |from: web_time::Instant, to: web_time::Instant| (to - from).as_millis() as u64;
    let done = web_time::Instant::now();
    tracing::debug!(
        target: crate::TIMING,
        position,
        note_ms,
        walk_ms = ms(started, walked),
        wait_ms = ms(walked, pledged_at),
        store_ms = ms(pledged_at, done),
        holders = holders.len(),
        "block placed"
    );
    if !holders.is_empty() && holders.len() < replicas {
        // The file is listed with fewer copies than asked, and repair tops it up later: say
        // why here, where the reasons are known.
        tracing::warn!(
            position,
            holders = holders.len(),
            wanted = replicas,
            "a block was placed short of its copies: {attempts}"
        );
    }
    if holders.is_empty() {
        return Err(FileError::NoHolder {
            index: position,
            attempts,
        });
    }
    let block = BlockRef {
        id,
        holders: holders.iter().map(ToString::to_string).collect(),
    };
    Ok((block, (id, receipts)))
}

/// Hands each holder of `placed` the receipts of its fellow holders ([`crate::receipt`]), in
/// the background: best effort, it adds nothing to the upload's time and nothing fails if a
/// holder does not hear it.
pub(super) fn witness<N: Network>(client: &N, owner: OwnerHash, placed: Vec<Placed>) {
    let start = u32::from_le_bytes(crate::crypto::random_bytes()) as usize;
    let requests = crate::receipt::witness_requests(owner, &placed, start);
    let client = client.clone();
    crate::platform::spawn(async move {
        let sends = requests.into_iter().map(|(holder, blocks)| {
            with_deadline(
                audit::ANSWER_DEADLINE,
                client.request(holder, Request::Witness { blocks }),
            )
        });
        let answers = join_all(sends).await;
        let heard = answers.iter().filter(|a| a.is_ok()).count();
        tracing::debug!(
            heard,
            of = answers.len(),
            "holders told of their fellow holders"
        );
    });
}

/// Fetches a file's blocks, [`Settings::pipeline`] at once (each from its own holders, so a
/// file's blocks come from several peers together), and hands each opened block to `sink` in
/// order; the sink may break to cancel. Memory stays at about `pipeline` blocks whatever the
/// file's size. Needs no account: a share link's guest downloads with it too.
pub(super) async fn fetch_all<N: Network>(
    client: &N,
    settings: &Settings,
    key: &SymmetricKey,
    file: &FileId,
    name: &str,
    blocks: &[BlockRef],
    sink: impl FnMut(Vec<u8>) -> ControlFlow<()>,
) -> Result<(), FileError> {
    let fetched = fetch_stream(client, settings, key.clone(), *file, blocks.to_vec());
    hand_on(fetched, Default::default(), name, sink).await
}

/// A file's blocks fetched ([`fetch()`]) [`Settings::pipeline`] at a time, in order: each from
/// its own holders, so a file's blocks come from several peers together, and memory stays at
/// about `pipeline` blocks whatever the file's size. Owns what it fetches with, so it can be
/// started ahead of the step that decides whether it is wanted (a download's index reload).
pub(super) fn fetch_stream<'a, N: Network>(
    client: &'a N,
    settings: &'a Settings,
    key: SymmetricKey,
    file: FileId,
    blocks: Vec<BlockRef>,
) -> Fetched<'a> {
    // A holder found slow for one block is asked last for the next ones.
    let slow = SlowPeers::default();
    futures::stream::iter(blocks.into_iter().zip(0u64..))
        .map(move |(block, position)| {
            let (key, slow) = (key.clone(), slow.clone());
            async move {
                let fetched =
                    fetch_with(client, settings, &[&key], &file, position, &block, &slow).await;
                (position, fetched)
            }
        })
        .buffered(settings.pipeline.max(1))
        .boxed_local()
}

/// What [`fetch_stream`] yields: each block's position and its opened bytes, or what each
/// peer asked did.
pub(super) type Fetched<'a> = futures::stream::LocalBoxStream<'a, FetchedBlock>;

/// A block's position in its file, and its opened bytes or what each peer asked did.
pub(super) type FetchedBlock = (u64, Result<Vec<u8>, Attempts>);

/// Hands `ready` and then the rest of `fetched` to `sink` in order; the sink may break to
/// cancel. Dropping the stream on an error or a cancel drops the fetches still under way.
pub(super) async fn hand_on(
    mut fetched: Fetched<'_>,
    mut ready: std::collections::VecDeque<FetchedBlock>,
    name: &str,
    mut sink: impl FnMut(Vec<u8>) -> ControlFlow<()>,
) -> Result<(), FileError> {
    loop {
        let next = match ready.pop_front() {
            Some(block) => Some(block),
            None => fetched.next().await,
        };
        let Some((position, plain)) = next else {
            return Ok(());
        };
        let plain = plain.map_err(|attempts| FileError::Unavailable {
            name: name.to_owned(),
            index: position,
            attempts,
        })?;
        if sink(plain).is_break() {
            return Err(FileError::Cancelled);
        }
    }
}

/// Frees blocks that nothing names any more (an upload that failed or was cancelled), so they
/// count against no one's allowance.
pub(super) async fn free_all<N: Network>(drive: &Drive<N>, blocks: &[BlockRef]) {
    for block in blocks {
        free(drive, block).await;
    }
}

/// Asks every holder of a block to drop it: those listed at upload, and the peers now nearest
/// its address, where repair may have put copies since (a copy left there would be repaired
/// back, and the file would outlive its delete). Returns how many listed holders did.
pub(super) async fn free<N: Network>(drive: &Drive<N>, block: &BlockRef) -> usize {
    let Some(request) = delete_request(drive, block).await else {
        return 0;
    };
    let client = drive.client.clone();
    ask_to_delete(client, drive.settings.fetch_deadline, block, request).await
}

/// [`free`] in the background, for blocks that are garbage once an operation is done (an
/// index's previous root and pages): the walk and the holders' answers (a walk and a round
/// trip, 100 ms or more) are kept off the user's wait. Only the signatures are made here.
pub(super) async fn free_in_background<N: Network>(drive: &Drive<N>, blocks: Vec<BlockRef>) {
    let mut asks = Vec::with_capacity(blocks.len());
    for block in blocks {
        if let Some(request) = delete_request(drive, &block).await {
            asks.push((block, request));
        }
    }
    if asks.is_empty() {
        return;
    }
    let (client, deadline) = (drive.client.clone(), drive.settings.fetch_deadline);
    let freeing = drive.freeing.clone();
    freeing.fetch_add(1, Ordering::AcqRel);
    crate::platform::spawn(async move {
        for (block, request) in asks {
            ask_to_delete(client.clone(), deadline, &block, request).await;
        }
        freeing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The owner's signed request to drop `block` (`None` if this session cannot sign one).
async fn delete_request<N: Network>(drive: &Drive<N>, block: &BlockRef) -> Option<Request> {
    let session = &*drive.session;
    let owner = session.public_key().to_der().ok()?;
    let signature = session
        .sign_statement_fast(&delete_statement(&block.id))
        .await
        .map_err(|e| tracing::warn!("could not sign a delete: {e}"))
        .ok()?;
    Some(Request::DeleteBlock {
        id: block.id,
        owner,
        signature,
        history: session.history().to_vec(),
    })
}

/// The holders listed in `block`, and up to `others` peers now nearest its address that are
/// not listed (where repair has put copies since), by a DHT walk.
pub(super) async fn listed_and_nearest<N: Network>(
    client: N,
    block: &BlockRef,
    others: usize,
) -> (Vec<PeerId>, Vec<PeerId>) {
    let listed: Vec<PeerId> = block
        .holders
        .iter()
        .filter_map(|h| h.parse::<PeerId>().ok())
        .collect();
    let nearest = client
        .closest_peers(block.id.0.to_vec())
        .await
        .unwrap_or_default();
    let others = nearest
        .into_iter()
        .filter(|peer| !listed.contains(peer))
        .take(others)
        .collect();
    (listed, others)
}

/// Sends `request` (a [`Request::DeleteBlock`]) to the holders listed in `block` and the
/// peers now nearest its address; returns how many listed holders dropped it.
async fn ask_to_delete<N: Network>(
    client: N,
    deadline: std::time::Duration,
    block: &BlockRef,
    request: Request,
) -> usize {
    // Repair keeps up to twice the copies wanted, at most 8 wanted.
    let (listed, others) = listed_and_nearest(
        client.clone(),
        block,
        2 * usize::from(crate::warrant::MAX_COPIES),
    )
    .await;
    let asks = listed
        .iter()
        .chain(&others)
        .map(|peer| with_deadline(deadline, client.request(*peer, request.clone())));
    let answers = join_all(asks).await;
    answers
        .iter()
        .take(listed.len())
        .filter(|answer| matches!(answer, Ok(Response::Deleted)))
        .count()
}

/// What [`place_blocks`] returns: the blocks in order, the holders' receipts and the bytes
/// read; or the error and every block placed before it.
pub(super) type PlacedBlocks =
    Result<(Vec<BlockRef>, Vec<Placed>, u64), (FileError, Vec<BlockRef>)>;

/// Sealed blocks an upload walks for ahead of a free slot: while [`Settings::pipeline`] blocks
/// are being sent to holders, this many more are signed for, walked for and noted, so a slot
/// that frees starts sending at once rather than after a walk. In a 16 MiB upload through the
/// 8-tab cluster a walk took about 290 ms (p50) and a block's store 1.2 s: a slot spent a
/// fifth of its time walking. Memory: this many more sealed blocks (1 MiB each).
const WALK_AHEAD: usize = 2;

/// Reads, seals and places a file's blocks in a bounded pipeline: the next block is read and
/// sealed while earlier ones are being placed, never more than [`Settings::pipeline`] being
/// sent to holders at once (and [`WALK_AHEAD`] more walked for), so memory stays flat
/// whatever the file's size. A slot frees as soon as its block is placed, whichever that is:
/// one slow holder holds up one slot, not the pipeline.
/// Returns the placed blocks in order and the bytes read; on failure or cancel, the error and
/// every block placed so far (for freeing). Also returns the holders' receipts, for
/// [`witness`]. `foresee` hears each block's expected holders as soon as they are known
/// ([`Pipeline`]); it is dropped when this returns.
pub(super) async fn place_blocks<N: Network>(
    drive: &Drive<N>,
    pledged: &Pledged,
    key: &SymmetricKey,
    file: &FileId,
    source: impl Source,
    mut progress: impl FnMut(u64) -> ControlFlow<()>,
    foresee: Option<Foresee>,
) -> PlacedBlocks {
    let size = source.size();
    // Set on a failure or a cancel: no further block is read, and those under way are awaited
    // (not dropped), so every block that reached a holder is known and can be freed.
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let in_flight = drive.settings.pipeline.max(1);
    let pipeline = &Pipeline {
        slots: Slots::new(in_flight),
        foresee,
    };
    let slots = &pipeline.slots;
    // The blocks, read and sealed one after another; an empty file is one empty block.
    let sealed = futures::stream::unfold(
        (0u64, 0u64, source),
        move |(read, position, mut source)| async move {
            if stop.load(Ordering::Relaxed) || (read >= size && position > 0) {
                return None;
            }
            let started = web_time::Instant::now();
            let sealed = async {
                let plain = source.read(read, BLOCK_SIZE).await?;
                let read_at = web_time::Instant::now();
                if plain.is_empty() && read < size {
                    return Err(FileError::Read(format!(
                        "the file ended after {read} of {size} bytes"
                    )));
                }
                let (id, bytes) = seal_block(key, file, position, &plain).await?;
                let sealed = Outgoing {
                    id,
                    bytes,
                    position,
                };
                Ok((plain.len() as u64, sealed, read_at))
            }
            .await;
            match sealed {
                Ok((len, sealed, read_at)) => {
                    tracing::debug!(
                        target: crate::TIMING,
                        position,
                        read_ms = (read_at - started).as_millis() as u64,
                        seal_ms = read_at.elapsed().as_millis() as u64,
                        "block sealed"
                    );
                    let next = (read + len, position + 1, source);
                    Some((Ok((len, sealed)), next))
                }
                // Nothing after a block that could not be read.
                Err(e) => Some((Err(e), (size, position.max(1), source))),
            }
        },
    );
    let placing = sealed
        .map(|block| async move {
            match block {
                Ok((len, sealed)) => {
                    let position = sealed.position;
                    // Noted before it goes out: a tab closed while it is being placed leaves
                    // its address behind for the next log-in to free.
                    let noted = drive.note(file, sealed.id);
                    let placed = place_sealed(drive, pledged, sealed, noted, Some(pipeline)).await;
                    (position, len, placed)
                }
                Err(e) => (0, 0, Err(e)),
            }
        })
        .buffer_unordered(in_flight + WALK_AHEAD);
    let mut placing = std::pin::pin!(placing);
    let mut blocks = Vec::new();
    let mut receipts = Vec::new();
    let mut placed = 0u64;
    let mut failure = None;
    while let Some((position, len, block)) = placing.next().await {
        match block {
            Ok((block, block_receipts)) => {
                blocks.push((position, block));
                receipts.push(block_receipts);
                placed += len;
                if failure.is_none() && progress(placed).is_break() {
                    failure = Some(FileError::Cancelled);
                    stop.store(true, Ordering::Relaxed);
                    slots.close();
                }
            }
            Err(error) => {
                failure.get_or_insert(error);
                stop.store(true, Ordering::Relaxed);
                slots.close();
            }
        }
    }
    blocks.sort_by_key(|(position, _)| *position);
    let blocks = blocks.into_iter().map(|(_, block)| block).collect();
    match failure {
        Some(error) => Err((error, blocks)),
        None => Ok((blocks, receipts, placed)),
    }
}
