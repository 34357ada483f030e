//! The native cluster tests, in one test binary (one link of the whole peer in place of five:
//! about a minute less per clean CI run on two cores). Each module starts its own peers over
//! the in-memory transport (`common::LISTEN`); cargo runs the tests two at a time.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod accounts;
mod app;
mod cluster;
mod files;
mod hostile;
mod repair;
mod rotation;
