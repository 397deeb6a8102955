//! The D-Bus adapters.

pub(crate) mod agent;
pub(crate) mod binding;
pub(crate) mod caller;
pub(crate) mod daemon;
pub(crate) mod p2p;
pub(crate) mod payment;
