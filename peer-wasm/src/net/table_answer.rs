//! When this peer's own routing table already names the peers a placement walk would find.
//!
//! Every block of an upload is placed on the peers closest to its address, and finding them
//! took a Kademlia walk per block: in the 8-tab cluster 8 requests each, 1,048 find-node
//! requests for a 128 MiB file, all answered from tables that already listed every tab.
//!
//! Kademlia's own argument says when a walk can learn nothing new. A k-bucket holds up to k
//! peers at one range of distances from this peer, and a bucket with fewer than k holds every
//! peer in its range that this peer heard of (none was turned away), which the table's
//! refresh (a walk into every bucket, every 5 minutes) keeps to every live one. The peers
//! closest to a key come from the buckets in a fixed order: the key's own bucket `i` (they
//! share this peer's distance prefix with the key), then every bucket below `i`, then `i + 1`,
//! `i + 2`, and on. So if every bucket up to the farthest one the local answer draws on has
//! room left, no unknown peer can be nearer than the ones named: the walk is skipped. In a
//! network of thousands the key's bucket is the far half of the network, always full, and
//! every placement still walks.
//!
//! What is given up: a tab that joined since the last refresh and never reached this peer
//! (its own first walk asks the peers nearest itself, which in a network of fewer than k is
//! everyone) can be missed for a block it is nearest to; the block then sits on the next
//! nearest, as when a walk misses it, and stays listed with its holders in the manifest.

use std::collections::BTreeMap;

/// How long after the last table refresh its buckets are trusted to list every live peer:
/// libp2p-kad refreshes every 5 minutes, and this peer also walks each minute while its table
/// is thin ([`super::rewalk`]).
pub(crate) const TRUSTED_FOR: std::time::Duration = std::time::Duration::from_secs(6 * 60);

/// Whether the nearest peers this peer knows to a key are the nearest there are, as far as a
/// walk could tell.
///
/// - `fill`: each non-empty bucket's index (the bit length of its distances, minus one) and
///   how many peers it holds;
/// - `key_bucket`: the index of the bucket the key falls in (`None` for this peer's own key);
/// - `nearest`: the bucket index of each peer of the local answer, nearest to the key first;
/// - `wanted`: how many peers the walk would have confirmed; `k`: a bucket's capacity.
pub(crate) fn table_answers(
    fill: &BTreeMap<u32, usize>,
    key_bucket: Option<u32>,
    nearest: &[u32],
    wanted: usize,
    k: usize,
) -> bool {
    let room_up_to = |last: Option<u32>| {
        fill.iter()
            .filter(|(index, _)| last.is_none_or(|last| **index <= last))
            .all(|(_, peers)| *peers < k)
    };
    if nearest.is_empty() {
        // Nothing to answer with: a walk can only do better.
        return false;
    }
    if nearest.len() < wanted {
        // Fewer peers known than wanted: complete only if no bucket ever turned one away.
        return room_up_to(None);
    }
    let farthest = nearest[..wanted].iter().copied().chain(key_bucket).max();
    room_up_to(farthest)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const K: usize = 20;

    fn fill(buckets: &[(u32, usize)]) -> BTreeMap<u32, usize> {
        buckets.iter().copied().collect()
    }

    #[test]
    fn a_small_network_is_answered_from_the_table() {
        // 7 peers spread over the top buckets, none full: every one is known.
        let table = fill(&[(255, 4), (254, 2), (252, 1)]);
        assert!(table_answers(
            &table,
            Some(255),
            &[255, 255, 255, 255, 254, 254],
            6,
            K
        ));
        // Fewer known than wanted is still everyone.
        assert!(table_answers(&table, Some(254), &[254, 254, 255], 6, K));
    }

    #[test]
    fn a_full_bucket_on_the_way_means_a_walk() {
        // The key's own bucket is full: an unknown peer in it may be nearer.
        let table = fill(&[(255, K), (254, 10)]);
        assert!(!table_answers(&table, Some(255), &[255; 6], 6, K));
        // The answer reaches into a full bucket below the key's.
        let table = fill(&[(255, 10), (254, 1), (253, K)]);
        assert!(!table_answers(
            &table,
            Some(254),
            &[254, 253, 253, 253, 253, 253],
            6,
            K
        ));
        // Too few known and some bucket turned peers away.
        let table = fill(&[(255, K), (200, 1)]);
        assert!(!table_answers(&table, Some(200), &[200], 6, K));
    }

    #[test]
    fn full_buckets_beyond_the_answer_do_not_matter() {
        // The six nearest all sit in the key's bucket 250, which has room: the full far half
        // of the network (bucket 255) holds no peer nearer to this key.
        let table = fill(&[(255, K), (250, 8)]);
        assert!(table_answers(&table, Some(250), &[250; 6], 6, K));
        // The same answer drawing on bucket 255 needs it to have room.
        assert!(!table_answers(
            &table,
            Some(250),
            &[250, 250, 250, 250, 250, 255],
            6,
            K
        ));
    }

    #[test]
    fn an_empty_table_walks() {
        assert!(!table_answers(&BTreeMap::new(), Some(255), &[], 6, K));
    }
}
