//! Fuzzing of every decoder that takes bytes from the network, on stable Rust: a generator
//! loop that mutates valid encodings (bit flips, interesting bytes, CBOR and varint length
//! headers claiming huge sizes, insertions, deletions, truncations, splices, random bytes) and
//! feeds each target, checking that nothing panics and that no single allocation grows past
//! [`ALLOCATION_LIMIT`] (a length field trusted from the wire would).
//!
//! Targets: the request-response envelope (requests, then answered by a real holder, and
//! responses), DHT records, pledges, account record bodies, manifests and the file index
//! (what a holder hands back, after decryption), WebRTC signalling messages (with their length
//! prefix, read from a stream) and data-channel frames (fed in pieces, and applied to a reused
//! channel's life and its streams).
//!
//! CI runs a short setting. The long run, by hand (about 1,000,000 inputs per target):
//! `JELLYFISH_FUZZ_INPUTS=1000000 cargo test --release -p jellyfish-peer --lib fuzz -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use futures::executor::block_on;
use libp2p::{identity::Keypair, PeerId};

use crate::{
    block::{BlockId, FileId},
    crypto::{rsa_keys::PrivateKey, sha256},
    pledge::{self, Pledge},
    protocol::{self, Request, Response, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES},
    record::{AccountId, RecordKind, SignedRecord, VerifiedRecord},
    store::BlockStore,
    webrtc::{
        proto::{Flag, Frame, FrameDecoder, Signal, SignalKind},
        reuse::{Life, Opener, Phase, Step},
        stream_state::StreamState,
    },
};

/// Inputs per target when `JELLYFISH_FUZZ_INPUTS` is not set (the CI setting).
const DEFAULT_INPUTS: usize = 100_000;
/// Largest single allocation any input may cause: a sealed block (1 MiB) and its envelope,
/// with room. An input is at most a few KiB; anything near this means a length was trusted.
const ALLOCATION_LIMIT: usize = 4 << 20;

/// The system allocator, remembering per thread the largest single allocation since the last
/// reset (per thread: other tests run beside the fuzzer and allocate what they like).
struct Measured;

thread_local! {
    // Const-initialised and without a destructor: touching it never allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is passed to the system allocator unchanged; only a counter is updated.
unsafe impl GlobalAlloc for Measured {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Measured = Measured;

/// xorshift64*: fast, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that make decoders take unusual paths: CBOR headers of byte strings, text, arrays and
/// maps announcing 4- and 8-byte lengths, varint continuation bytes, the extremes.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xff, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x5a, 0x5b, 0x7a, 0x7b, 0x9a, 0x9b,
    0xba, 0xbb, 0x5f, 0x9f, 0xbf, 0xf6, 0xf7,
];

/// One mutation of a seed (sometimes several), or random bytes.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                // A length header claiming far more than follows.
                let header = [0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
                let take = 1 + rng.below(header.len());
                input.splice(at..at, header[..take].iter().copied());
            }
            3 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(input.len());
                input.drain(at.min(end)..end);
            }
            5 => input.truncate(at),
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            7 => {
                let n = rng.below(256);
                input = (0..n).map(|_| rng.next() as u8).collect();
            }
            _ => {
                // Varint length prefixes: continuation bytes with nothing after.
                input.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x7f]);
            }
        }
    }
    input
}

fn inputs() -> usize {
    std::env::var("JELLYFISH_FUZZ_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_INPUTS)
}

/// Feeds `target` mutated `seeds` (and the seeds themselves); fails on the first input that
/// panics or allocates past the limit, showing it.
fn fuzz(name: &str, seed: u64, seeds: &[Vec<u8>], mut target: impl FnMut(&[u8])) {
    let mut rng = Rng(seed | 1);
    let n = inputs();
    let started = std::time::Instant::now();
    for i in 0..n {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            mutate(&mut rng, seeds)
        };
        LARGEST.with(|largest| largest.set(0));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        let largest = LARGEST.with(Cell::get);
        assert!(
            outcome.is_ok(),
            "{name}: input {i} panicked: {:02x?}",
            input
        );
        assert!(
            largest <= ALLOCATION_LIMIT,
            "{name}: input {i} ({} bytes) allocated {largest} bytes at once: {:02x?}",
            input.len(),
            &input[..input.len().min(64)]
        );
    }
    println!(
        "fuzz {name}: {n} inputs in {:.1} s, no panic, no allocation over {} MiB",
        started.elapsed().as_secs_f64(),
        ALLOCATION_LIMIT >> 20
    );
}

fn owner() -> PrivateKey {
    PrivateKey::generate_bits(2048).expect("an RSA key")
}

