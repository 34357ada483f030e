//! A whole peer: the network, plus the holder that serves this peer's donated storage.

use libp2p::identity::Keypair;

use crate::{
    net::{self, Client, Config, Event, NetError},
    platform::{self, Shared},
    store::{BlockStore, StoreError},
};

/// A running peer.
pub struct Node {
    /// This peer's key: its identity, and what signs its pledges.
    pub keypair: Keypair,
    /// Drives the network.
    pub client: Client,
    /// What happens.
    pub events: futures::channel::mpsc::Receiver<Event>,
    /// What this peer holds for others.
    pub store: Shared<BlockStore>,
    /// What this peer's holder knows of pledging peers and of what other holders were given.
    pub audits: Shared<crate::holder::DonorAudits>,
    /// What this peer's repairer has done.
    pub repairs: Shared<std::sync::Mutex<crate::holder::RepairLog>>,
}

/// Why a peer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The block store could not open.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts the network and the holder; `donation` is the space offered to others when none
/// was chosen before. Repairs with the default [`crate::repair::Settings`].
pub async fn start(keypair: Keypair, config: Config, donation: u64) -> Result<Node, StartError> {
    start_with(
        keypair,
        config,
        donation,
        crate::repair::Settings::default(),
    )
    .await
}

/// [`start`], with the repairer's schedule (tests and simulations run it faster).
pub async fn start_with(
    keypair: Keypair,
    config: Config,
    donation: u64,
    repair: crate::repair::Settings,
) -> Result<Node, StartError> {
    let store = Shared::new(BlockStore::open(donation).await?);
    let probes = match config.answer_probes {
        true => crate::holder::Probes::Answered,
        false => crate::holder::Probes::Refused,
    };
    let started = net::start(keypair.clone(), config)?;
    let (audits, queue) = crate::holder::DonorAudits::new();
    let named = Shared::new(crate::holder::NamedFellows::default());
    platform::spawn(crate::holder::serve(
        started.client.clone(),
        started.inbound,
        store.clone(),
        keypair.clone(),
        probes,
        audits.clone(),
        named.clone(),
    ));
    platform::spawn(crate::holder::audit_donors(
        started.client.clone(),
        queue,
        audits.clone(),
        store.clone(),
    ));
    let repairs = Shared::new(std::sync::Mutex::new(crate::holder::RepairLog::default()));
    let repairer = crate::holder::Repairer::new(
        started.client.clone(),
        keypair.public().to_peer_id(),
        repair,
        repairs.clone(),
    )
    .with_receipts(audits.clone())
    .with_named(named);
    platform::spawn(repairer.run(store.clone()));
    Ok(Node {
        keypair,
        client: started.client,
        events: started.events,
        store,
        audits,
        repairs,
    })
}
