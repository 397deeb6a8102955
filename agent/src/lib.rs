//! `scanbind-agent`: the window display agent of scanbind.
//!
//! The daemon (`scanbindd`) asks a trusted display agent to show what the user must be
//! able to trust: the binding QR code with its match code and expiry, order codes, and
//! confirmations ("Pay HK$49.00 to Game X?", the parent's PIN). This crate serves
//! `io.scanbind.Agent1` (see `docs/dbus-api.md`), registers with
//! `io.scanbind.AgentManager1`, and draws full-screen with egui, driven by arrows,
//! Enter, Escape, Backspace and digits (keyboard or TV remote).
//!
//! # Layout
//!
//! - [`request`]: `details` dictionaries parsed into typed requests.
//! - [`state`]: the screen stack and what keys do, toolkit-free (unit tested).
//! - [`service`]: the D-Bus side (zbus, tokio), talking to the UI through a channel of
//!   [`state::UiCommand`]s; answers come back on oneshots.
//! - [`ui`]: the egui/eframe window.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod error;
pub mod request;
pub mod service;
pub mod state;
pub mod ui;

pub use error::Error;
