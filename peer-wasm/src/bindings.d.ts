// Generated from the Rust types by src/ts_types.rs: do not edit by hand.
// JELLYFISH_WRITE_TS=1 cargo test --release -p jellyfish-peer --lib ts_types
export type Link = "direct" | "relayed" | "relayed_fallback";
export type RelayState = { "state": "none" } | { "state": "connecting" } | { "state": "connected" } | { "state": "reconnecting",
/**
 * Milliseconds until the next attempt, when the state was read.
 */
retry_in_ms: number,
/**
 * Failed attempts so far.
 */
attempts: number, };
export type Status = {
/**
 * This peer's id.
 */
peer_id: string,
/**
 * The link to the relay.
 */
relay: RelayState,
/**
 * Whether a relay holds a reservation for us (other peers can reach us through it).
 */
reservation: boolean,
/**
 * The relays connected now (at most [`Tuning::relays_kept`]).
 */
relays_connected: Array<string>,
/**
 * Addresses other peers can use to reach us.
 */
listen_addrs: Array<string>,
/**
 * Peers with an open connection.
 */
connected_peers: Array<string>,
/**
 * Peers in the DHT routing table.
 */
known_peers: number,
/**
 * DHT records this peer holds (its own and others'), at most
 * [`record_limits::MAX_RECORDS`].
 */
records_held: number,
/**
 * Bytes sent over direct WebRTC connections since start.
 */
direct_bytes_sent: number,
/**
 * Bytes received over direct WebRTC connections since start.
 */
direct_bytes_received: number,
/**
 * Data channels opened on direct WebRTC connections since start, by either side.
 */
direct_channels_opened: number,
/**
 * Streams carried over direct WebRTC connections since start, both ways: more than
 * [`Status::direct_channels_opened`] when channels carry one stream after another.
 */
direct_streams: number,
/**
 * Messages sent on direct WebRTC data channels since start (one `send` each, however many
 * frames it carries).
 */
direct_messages_sent: number,
/**
 * Block placements answered from the routing table since start, each a walk saved
 * ([`table_answer`]).
 */
placements_from_table: number, };
export type KnownPeer = {
/**
 * Its id.
 */
peer_id: string,
/**
 * Addresses it can be reached at.
 */
addrs: Array<string>,
/**
 * Whether a connection to it is open.
 */
connected: boolean,
/**
 * How it is connected, when it is.
 */
link: Link | null, };
export type HelloReply = {
/**
 * The peer that answered.
 */
peer_id: string,
/**
 * Its software.
 */
agent: string,
/**
 * How many peers it was connected to.
 */
connected_peers: number, };
export type PeerEvent = { "type": "relay_connected" } | { "type": "relay_disconnected",
/**
 * Milliseconds until the next attempt.
 */
retry_in_ms: number, } | { "type": "reservation_accepted" } | { "type": "peer_connected",
/**
 * The peer.
 */
peer_id: string, } | { "type": "peer_disconnected",
/**
 * The peer.
 */
peer_id: string, } | { "type": "link",
/**
 * The peer.
 */
peer_id: string,
/**
 * The new link.
 */
link: Link, } | { "type": "hello_received",
/**
 * The peer.
 */
peer_id: string,
/**
 * Its software.
 */
agent: string, } | { "type": "inbound_refused",
/**
 * The peer that sent it.
 */
peer_id: string,
/**
 * Why.
 */
reason: string, };
export type PeerInfo = {
/**
 * Its id.
 */
peer_id: string,
/**
 * Its software, as identify announced it.
 */
agent: string | null,
/**
 * The protocols it announced.
 */
protocols: Array<string>,
/**
 * The last ping's round trip, in milliseconds.
 */
rtt_ms: number | null,
/**
 * How it is connected, when it is.
 */
link: Link | null,
/**
 * The addresses of its open connections.
 */
connections: Array<string>, };
export type PasswordStrength = {
/**
 * 0 (guessable in seconds) to 4 (very unguessable).
 */
score: number,
/**
 * Whether sign-up will accept it.
 */
acceptable: boolean,
/**
 * What makes it weak, if anything.
 */
warning: string | null,
/**
 * How to make it stronger.
 */
suggestions: Array<string>,
/**
 * How long an offline attack on a slow hash would take, in words.
 */
crack_time: string, };
export type Account = {
/**
 * The username.
 */
username: string,
/**
 * Set (true, and only then sent) when the account's key differs from the one this
 * browser saw at its last log-in here: a rotation the user did elsewhere, or an
 * impostor's account.
 */
key_changed?: boolean,
/**
 * Set (true, and only then sent) while the account lives in this tab alone: made as the
 * first on an empty network, not yet held by any other peer.
 */
alone?: boolean, };
export type Usage = {
/**
 * Bytes donated.
 */
capacity: number,
/**
 * Bytes held for others.
 */
used: number,
/**
 * Blocks held.
 */
blocks: number, };
export type Storage = {
/**
 * The browser's storage quota for the site, when it says.
 */
browser_quota: number | null,
/**
 * Whether the browser granted persistent storage.
 */
persisted: boolean,
/**
 * Whether the person agreed to a donation in this browser (until then it donates 0).
 */
agreed: boolean,
/**
 * The donation to propose: 10 % of the browser's quota, 64 MiB to 5 GiB.
 */
suggested: number,
/**
 * Why the browser refused the last block write (its storage is full), until one succeeds.
 */
write_refused: string | null,
/**
 * Bytes donated.
 */
capacity: number,
/**
 * Bytes held for others.
 */
used: number,
/**
 * Blocks held.
 */
blocks: number, };
export type AuditFailure = {
/**
 * The file's name.
 */
file: string,
/**
 * The holder's peer id.
 */
peer: string,
/**
 * Whether it answered (with no valid proof) or not at all.
 */
answered: boolean,
/**
 * What went wrong.
 */
reason: string, };
export type AuditReport = {
/**
 * Blocks audited.
 */
blocks: number,
/**
 * Challenges sent (one per holder of each audited block).
 */
challenges: number,
/**
 * Challenges answered with a valid proof.
 */
held: number,
/**
 * The distinct holders challenged (peer ids).
 */
holders: Array<string>,
/**
 * The others.
 */
failures: Array<AuditFailure>,
/**
 * Files with fewer live copies than an upload asks for.
 */
files_degraded: number,
/**
 * Files with one live copy or none: lost if that peer leaves.
 */
files_at_risk: number,
/**
 * Whether the copies counted here are in the index now (the page's "Copies" column).
 * False when they differed and saving the index failed: the counts above still hold, and
 * the next audit saves them.
 */
counts_saved: boolean, };
export type FileInfo = {
/**
 * Id for download and delete (hex).
 */
id: string,
/**
 * Its name.
 */
name: string,
/**
 * Bytes.
 */
size: number,
/**
 * Upload time, milliseconds since the Unix epoch.
 */
created_ms: number,
/**
 * Fewest copies any of its blocks had at upload, or live at the last audit
 * ([`Drive::audit`]).
 */
copies: number,
/**
 * Share links made for it that have not expired ([`Drive::share_link`]); they work
 * until [`Drive::revoke_links`].
 */
links: number,
/**
 * Share links made for it that have expired but still open it, until one of the
 * owner's browsers revokes them ([`Drive::revoke_expired_links`]).
 */
expired_links: number,
/**
 * The users it is shared with ([`Drive::share_with`]).
 */
shared_with: Array<string>, };
export type UploadReport = {
/**
 * The new file.
 */
file: FileInfo,
/**
 * Copies asked for.
 */
replicas: number,
/**
 * Whether every block reached the asked number of copies.
 */
complete: boolean, };
export type LinkInfo = {
/**
 * The file's name.
 */
name: string,
/**
 * Bytes.
 */
size: number,
/**
 * When the link stops working, milliseconds since the Unix epoch.
 */
expires_ms: number | null, };
export type SharedFile = {
/**
 * The sharer's username.
 */
from: string,
/**
 * The file's id (hex), for [`Drive::hide_shared`].
 */
id: string,
/**
 * Its name.
 */
name: string,
/**
 * Bytes.
 */
size: number,
/**
 * A share-link token that reads it ([`download_link`]).
 */
token: string, };
export type SharedWithMe = {
/**
 * Every file shared with this user and not hidden, newest sharer's letter first read.
 */
files: Array<SharedFile>,
/**
 * Letters refused: not signed by the named sharer's current key, or older than one
 * read before (a replay), or not readable.
 */
refused: number,
/**
 * Whether the letters could be looked up: when too few peers answered, the list is what
 * this user's index kept from earlier.
 */
fresh: boolean, };
export type Quota = {
/**
 * Bytes of files stored.
 */
used: number,
/**
 * Bytes the user may store.
 */
quota: number, };
export type RepairLog = {
/**
 * Block checks run.
 */
checked: number,
/**
 * Copies made on other peers.
 */
copied: number,
/**
 * Bytes sent in those copies.
 */
bytes_copied: number,
/**
 * Copies a peer refused or did not take.
 */
refused: number,
/**
 * Blocks handed on (dropped here, enough nearer copies).
 */
handed_on: number,
/**
 * Blocks dropped because no owner renewed them for [`Settings::keep_unrenewed`].
 */
expired: number, };
/** How sign_up, log_in and change_password reject: switch on `code`, show `message`. */
export interface AccountFailure extends Error {
  code: "bad_username" | "weak_password" | "password_check_failed" | "name_taken" | "unknown_user" | "wrong_password" | "account_damaged" | "record_refused" | "crypto_failed" | "network_unreachable";
  /** With network_unreachable from a lookup: peers heard, and peers needed. */
  heard?: number; needed?: number;
}
/** How upload, download, list_files, delete_file, audit and quota reject once logged in
 * (before log-in they reject with a plain Error, "log in first"). */
export interface FileFailure extends Error {
  code: "no_holder" | "unavailable" | "index_unavailable" | "over_quota" | "cancelled" | "no_such_file" | "bad_name" | "too_large" | "read_failed" | "index_damaged" | "block_invalid" | "crypto_failed" | "network_unreachable" | "record_refused" | "network" | "pledge_failed" | "no_donation" | "bad_link" | "link_expired" | "link_gone" | "unknown_user" | "share_self" | "bad_username" | "share_limit" | "index_full" | "letter_unconfirmed";
  /** With over_quota, in bytes: the upload's size, what is used, what is allowed. */
  size?: number; used?: number; quota?: number;
}
