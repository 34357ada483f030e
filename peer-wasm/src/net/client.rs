//! The handle the application holds: async methods that become [`Command`]s for the event loop.

use futures::{
    channel::{mpsc, oneshot},
    SinkExt,
};
use libp2p::PeerId;
use serde::Serialize;

use super::{KnownPeer, NetError, Status};

/// A request for the event loop, with the oneshot its answer goes to.
#[derive(Debug)]
pub(crate) enum Command {
    Status(oneshot::Sender<Status>),
    Peers(oneshot::Sender<Vec<KnownPeer>>),
    Discover(oneshot::Sender<Result<Vec<PeerId>, NetError>>),
    Hello {
        peer: PeerId,
        reply: oneshot::Sender<Result<HelloReply, NetError>>,
    },
}

/// Another peer's answer to hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelloReply {
    /// The peer that answered.
    pub peer_id: String,
    /// Its software.
    pub agent: String,
    /// How many peers it was connected to.
    pub connected_peers: u32,
}

/// A cheap, cloneable handle on a running peer. Dropping every handle stops the event loop.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
}

impl Client {
    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A snapshot of the peer's state.
    pub async fn status(&self) -> Result<Status, NetError> {
        self.ask(Command::Status).await
    }

    /// The peers in the DHT routing table.
    pub async fn peers(&self) -> Result<Vec<KnownPeer>, NetError> {
        self.ask(Command::Peers).await
    }

    /// Walks the DHT towards our own id and returns the peers it met (never ourselves). The
    /// peers found join the routing table, so they can be dialled by id afterwards.
    pub async fn discover(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(Command::Discover).await?
    }

    /// Says hello to a peer (dialling it through what the DHT knows) and returns its answer.
    pub async fn hello(&self, peer: PeerId) -> Result<HelloReply, NetError> {
        self.ask(|reply| Command::Hello { peer, reply }).await?
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .clone()
            .send(command(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }
}
