//! A small synchronisation helper shared by every layer (a leaf: imports nothing of
//! the crate).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a std mutex; a panic while it was held does not make the data unusable here
/// (every critical section is a plain copy or insert).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
