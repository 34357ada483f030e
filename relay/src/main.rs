//! The relay binary: parse the command line, set up logging, run until SIGINT or SIGTERM.

use clap::Parser;
use jellyfish_relay::{Config, Relay};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let relay = match Relay::bind(config).await {
        Ok(relay) => relay,
        Err(e) => {
            tracing::error!("cannot start the relay: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    relay.run(jellyfish_relay::shutdown_signal()).await;
    std::process::ExitCode::SUCCESS
}
