//! The DHT: what identify teaches the routing table, walks and record queries as they end,
//! records stored and read under the record policy ([`crate::net::record_policy`],
//! [`crate::net::record_limits`]), and which peers may hold blocks.

use std::collections::{BTreeMap, HashSet};

use futures::future::{Fuse, FutureExt};
use futures_timer::Delay;
use libp2p::{identify, kad, PeerId};

use super::{Dht, EventLoop};
use crate::net::{
    journaled_store::PersistedRecord,
    queries::{PeersReply, Query},
    record_limits::{Admit, Candidate, HeldRecords, RecordLimits},
    record_policy::{self},
    table_answer, LookupStats, NetError,
};
use crate::{
    protocol::{KAD_PROTOCOL, RPC_PROTOCOL},
    record::{verify_value, RecordError, RecordKind, VerifiedRecord},
};

impl EventLoop {
    pub(super) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        self.book.on_identified(
            peer_id,
            info.agent_version.clone(),
            info.protocols.iter().map(ToString::to_string).collect(),
        );
        if !info.protocols.contains(&KAD_PROTOCOL) {
            return;
        }
        // A bare `/webrtc` address (the listener) reaches no one; skip it.
        let dialable = info
            .listen_addrs
            .into_iter()
            .filter(|a| !crate::webrtc::is_webrtc(a) || crate::webrtc::through_circuit(a));
        for addr in dialable {
            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        if let kad::Event::InboundRequest { request } = &event {
            // What a tab is asked for, for `tests/bench/cluster.mjs --profile`.
            let kind = match request {
                kad::InboundRequest::FindNode { .. } => "dht find node",
                kad::InboundRequest::GetProvider { .. } => "dht get providers",
                kad::InboundRequest::AddProvider { .. } => "dht add provider",
                kad::InboundRequest::GetRecord { .. } => "dht get record",
                kad::InboundRequest::PutRecord { .. } => "dht put record",
            };
            tracing::debug!(target: crate::TIMING, kind, "request received");
        }
        if let kad::Event::OutboundQueryProgressed {
            id,
            result,
            stats,
            step,
        } = &event
        {
            // Which walks a tab starts and what each cost, for `cluster.mjs --profile`: ours
            // are in `queries`, the rest are Kademlia's own (bootstrap, republishing).
            if step.last {
                let kind = match result {
                    kad::QueryResult::Bootstrap(_) => "bootstrap",
                    kad::QueryResult::GetClosestPeers(_) => match self.dht.queries.get(id) {
                        Some(Query::Closest(_)) => "closest",
                        Some(Query::Rewalk) => "rewalk",
                        Some(_) => "other closest",
                        None => "kademlia's closest",
                    },
                    kad::QueryResult::GetRecord(_) => "get record",
                    kad::QueryResult::PutRecord(_) => "put record",
                    kad::QueryResult::RepublishRecord(_) => "republish record",
                    _ => "other",
                };
                let requests = stats.num_requests();
                tracing::debug!(target: crate::TIMING, kind, requests, "query done");
            }
        }
        match event {
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                step,
                ..
            } if step.last => {
                // A walk refreshing every bucket (ours or Kademlia's own) ended: unless it
                // timed out, the table lists every live peer it could. Walk again soon while
                // the table is thin.
                if result.is_ok() {
                    self.dht.walks.refreshed(web_time::Instant::now());
                }
                self.schedule_rewalk();
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                stats,
                ..
            } => {
                let Some(query) = self.dht.queries.remove(&id) else {
                    return;
                };
                let (key, peers) = match result {
                    Ok(ok) => (ok.key, ok.peers),
                    Err(kad::GetClosestPeersError::Timeout { key, peers }) => (key, peers),
                };
                if let Query::Lookup(reply) = query {
                    let _ = reply.send(LookupStats {
                        found: peers.len(),
                        requests: stats.num_requests(),
                        successes: stats.num_successes(),
                        failures: stats.num_failures(),
                        millis: stats.duration().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    });
                    return;
                }
                let local = *self.swarm.local_peer_id();
                let mut found = Vec::new();
                for info in peers {
                    if info.peer_id == local {
                        continue;
                    }
                    for addr in info.addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&info.peer_id, addr);
                    }
                    found.push(info.peer_id);
                }
                match query {
                    Query::Rewalk => self.schedule_rewalk(),
                    Query::Discover(reply) => {
                        let _ = reply.send(Ok(found));
                    }
                    Query::Closest(reply) => {
                        let _ = reply.send(Ok(self.storage_candidates(key, found)));
                    }
                    Query::Find(outbound) => {
                        if found.contains(&outbound.peer) {
                            self.send_request(outbound.last_try());
                        } else {
                            let _ = outbound.reply.send(Err(NetError::Request {
                                peer: outbound.peer,
                                reason: "it could not be dialled, and the DHT did not find it"
                                    .into(),
                            }));
                        }
                    }
                    other => tracing::debug!(?other, "a peers walk ended for another query"),
                }
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => match verify_value(record.key.as_ref(), &record.value) {
                // One record, or a bundle of letters: each is taken on its own.
                Ok(verified) => {
                    for one in &verified {
                        if let Err(e) = self.store_record(one, Some(source), record.expires) {
                            tracing::info!(%source, "DHT record refused: {e}");
                        }
                    }
                }
                Err(e) => tracing::info!(%source, "DHT record refused: {e}"),
            },
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::PutRecord(result),
                ..
            } => {
                if let Some(Query::Put(reply)) = self.dht.queries.remove(&id) {
                    let _ = reply.send(
                        result
                            .map(|_| ())
                            .map_err(|e| NetError::NotStored(e.to_string())),
                    );
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                step,
                stats,
            } => self.on_get_record_progress(id, result, step.last, &stats),
            kad::Event::RoutingUpdated {
                peer, is_new_peer, ..
            } => {
                tracing::debug!(%peer, "DHT routing table updated");
                if is_new_peer {
                    // Each entry starts Kademlia's own walk while the table is small: for
                    // `cluster.mjs --profile`.
                    tracing::debug!(target: crate::TIMING, %peer, "table grew");
                }
                if is_new_peer && self.holds_records(&peer) {
                    self.hand_records_to(peer);
                }
            }
            _ => {}
        }
    }

    /// Takes back the records held before a reload, through the same checks as any record
    /// sent by another peer (signature, replacement, limits); expired ones stay dropped.
    pub(super) fn restore(&mut self, persisted: Vec<PersistedRecord>) {
        let (now, wall) = (web_time::Instant::now(), web_time::SystemTime::now());
        let mut restored = 0;
        for record in persisted {
            let stored = match record.expires(now, wall) {
                Some(expires) => verify_value(&record.key, &record.value).and_then(|verified| {
                    verified
                        .iter()
                        .try_for_each(|one| self.store_record(one, None, Some(expires)))
                }),
                None => Err(RecordError::Malformed("expired".into())),
            };
            match stored {
                Ok(()) => restored += 1,
                Err(e) => {
                    tracing::info!("a kept DHT record was not restored: {e}");
                    let key = kad::RecordKey::new(&record.key);
                    self.swarm.behaviour_mut().kad.store_mut().forget(&key);
                }
            }
        }
        if restored > 0 {
            tracing::info!(restored, "DHT records held before the reload are back");
        }
    }

    /// Stores a verified record if it may replace what is held under its key and the record
    /// limits let it in. `sender`: the peer that sent it (`None`: this peer's own, or one a
    /// lookup found); `expires`: when the sender says it expires.
    pub(super) fn store_record(
        &mut self,
        record: &VerifiedRecord,
        sender: Option<PeerId>,
        expires: Option<web_time::Instant>,
    ) -> Result<(), RecordError> {
        use kad::store::RecordStore;
        let now = web_time::Instant::now();
        let key = kad::RecordKey::new(&record.record().key());
        let expires = RecordLimits::expiry(expires, now);
        let local = kad::KBucketKey::from(*self.swarm.local_peer_id());
        let target = kad::KBucketKey::new(key.to_vec());
        let distance = target.distance(&local);
        let closer_known = match sender {
            Some(_) => self
                .swarm
                .behaviour_mut()
                .kad
                .get_closest_local_peers(&target)
                .take(20)
                .filter(|peer| peer.distance(&target) < distance)
                .count(),
            None => 0,
        };
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let held = store.get(&key).map(|held| held.into_owned());
        let held_value = held.as_ref().map(|h| h.value.as_slice());
        // Under a recipient's letter key many sharers' letters are kept together.
        let letter = record.record().kind == RecordKind::Letter;
        let value = match letter {
            true => record_policy::merge_letter(record, held_value)?,
            false => record_policy::may_store(record, held_value)?.then(|| record.wire().to_vec()),
        };
        let Some(value) = value else {
            // The same record again: its owner (or a holder passing it on) keeps it alive.
            if let Some(mut held) = held.filter(|h| h.expires.is_some_and(|at| at < expires)) {
                held.expires = Some(expires);
                let _ = store.put(held);
            }
            return Ok(());
        };
        let candidate = Candidate {
            key: key.clone(),
            // A recipient's letters count as one owner's record: the inbox's, whose own
            // limits are the bundle's (`record::MAX_LETTERS`).
            owner: match letter {
                true => crate::crypto::sha256(key.as_ref()),
                false => crate::crypto::sha256(&record.record().owner),
            },
            sender,
            closer_known,
            distance,
            replaces: held.is_some(),
        };
        let count = store.records().count();
        let farthest = (count >= crate::net::record_limits::MAX_RECORDS)
            .then(|| {
                store
                    .records()
                    .map(|r| {
                        let d = kad::KBucketKey::new(r.key.to_vec()).distance(&local);
                        (r.key.clone(), d)
                    })
                    .max_by_key(|(_, d)| *d)
            })
            .flatten();
        let admit = {
            let exists = |k: &kad::RecordKey| store.get(k).is_some();
            let held = HeldRecords {
                exists: &exists,
                count,
                farthest,
            };
            self.dht.limits.admit(&candidate, &held, now)?
        };
        if let Admit::EvictThenStore(farthest) = admit {
            store.remove(&farthest);
        }
        let mut stored = kad::Record::new(key.clone(), value);
        stored.expires = Some(expires);
        store
            .put(stored)
            .map_err(|e| RecordError::Malformed(format!("the local store refused it: {e}")))?;
        let exists = |k: &kad::RecordKey| store.get(k).is_some();
        self.dht.limits.stored(key, candidate.owner, &exists);
        Ok(())
    }

    pub(super) fn on_get_record_progress(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetRecordOk, kad::GetRecordError>,
        last: bool,
        stats: &kad::QueryStats,
    ) {
        let Dht {
            queries,
            verified_values,
            ..
        } = &mut self.dht;
        let Some(Query::Get(answers, _)) = queries.get_mut(&id) else {
            return;
        };
        match result {
            Ok(kad::GetRecordOk::FoundRecord(found)) => {
                // Checked against the key asked for, not the one the answer names.
                let record = &found.record;
                if let Err(e) = answers.offer(
                    verified_values,
                    found.peer,
                    record.key.as_ref(),
                    &record.value,
                ) {
                    tracing::info!(peer = ?found.peer, "ignored a bad record: {e}");
                }
            }
            Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { cache_candidates }) => {
                answers.answered_without(cache_candidates.into_values());
            }
            Err(kad::GetRecordError::NotFound { closest_peers, .. }) => {
                answers.answered_without(closest_peers);
            }
            Err(e) => {
                answers.ended_early();
                tracing::debug!("record lookup: {e}");
            }
        }
        if !last {
            return;
        }
        let Some(Query::Get(answers, reply)) = self.dht.queries.remove(&id) else {
            return;
        };
        if answers.refused() > 0 {
            tracing::info!(
                refused = answers.refused(),
                "record lookup: answers refused"
            );
        }
        let unreachable = stats.num_failures() as usize;
        // Where a lookup's time goes, for `tests/bench/cluster.mjs --profile`: a request that
        // is never answered holds the lookup until Kademlia gives up on it.
        tracing::debug!(
            target: crate::TIMING,
            ms = stats.duration().unwrap_or_default().as_millis() as u64,
            requests = stats.num_requests(),
            answered = stats.num_successes(),
            failed = stats.num_failures(),
            checked = answers.checks(),
            check_ms = answers.check_time().as_millis() as u64,
            "record lookup"
        );
        // The peers heard nearest the key, for a put of the next version to go to.
        let target = kad::KBucketKey::new(answers.key().to_vec());
        let mut near: Vec<PeerId> = answers
            .heard()
            .into_iter()
            .filter(|peer| self.holds_records(peer))
            .collect();
        near.sort_by_key(|peer| kad::KBucketKey::from(*peer).distance(&target));
        near.truncate(usize::from(crate::net::behaviour::K_VALUE));
        let found = match answers.finish(|peer| self.holds_records(peer), unreachable) {
            Ok(found) => found,
            Err(too_few) => {
                let _ = reply.send(Err(NetError::TooFewPeers {
                    heard: too_few.heard,
                    needed: too_few.needed,
                }));
                return;
            }
        };
        if let Some(first) = found.first() {
            // Keep a copy of the newest version most holders agree on: it spreads.
            let _ = self.store_record(&first.record, None, None);
        }
        let _ = reply.send(Ok(crate::net::RecordLookup { found, near }));
    }

    /// Hands a newcomer the records it is now responsible for, as the Kademlia paper has it
    /// (section 2.5): every record held here for which the newcomer is among the k = 20
    /// nearest peers known, when this peer is among the 3 nearest known holders (`HANDERS`; so
    /// a newcomer gets a few copies of each record, not one from every neighbour). Without
    /// it a record reaches newcomers only at the next replication (10 min), and tabs that
    /// come and go faster than that take the records of an owner who is away with them.
    /// Direct puts: no walk, one message per record.
    fn hand_records_to(&mut self, peer: PeerId) {
        use kad::store::RecordStore;
        /// Holders nearest a record that hand it to a newcomer.
        const HANDERS: usize = 3;
        const K: usize = 20;
        let local = kad::KBucketKey::from(*self.swarm.local_peer_id());
        let newcomer = kad::KBucketKey::from(peer);
        let kad = &mut self.swarm.behaviour_mut().kad;
        let held: Vec<kad::Record> = kad.store_mut().records().map(|r| r.into_owned()).collect();
        let mut handed = 0;
        for record in held {
            let target = kad::KBucketKey::new(record.key.to_vec());
            let (to_newcomer, to_me) = (newcomer.distance(&target), local.distance(&target));
            let nearer: Vec<_> = kad
                .get_closest_local_peers(&target)
                .take(K)
                .map(|p| p.distance(&target))
                .filter(|d| *d < to_newcomer || *d < to_me)
                .collect();
            let newcomer_rank = nearer.iter().filter(|d| **d < to_newcomer).count();
            let my_rank = nearer
                .iter()
                .filter(|d| **d < to_me && **d != to_newcomer)
                .count();
            if newcomer_rank < K && my_rank < HANDERS {
                kad.put_record_to(record, std::iter::once(peer), kad::Quorum::One);
                handed += 1;
            }
        }
        if handed > 0 {
            tracing::debug!(%peer, handed, "records handed to a newcomer");
        }
    }

    /// Whether `peer` may hold records: not the relay, and (once identified) a Jellyfish peer.
    pub(super) fn holds_records(&self, peer: &PeerId) -> bool {
        !self.relays.is_relay(peer) && self.book.may_speak(peer, RPC_PROTOCOL.as_ref())
    }

    /// An extra walk while the routing table is thin ([`crate::net::rewalk`]): towards this
    /// peer's own id, which is what finds peers it has not heard of. Kademlia's bootstrap
    /// would add a walk into each farther bucket, 5 lookups of 8 requests in the 8-tab
    /// cluster instead of 1, every 1 to 60 s while the network forms.
    pub(super) fn rewalk(&mut self) {
        let local = *self.swarm.local_peer_id();
        self.dht.walks.walked(web_time::Instant::now());
        let id = self.swarm.behaviour_mut().kad.get_closest_peers(local);
        self.dht.queries.insert(id, Query::Rewalk);
    }

    /// After a walk: the next extra walk while the table is thin, if any.
    fn schedule_rewalk(&mut self) {
        let known = self.known_peer_count();
        let now = web_time::Instant::now();
        self.timers.rewalk = match self.dht.walks.after_walk(known, now) {
            Some(at) => Delay::new(at.saturating_duration_since(now)).fuse(),
            None => Fuse::terminated(),
        };
    }

    /// The peers to place a block at `key` on: from the routing table when it lists every peer
    /// a walk towards `key` confirming `results` could find ([`table_answer`]), else by that
    /// walk.
    pub(super) fn placement_peers(
        &mut self,
        key: Vec<u8>,
        results: std::num::NonZeroUsize,
        reply: PeersReply,
    ) {
        if self.table_answers(&key, results.get()) {
            // As a walk that heard no one new would answer.
            self.dht.placements_from_table += 1;
            tracing::debug!(target: crate::TIMING, kind = "placement from the table", requests = 0, "query done");
            let _ = reply.send(Ok(self.storage_candidates(key, Vec::new())));
        } else {
            self.walk(key, results, Query::Closest(reply));
        }
    }

    /// Whether a walk towards `key` confirming `wanted` storage peers could find none this
    /// peer does not know ([`table_answer::table_answers`]).
    fn table_answers(&mut self, key: &[u8], wanted: usize) -> bool {
        if !self.dht.walks.table_trusted(web_time::Instant::now()) {
            return false;
        }
        let me = kad::KBucketKey::from(*self.swarm.local_peer_id());
        let target = kad::KBucketKey::new(key.to_vec());
        let bucket_of = |distance: kad::KBucketDistance| distance.ilog2();
        let kad = &mut self.swarm.behaviour_mut().kad;
        let fill: BTreeMap<u32, usize> = kad
            .kbuckets()
            .filter_map(|bucket| Some((bucket_of(bucket.range().0)?, bucket.num_entries())))
            .collect();
        let known: Vec<PeerId> = kad
            .get_closest_local_peers(&target)
            .map(|k| *k.preimage())
            .collect();
        let nearest: Vec<u32> = known
            .into_iter()
            .filter(|p| self.holds_records(p))
            .take(wanted)
            .filter_map(|p| bucket_of(kad::KBucketKey::from(p).distance(&me)))
            .collect();
        table_answer::table_answers(
            &fill,
            bucket_of(target.distance(&me)),
            &nearest,
            wanted,
            usize::from(crate::net::behaviour::K_VALUE),
        )
    }

    /// Walks the DHT towards `key` until the `results` closest peers it knows have answered;
    /// the end of the walk answers `query`.
    pub(super) fn walk(&mut self, key: Vec<u8>, results: std::num::NonZeroUsize, query: Query) {
        let id = self
            .swarm
            .behaviour_mut()
            .kad
            .get_n_closest_peers(key, results);
        self.dht.queries.insert(id, query);
    }

    /// The peers that may hold blocks near `key`, nearest first: those the walk `found`, and
    /// those in the routing table it did not hear from this time (a walk that lost a peer to a
    /// closing connection must not leave it out of placement; asking it costs one request).
    /// Peers known not to hold blocks (the relay, any peer without the block protocol) are left
    /// out.
    pub(super) fn storage_candidates(&mut self, key: Vec<u8>, found: Vec<PeerId>) -> Vec<PeerId> {
        const MAX: usize = 20;
        let target = kad::KBucketKey::new(key);
        let known: Vec<PeerId> = self
            .swarm
            .behaviour_mut()
            .kad
            .get_closest_local_peers(&target)
            .take(MAX)
            .map(|k| *k.preimage())
            .collect();
        let mut peers: Vec<PeerId> = found
            .into_iter()
            .chain(known)
            .filter(|p| self.holds_records(p))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        peers.sort_by_key(|p| kad::KBucketKey::from(*p).distance(&target));
        peers.truncate(MAX);
        peers
    }
}
