//! The parts of `scanbindctl` the demo program (`scanbind-demo`) shares with it: exit
//! codes and error reports ([`exit`]), output for people or JSON ([`output`]), QR codes
//! in the terminal ([`qr`]), what the commands show while they run ([`show`]) and the
//! options of `scanbindctl demo` ([`demo_args`]).
//!
//! The `scanbindctl` binary (`src/main.rs`) is the command line; this library holds no
//! daemon, server or sandbox (the demo program does).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod demo_args;
pub mod exit;
pub mod output;
pub mod qr;
pub mod show;