#[test]
fn fuzz_the_request_response_envelope_and_the_holder() {
    let key = owner();
    let der = key.public().to_der().unwrap();
    let donor = Keypair::generate_ed25519();
    let pledge = Pledge::sign(&donor, sha256(&der), 1 << 30).unwrap();
    let block = vec![9u8; 600];
    let id = BlockId::of(&block);
    let requests = [
        Request::Hello {
            agent: "jellyfish/0.1.0".into(),
        },
        Request::StoreBlock {
            warrant: crate::warrant::Warrant::new(
                &id,
                der.clone(),
                3,
                vec![pledge.clone(), pledge],
                1_800_000_000,
                |m| key.sign(m),
            ),
            block,
            repair: true,
            fellows: protocol::fellows_of(&PeerId::random(), &[PeerId::random(), PeerId::random()]),
        },
        Request::FetchBlock { id },
        Request::DeleteBlock {
            id,
            owner: der.clone(),
            signature: vec![1; 256],
            history: vec![crate::key_history::KeyLink {
                previous: der.clone(),
                signature: vec![2; 256],
            }],
        },
        Request::Discard {
            payload: vec![0; 100],
        },
        Request::Fill { len: 1000 },
        Request::Inventory,
        Request::Claim {
            id,
            owner: der.clone(),
            signature: vec![3; 256],
            history: Vec::new(),
        },
        Request::Witness {
            blocks: vec![crate::receipt::Witnessed {
                id,
                owner: sha256(&der),
                receipts: vec![crate::receipt::Receipt::sign(&donor, &id, &sha256(&der)).unwrap()],
            }],
        },
        Request::ProveEach {
            challenges: vec![(id, 0xdead_beef), (BlockId([9; 32]), 3)],
        },
    ];
    let seeds: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| protocol::encode(r).unwrap())
        .collect();
    let store = block_on(BlockStore::open(64 << 20)).unwrap();
    let holder_key = Keypair::generate_ed25519();
    let (audits, _queue) = crate::holder::DonorAudits::new();
    let named = crate::holder::NamedFellows::default();
    fuzz("requests, answered by a holder", 1, &seeds, |bytes| {
        if let Ok(request) = protocol::decode::<Request>(bytes, MAX_REQUEST_BYTES) {
            let holder = crate::holder::Holder {
                store: &store,
                keypair: &holder_key,
                probes: crate::holder::Probes::Answered,
                pledges: crate::holder::Pledges::Audited(&audits),
                named: Some(&named),
            };
            let _ = block_on(crate::holder::answer(holder, request));
        }
    });

    let proved: Vec<u8> = (0..5 * crate::proof::LEAF + 77).map(|i| i as u8).collect();
    let responses = [
        Response::Hello {
            agent: "x".into(),
            connected_peers: 3,
        },
        Response::Stored {
            receipt: crate::receipt::Receipt::sign(&donor, &id, &[1; 32]).unwrap(),
        },
        Response::Noted { kept: 3 },
        Response::Claimed,
        Response::Block {
            bytes: vec![4; 300],
        },
        Response::Deleted,
        Response::Discarded,
        Response::Refused {
            reason: "busy".into(),
        },
        Response::Proofs {
            answers: vec![
                protocol::Proved::Proof(crate::proof::prove(&proved, 3)),
                protocol::Proved::Refused("block not held here".into()),
            ],
        },
        Response::Inventory {
            held: 1 << 30,
            sample: vec![BlockId([7; 32]); 4],
        },
    ];
    let seeds: Vec<Vec<u8>> = responses
        .iter()
        .map(|r| protocol::encode(r).unwrap())
        .collect();
    // A proof is checked as the auditor checks it, against the proved block's address.
    let address = crate::proof::root(&proved);
    fuzz(
        "responses, proofs and receipts checked",
        2,
        &seeds,
        |bytes| match protocol::decode::<Response>(bytes, MAX_RESPONSE_BYTES) {
            Ok(Response::Proofs { answers }) => {
                for answer in answers {
                    if let protocol::Proved::Proof(proof) = answer {
                        let _ = crate::proof::verify(&address, 3, &proof);
                    }
                }
            }
            Ok(Response::Stored { receipt }) => {
                let _ = receipt.verify(&id, &[1; 32]);
            }
            _ => {}
        },
    );
}

