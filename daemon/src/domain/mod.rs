//! The domain.

pub(crate) mod checkout;
pub(crate) mod pin;
pub(crate) mod refresh;
