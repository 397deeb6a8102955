//! Test fixtures (feature `test-util`): the workspace's shared fixtures from
//! `scanbind-testkit`, re-exported under the path the daemon's tests and the
//! workspace's e2e tests have always used.
//!
//! - [`PrivateBus`]: a private `dbus-daemon` that activates nothing, so no Secret
//!   Service can ever appear on it.
//! - [`require_secret_service`]: the guard of every test that needs the real
//!   gnome-keyring started by `scripts/test`.
//! - [`run_child_test`]: re-runs one test of the current test binary in a child
//!   process with extra environment (for tests that need another D-Bus address, or
//!   that kill the child).
//!
//! The crash points (`SCANBINDD_CRASH_AT`) stay in the daemon itself.

pub use scanbind_testkit::{
    CHILD_TIMEOUT, ChildTest, KEYRING_SS_TEST, PrivateBus, require_secret_service, run_child_test,
};