#[test]
fn fuzz_records_pledges_and_account_bodies() {
    let key = owner();
    let account = AccountId([3; 32]);
    let mut records: Vec<SignedRecord> = [
        (RecordKind::PublicKey, Vec::new()),
        (RecordKind::UserKey, vec![5; 400]),
        (RecordKind::FileIndex, vec![6; 80]),
    ]
    .into_iter()
    .map(|(kind, body)| SignedRecord::sign(kind, account, 7, &key, body).unwrap())
    .collect();
    // A record of an account that changed its password: it carries a hand-over.
    let next = crate::crypto::rsa_keys::PrivateKey::generate_bits(2048).unwrap();
    let link = crate::key_history::KeyLink::sign(&key, &next.public()).unwrap();
    records.push(
        SignedRecord::sign_with_history(
            RecordKind::PrivateKey,
            account,
            8,
            &next,
            vec![link],
            vec![4; 300],
        )
        .unwrap(),
    );
    // Letters, alone and as the bundle a recipient's key holds.
    let letters: Vec<VerifiedRecord> = [&key, &next]
        .into_iter()
        .map(|k| {
            let letter = SignedRecord::sign(RecordKind::Letter, account, 9, k, vec![2; 500]);
            let letter = letter.unwrap();
            VerifiedRecord::from_wire(&letter.key(), &letter.to_wire()).unwrap()
        })
        .collect();
    records.push(letters[0].record().clone());
    let mut seeds: Vec<Vec<u8>> = records.iter().map(SignedRecord::to_wire).collect();
    let mut keys: Vec<Vec<u8>> = records.iter().map(SignedRecord::key).collect();
    seeds.push(crate::record::LetterBundle::wire(&letters));
    keys.push(letters[0].record().key());
    let mut which = 0;
    fuzz("DHT records", 3, &seeds, |bytes| {
        which = (which + 1) % keys.len();
        let _ = VerifiedRecord::from_wire(&keys[which], bytes);
        if let Ok(held) = crate::record::verify_value(&keys[which], bytes) {
            // What a holder does with a bundle it is sent: merges each letter into its own.
            for letter in &held {
                let _ =
                    crate::net::record_policy::merge_letter(letter, Some(&seeds[seeds.len() - 1]));
            }
        }
    });

    let donor = Keypair::generate_ed25519();
    let pledges = vec![Pledge::sign(&donor, [8; 32], 5 << 30).unwrap(); 2];
    let seeds = vec![protocol::encode(&pledges).unwrap()];
    fuzz("pledges", 4, &seeds, |bytes| {
        if let Ok(pledges) = protocol::decode::<Vec<Pledge>>(bytes, MAX_REQUEST_BYTES) {
            let _ = pledge::allowance(&pledges, &[8; 32]);
        }
    });

    for (i, (name, seed)) in crate::account::fuzz_targets::seeds()
        .into_iter()
        .enumerate()
    {
        fuzz(name, 10 + i as u64, &[seed], |bytes| {
            crate::account::fuzz_targets::decode_as(name, bytes);
        });
    }
}

#[test]
fn fuzz_manifests_and_the_file_index() {
    let _ = FileId([0; 16]);
    for (i, (name, seed)) in crate::files::fuzz_targets::seeds().into_iter().enumerate() {
        fuzz(name, 20 + i as u64, &[seed], |bytes| {
            crate::files::fuzz_targets::decode_as(name, bytes);
        });
    }
}

#[test]
fn fuzz_webrtc_signalling_and_frames() {
    let signals = [
        Signal {
            kind: SignalKind::Offer,
            data: Some("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into()),
        },
        Signal {
            kind: SignalKind::Candidate,
            data: Some(r#"{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}"#.into()),
        },
        Signal {
            kind: SignalKind::Answer,
            data: None,
        },
    ];
    let seeds: Vec<Vec<u8>> = signals.iter().map(|s| s.encode().unwrap()).collect();
    fuzz("signalling messages", 30, &seeds, |bytes| {
        let mut stream = futures::io::Cursor::new(bytes.to_vec());
        if block_on(crate::webrtc::proto::read_signal(&mut stream)).is_err() {
            let _ = Signal::decode(bytes);
        }
    });

    let frames = [
        Frame::data(vec![1; 700]),
        Frame::flag(Flag::Fin),
        Frame::flag(Flag::Reset),
        Frame::flag(Flag::StopSending),
        Frame::flag(Flag::FinAck),
        Frame::flag(Flag::Ready),
        Frame::data(vec![2; 30]),
        Frame::flag(Flag::Fin),
    ];
    let seeds: Vec<Vec<u8>> = vec![frames.iter().flat_map(Frame::encode).collect()];
    let mut rng = Rng(31);
    fuzz("data-channel frames", 31, &seeds, |bytes| {
        // Fed as the data channel would: in messages of any size, and each frame applied as
        // `webrtc::browser::channel` applies it, to a channel of either opener marked for
        // reuse: READY to its life, a frame between streams as a new stream's, the rest to
        // the stream on it.
        let mut decoder = FrameDecoder::default();
        let mut lives =
            [Opener::Us, Opener::Remote].map(|o| (Life::new(o, true), StreamState::default()));
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = 1 + rng.below(rest.len());
            let Ok(decoded) = decoder.push(&rest[..take]) else {
                break;
            };
            rest = &rest[take..];
            for frame in decoded {
                for (life, stream) in &mut lives {
                    if frame.flag == Some(Flag::Ready) {
                        life.ready(0);
                        continue;
                    }
                    if life.phase() != Phase::Streaming {
                        if life.frame_between_streams() != Step::NewStream {
                            continue;
                        }
                        *stream = StreamState::default();
                    }
                    stream.on_frame_with_unread(frame.clone(), 0);
                    if stream.is_done() {
                        life.stream_done(true, 0);
                    }
                }
            }
        }
        for (life, _) in &lives {
            assert!(life.streams() >= 1);
        }
    });
}
