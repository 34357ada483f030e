//! The relay-link state machine, driven through dials, losses, backoff and re-walks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn relays(n: usize) -> (Vec<PeerId>, RelayLinks) {
    let peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
    let links = RelayLinks::new(peers.iter().enumerate().map(|(i, p)| {
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/ws/p2p/{p}", 9000 + i)
            .parse()
            .unwrap();
        (*p, addr)
    }));
    (peers, links)
}

/// Carries out the dials of `actions` as the event loop does; returns (relay, dial id).
fn dials(links: &mut RelayLinks, actions: &[Action]) -> Vec<(PeerId, ConnectionId)> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial { relay, addr } => {
                assert!(addr.to_string().ends_with(&relay.to_string()));
                let id = ConnectionId::new_unchecked(
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                );
                links.on_dial_started(relay, id);
                Some((*relay, id))
            }
            Action::Listen { .. } => None,
        })
        .collect()
}

fn listens(actions: &[Action]) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Listen { relay, circuit } => {
                assert!(circuit.to_string().ends_with("/p2p-circuit"), "{circuit}");
                Some(*relay)
            }
            Action::Dial { .. } => None,
        })
        .collect()
}

/// Three relays listed, the first two dialled and connected.
fn first_two_connected() -> (Vec<PeerId>, RelayLinks, Instant) {
    let (peers, mut links) = relays(3);
    let now = Instant::now();
    let actions = links.poll(now);
    dials(&mut links, &actions);
    assert!(links.on_connected(&peers[0]));
    assert!(links.on_connected(&peers[1]));
    (peers, links, now)
}

fn peers_of(dialled: &[(PeerId, ConnectionId)]) -> Vec<PeerId> {
    dialled.iter().map(|(p, _)| *p).collect()
}

#[test]
fn dials_the_first_two_and_reserves_on_each() {
    let (peers, mut links) = relays(3);
    let now = Instant::now();
    let actions = links.poll(now);
    let dialled = dials(&mut links, &actions);
    assert_eq!(peers_of(&dialled), peers[..KEEP]);
    assert_eq!(links.state(now), RelayState::Connecting);
    assert!(links.poll(now).is_empty(), "nothing twice");

    assert!(links.on_connected(&peers[0]));
    assert!(!links.on_connected(&PeerId::random()));
    assert!(!links.on_connected(&peers[0]), "once");
    assert_eq!(links.state(now), RelayState::Connected);
    let actions = links.poll(now);
    assert_eq!(listens(&actions), vec![peers[0]]);
    links.on_listening(&peers[0], Some(ListenerId::next()), now);
    assert!(links.poll(now).is_empty());
    assert!(!links.reservation());
    links.on_reservation(&peers[0]);
    assert!(links.reservation());
    assert_eq!(links.connected().count(), 1);
}

#[test]
fn a_lost_relay_is_replaced_and_stays_down_until_a_place_is_free() {
    let (peers, mut links, now) = first_two_connected();
    links.poll(now);

    // The first relay goes down: the third is dialled at once.
    let delay = links.on_closed(&peers[0], now).expect("a relay link");
    assert_eq!(delay, Duration::from_millis(500));
    assert_eq!(links.down().collect::<Vec<_>>(), vec![peers[0]]);
    let actions = links.poll(now);
    assert_eq!(peers_of(&dials(&mut links, &actions)), vec![peers[2]]);
    links.on_connected(&peers[2]);
    links.poll(now);
    // Two are up: the lost one is neither dialled nor let through once its wait is over.
    assert_eq!(links.next_wake(), None);
    let later = now + Duration::from_secs(60);
    let actions = links.poll(later);
    assert!(dials(&mut links, &actions).is_empty());
    assert_eq!(links.down().collect::<Vec<_>>(), vec![peers[0]]);

    // Another goes: now the first is dialled again (its wait is over).
    links.on_closed(&peers[1], later);
    let actions = links.poll(later);
    assert_eq!(peers_of(&dials(&mut links, &actions)), vec![peers[0]]);
    assert_eq!(
        links.down().collect::<Vec<_>>(),
        vec![peers[0], peers[1]],
        "a relay that failed is down while the link dials it again"
    );
    assert_eq!(links.state(now), RelayState::Connected);
    assert!(links.on_closed(&peers[1], later).is_none(), "already down");
}

#[test]
fn unreachable_relays_are_tried_again_with_a_growing_wait() {
    let (peers, mut links) = relays(2);
    let mut now = Instant::now();
    let actions = links.poll(now);
    let mut dialled = dials(&mut links, &actions);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let (peer, delay) = links.on_dial_failed(dialled[0].1, now).unwrap();
        assert_eq!(peer, dialled[0].0);
        links.on_dial_failed(dialled[1].1, now).unwrap();
        assert!(links.on_dial_failed(dialled[1].1, now).is_none(), "once");
        waits.push(delay.as_millis());
        assert_eq!(links.next_wake(), Some(now + delay));
        assert!(links.poll(now).is_empty(), "not before the wait is over");
        let RelayState::Reconnecting {
            retry_in_ms,
            attempts,
        } = links.state(now)
        else {
            panic!("{:?}", links.state(now));
        };
        assert_eq!(retry_in_ms, delay.as_millis() as u64);
        assert_eq!(attempts as usize, waits.len());
        now += delay;
        let actions = links.poll(now);
        dialled = dials(&mut links, &actions);
        assert_eq!(dialled.len(), 2);
    }
    assert_eq!(waits, [500, 1000, 2000, 4000]);
    // A success resets the wait.
    links.on_connected(&peers[0]);
    assert_eq!(
        links.on_closed(&peers[0], now),
        Some(Duration::from_millis(500))
    );
}

#[test]
fn a_dial_that_hangs_gives_its_place_to_the_next_relay() {
    let (peers, mut links) = relays(3);
    let now = Instant::now();
    let actions = links.poll(now);
    let dialled = dials(&mut links, &actions);
    links.on_connected(&peers[1]);
    links.poll(now);
    // The first relay's dial gets no answer: after DIAL_TIMEOUT the third is tried.
    assert_eq!(links.next_wake(), Some(now + DIAL_TIMEOUT));
    let late = now + DIAL_TIMEOUT;
    let actions = links.poll(late);
    assert_eq!(peers_of(&dials(&mut links, &actions)), vec![peers[2]]);
    assert_eq!(links.down().collect::<Vec<_>>(), vec![peers[0]]);
    // The hung dial failing at last changes nothing more.
    assert!(links.on_dial_failed(dialled[0].1, late).is_none());
}

#[test]
fn other_connections_to_relays_are_not_links() {
    let (peers, mut links, now) = first_two_connected();
    // A DHT walk reaches the third relay: no third link, no reservation there.
    assert!(!links.on_connected(&peers[2]));
    assert!(listens(&links.poll(now)).len() == 2);
    assert_eq!(links.connected().count(), KEEP);
    assert!(links.on_closed(&peers[2], now).is_none());
    // A dial that is not a link's own failing is no loss.
    assert!(links
        .on_dial_failed(ConnectionId::new_unchecked(usize::MAX), now)
        .is_none());
    // With a place free, a connection made by a walk becomes a link.
    links.on_closed(&peers[0], now);
    assert!(links.on_connected(&peers[0]));
}

#[test]
fn a_refused_or_dropped_reservation_is_asked_for_again_later() {
    let (peers, mut links) = relays(1);
    let now = Instant::now();
    let actions = links.poll(now);
    dials(&mut links, &actions);
    links.on_connected(&peers[0]);
    links.poll(now);
    let id = ListenerId::next();
    links.on_listening(&peers[0], Some(id), now);
    links.on_reservation(&peers[0]);
    assert!(!links.on_listener_closed(ListenerId::next(), now));
    assert!(links.on_listener_closed(id, now));
    assert!(!links.reservation());
    let at = links.next_wake().expect("a retry");
    assert!(at > now);
    assert!(links.poll(now).is_empty());
    assert_eq!(listens(&links.poll(at)), vec![peers[0]]);
    // listen_on itself failing waits too.
    links.on_listening(&peers[0], None, at);
    assert!(links.poll(at).is_empty());
    assert!(links.next_wake().unwrap() > at);
}

#[test]
fn picks_one_websocket_address_with_a_peer_id_per_relay() {
    let (a, b) = (PeerId::random(), PeerId::random());
    let addrs = vec![
        "not an address".to_owned(),
        format!("/ip4/127.0.0.1/tcp/1/p2p/{a}"),
        "/ip4/127.0.0.1/tcp/2/ws".to_owned(),
        format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{a}"),
        format!("/ip4/10.0.0.1/tcp/3/ws/p2p/{a}"),
        format!("/dns4/relay.example.org/tcp/443/wss/p2p/{b}"),
    ];
    let picked: Vec<String> = browser_dialable(&addrs)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        picked,
        [
            format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{a}"),
            format!("/dns4/relay.example.org/tcp/443/wss/p2p/{b}")
        ]
    );
    assert!(browser_dialable(&addrs[..3]).is_empty());
    let many: Vec<String> = (0..100)
        .map(|i| format!("/ip4/127.0.0.1/tcp/{i}/ws/p2p/{}", PeerId::random()))
        .collect();
    assert_eq!(browser_dialable(&many).len(), MAX_LISTED);
}

#[test]
fn no_relays_and_duplicates() {
    let mut none = RelayLinks::new([]);
    assert_eq!(none.state(Instant::now()), RelayState::None);
    assert!(none.poll(Instant::now()).is_empty());
    let peer = PeerId::random();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}")
        .parse()
        .unwrap();
    let mut twice = RelayLinks::new([(peer, addr.clone()), (peer, addr)]);
    let actions = twice.poll(Instant::now());
    assert_eq!(dials(&mut twice, &actions).len(), 1);
}

#[test]
fn tuning_sets_how_many_relays_are_held_and_how_long_a_dial_may_take() {
    let (peers, links) = relays(4);
    let tuning = super::super::Tuning {
        relays_kept: 3,
        relay_dial_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let mut links = links.tuned(&tuning);
    let now = Instant::now();
    let actions = links.poll(now);
    let dialled = dials(&mut links, &actions);
    assert_eq!(peers_of(&dialled), peers[..3]);
    assert_eq!(links.next_wake(), Some(now + Duration::from_secs(2)));
}
