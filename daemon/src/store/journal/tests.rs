//! Journal tests: durability across reopen and `kill -9`, idempotency, the state
//! machine.

use super::*;
use crate::test_util::run_child_test;

fn hkd(minor: i64) -> Money {
    Money::from_minor(Currency::HKD, minor).unwrap()
}

/// The uid of the test payments' owner, unless a test says otherwise.
const UID: u32 = 1000;

fn owner(app_id: &str) -> Owner {
    Owner {
        uid: UID,
        app_id: app_id.to_owned(),
    }
}

fn payment<'a>(app_id: &'a str, order_id: &'a str, amount: Money) -> NewPayment<'a> {
    payment_as(UID, app_id, order_id, amount)
}

/// A payment of `app_id` run by `uid`.
fn payment_as<'a>(uid: u32, app_id: &'a str, order_id: &'a str, amount: Money) -> NewPayment<'a> {
    // Leaked: a few bytes per test payment, for a `'a` owner.
    let owner: &'a Owner = Box::leak(Box::new(Owner {
        uid,
        app_id: app_id.to_owned(),
    }));
    NewPayment {
        owner,
        order_id,
        amount,
        description: "100 gems",
        binding: "bind-1",
        line_items: None,
        order_code: false,
        budgets: &[],
        checkout: None,
    }
}

fn temp_journal() -> (tempfile::TempDir, PathBuf, Journal) {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: open creates it.
    let path = dir.path().join("state/scanbind/journal.sqlite3");
    let journal = Journal::open(&path).unwrap();
    (dir, path, journal)
}

fn receipt() -> String {
    "eyJhbGciOiJFZERTQSJ9.eyJvcmRlciI6Im8tMSJ9.c2ln".to_owned()
}

fn error(name: &str) -> ErrorInfo {
    ErrorInfo {
        name: format!("io.scanbind.Daemon1.Error.{name}"),
        message: "no".into(),
    }
}

#[test]
fn opens_in_wal_mode_with_full_sync() {
    let (_dir, path, journal) = temp_journal();
    let mode: String = journal
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = journal
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn mark_sent_moves_only_pending_entries_and_leaves_full_sync_on() {
    let (_dir, path, mut journal) = temp_journal();
    let sync = |j: &Journal| -> i64 {
        j.conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    };
    let id = journal
        .record(&payment("app", "o-1", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    assert_eq!(journal.mark_sent(id).unwrap().state, JournalState::Sent);
    // Every later commit fsyncs again.
    assert_eq!(sync(&journal), 2);
    // Not pending any more: returned as it is, never moved back or re-sent.
    let done = journal
        .advance(id, Transition::Succeeded(receipt()))
        .unwrap();
    assert_eq!(journal.mark_sent(id).unwrap(), done);
    assert!(matches!(
        journal.mark_sent(999),
        Err(Error::UnknownPayment(999))
    ));
    assert_eq!(sync(&journal), 2);
    // `sent` survives the daemon going away (in the WAL, checkpointed on reopen).
    let other = journal
        .record(&payment("app", "o-2", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    journal.mark_sent(other).unwrap();
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.get(other).unwrap().state, JournalState::Sent);
    assert_eq!(journal.get(id).unwrap(), done);
}

#[test]
fn default_path_is_in_the_xdg_state_dir() {
    let path =
        |x: Option<&str>, h: Option<&str>| default_path_from(x.map(Into::into), h.map(Into::into));
    assert_eq!(
        path(Some("/s"), Some("/h")),
        Some(PathBuf::from("/s/scanbind/journal.sqlite3"))
    );
    assert_eq!(
        path(None, Some("/h")),
        Some(PathBuf::from("/h/.local/state/scanbind/journal.sqlite3"))
    );
    assert_eq!(
        path(Some("rel"), Some("/h")),
        Some(PathBuf::from("/h/.local/state/scanbind/journal.sqlite3"))
    );
    assert_eq!(path(None, None), None);
    assert!(Journal::default_path().is_some_and(|p| p.ends_with("scanbind/journal.sqlite3")));
}

#[test]
fn reopen_after_drop_keeps_entries() {
    let (_dir, path, mut journal) = temp_journal();
    let a = journal.record(&payment("app.a", "o-1", hkd(1234))).unwrap();
    let Recorded::New(a) = a else {
        panic!("first record is new")
    };
    journal.advance(a.id, Transition::Sent).unwrap();
    drop(journal);

    let journal = Journal::open(&path).unwrap();
    let back = journal.get(a.id).unwrap();
    assert_eq!(back.state, JournalState::Sent);
    assert_eq!(back.amount, hkd(1234));
    assert_eq!(back.order_id, "o-1");
    assert_eq!(
        back.idempotency_key,
        IdempotencyKey::derive(&owner("app.a"), "o-1")
    );
    assert_eq!(journal.open_entries().unwrap(), vec![back]);
}

#[test]
fn the_same_order_id_never_makes_a_second_entry() {
    let (_dir, _path, mut journal) = temp_journal();
    let first = journal.record(&payment("app.a", "o-1", hkd(500))).unwrap();
    let again = journal.record(&payment("app.a", "o-1", hkd(500))).unwrap();
    assert!(matches!(first, Recorded::New(_)));
    assert_eq!(again, Recorded::Existing(first.entry().unwrap().clone()));

    // Different parameters for a used order id: refused, nothing written.
    let err = journal
        .record(&payment("app.a", "o-1", hkd(501)))
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderConflict { ref order_id } if order_id == "o-1"),
        "{err:?}"
    );
    let other_currency = Money::from_minor(Currency::USD, 500).unwrap();
    assert!(
        journal
            .record(&payment("app.a", "o-1", other_currency))
            .is_err()
    );

    // The same order id from another app is another payment.
    let b = journal.record(&payment("app.b", "o-1", hkd(500))).unwrap();
    assert!(matches!(b, Recorded::New(_)));
    assert_ne!(
        b.entry().unwrap().idempotency_key,
        first.entry().unwrap().idempotency_key
    );
    assert_eq!(
        journal
            .list_for_app(&owner("app.a"), false, 100)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(journal.open_entries().unwrap().len(), 2);
}

#[test]
fn idempotency_keys_are_stable_and_unambiguous() {
    let k = IdempotencyKey::derive(&owner("app"), "order");
    assert_eq!(k, IdempotencyKey::derive(&owner("app"), "order"));
    assert_ne!(
        IdempotencyKey::derive(&owner("ab"), "c"),
        IdempotencyKey::derive(&owner("a"), "bc")
    );
    assert!(
        k.as_str().starts_with("p2-") && k.as_str().len() == 35,
        "{}",
        k.as_str()
    );
}

#[test]
fn state_machine_allows_only_forward_moves() {
    use JournalState::*;
    let allowed = [
        (Pending, Sent),
        (Pending, Failed),
        (Pending, Cancelled),
        (Sent, Succeeded),
        (Sent, Failed),
        (Sent, PendingUnknown),
        (Sent, Cancelled),
        (PendingUnknown, Succeeded),
        (PendingUnknown, Failed),
        (PendingUnknown, Cancelled),
    ];
    for from in JournalState::ALL {
        for to in JournalState::ALL {
            assert_eq!(
                from.can_move_to(to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
        assert_eq!(from.is_terminal(), from.to_wire().is_terminal(), "{from:?}");
    }
}

#[test]
fn transitions_are_checked_and_carry_their_results() {
    let (_dir, _path, mut journal) = temp_journal();
    let id = journal
        .record(&payment("app", "o-1", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;

    // Not sent yet: it cannot have succeeded.
    let err = journal
        .advance(id, Transition::Succeeded(receipt()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: "pending",
                to: "succeeded",
                ..
            }
        ),
        "{err:?}"
    );

    journal.advance(id, Transition::Sent).unwrap();
    assert_eq!(
        journal
            .advance(id, Transition::PendingUnknown)
            .unwrap()
            .state,
        JournalState::PendingUnknown
    );
    let done = journal
        .advance(id, Transition::Succeeded(receipt()))
        .unwrap();
    assert_eq!(done.state, JournalState::Succeeded);
    assert_eq!(done.receipt, Some(receipt()));
    assert!(journal.open_entries().unwrap().is_empty());

    // The same result again (reconciliation) changes nothing; another is refused.
    assert_eq!(
        journal
            .advance(id, Transition::Succeeded(receipt()))
            .unwrap(),
        done
    );
    assert!(
        journal
            .advance(id, Transition::Failed(error("ServerError")))
            .is_err()
    );
    assert!(journal.advance(id, Transition::Sent).is_err());

    let failed = journal
        .record(&payment("app", "o-2", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    let e = journal
        .advance(failed, Transition::Failed(error("NotAllowed")))
        .unwrap();
    assert_eq!(
        (e.state, e.error),
        (JournalState::Failed, Some(error("NotAllowed")))
    );
    assert!(matches!(
        journal.advance(999, Transition::Sent),
        Err(Error::UnknownPayment(999))
    ));

    // Stayed unknown until expiry: the server cancelled it.
    let unknown = journal
        .record(&payment("app", "o-3", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    journal.advance(unknown, Transition::Sent).unwrap();
    journal
        .advance(unknown, Transition::PendingUnknown)
        .unwrap();
    let c = journal
        .advance(unknown, Transition::Cancelled(error("Expired")))
        .unwrap();
    assert_eq!(
        (c.state, c.state.to_wire()),
        (JournalState::Cancelled, PaymentState::Cancelled)
    );
    assert_eq!(c.error, Some(error("Expired")));
}

#[test]
fn delivered_is_set_once_and_only_after_success() {
    let (_dir, _path, mut journal) = temp_journal();
    let id = journal
        .record(&payment("app", "o-1", hkd(100)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    assert!(journal.mark_delivered(id).is_err(), "not succeeded yet");
    journal.advance(id, Transition::Sent).unwrap();
    journal
        .advance(id, Transition::Succeeded(receipt()))
        .unwrap();

    assert_eq!(
        journal
            .list_for_app(&owner("app"), true, 100)
            .unwrap()
            .len(),
        1
    );
    assert!(journal.mark_delivered(id).unwrap());
    assert!(
        !journal.mark_delivered(id).unwrap(),
        "second Finish is a no-op"
    );
    assert!(journal.get(id).unwrap().delivered);
    assert!(
        journal
            .list_for_app(&owner("app"), true, 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        journal
            .list_for_app(&owner("app"), false, 100)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn lists_are_per_app_newest_first_and_limited() {
    let (_dir, _path, mut journal) = temp_journal();
    for i in 0..5 {
        journal
            .record(&payment("app", &format!("o-{i}"), hkd(100)))
            .unwrap();
    }
    journal.record(&payment("other", "o-9", hkd(100))).unwrap();
    let orders: Vec<String> = journal
        .list_for_app(&owner("app"), false, 3)
        .unwrap()
        .into_iter()
        .map(|e| e.order_id)
        .collect();
    assert_eq!(orders, ["o-4", "o-3", "o-2"]);
    assert!(journal.find(&owner("app"), "o-9").unwrap().is_none());
    assert!(journal.find(&owner("other"), "o-9").unwrap().is_some());
}

#[test]
fn refuses_a_journal_from_a_newer_version() {
    let (_dir, path, journal) = temp_journal();
    journal
        .conn
        .pragma_update(None, "user_version", 99)
        .unwrap();
    drop(journal);
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, Error::JournalSetup { .. }), "{err:?}");
}

#[test]
fn nothing_secret_is_stored() {
    let (_dir, _path, journal) = temp_journal();
    let columns: Vec<String> = journal
        .conn
        .prepare("SELECT name FROM pragma_table_info('payments')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for c in &columns {
        for word in ["token", "secret", "key_material", "password", "private"] {
            assert!(!c.contains(word), "column {c} looks like a secret");
        }
    }
}

/// Set in the child of the kill test: the journal path to write.
const KILL_CHILD_PATH: &str = "SCANBINDD_TEST_JOURNAL_KILL_PATH";
/// Printed by the child right after the commit.
const COMMITTED: &str = "journal-child: committed";

#[test]
fn an_entry_committed_before_kill_9_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let mut child = run_child_test(
        "store::journal::tests::kill_child_writes_then_waits",
        &[(KILL_CHILD_PATH, path.to_str().unwrap())],
        &[],
    )
    .expect("re-run the test binary");
    let committed = child.wait_for_line(COMMITTED);
    // SIGKILL on Unix: no destructors, no checkpoint, no clean close.
    child.child.kill().unwrap();
    let status = child.child.wait().unwrap();
    assert!(committed, "the child never reported its commit ({status})");
    assert!(!status.success());
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    }
    // The commit sits in the WAL (not checkpointed into the main file) and is found.
    assert!(dir.path().join("journal.sqlite3-wal").exists());

    let journal = Journal::open(&path).unwrap();
    let entry = journal
        .find(&owner("app.killed"), "order-1")
        .unwrap()
        .expect("committed entry survives");
    assert_eq!(entry.amount, hkd(4200));
    assert_eq!(entry.state, JournalState::Sent);
    assert_eq!(journal.open_entries().unwrap(), vec![entry]);
}

#[test]
fn a_restart_serves_open_unfinished_and_recently_settled_payments() {
    let (_dir, _path, mut journal) = temp_journal();
    let mut ids = Vec::new();
    for order in ["open", "unfinished", "delivered", "failed"] {
        let e = journal.record(&payment("app", order, hkd(100))).unwrap();
        ids.push(e.entry().unwrap().id);
    }
    for id in &ids[1..] {
        journal.advance(*id, Transition::Sent).unwrap();
    }
    journal
        .advance(ids[1], Transition::Succeeded(receipt()))
        .unwrap();
    journal
        .advance(ids[2], Transition::Succeeded(receipt()))
        .unwrap();
    assert!(journal.mark_delivered(ids[2]).unwrap());
    journal
        .advance(ids[3], Transition::Failed(error("NotAllowed")))
        .unwrap();
    let served = |since| -> Vec<String> {
        journal
            .entries_to_serve(since)
            .unwrap()
            .into_iter()
            .map(|e| e.order_id)
            .collect()
    };
    // Everything changed just now: all four are recent.
    assert_eq!(served(0).len(), 4);
    // Long after: only what an app must still act on.
    assert_eq!(served(i64::MAX), vec!["open", "unfinished"]);
}

/// The child half of the kill test: commits an entry, says so, then waits to be
/// killed. Without the variable (a normal test run) it does nothing.
#[test]
fn kill_child_writes_then_waits() {
    let Some(path) = std::env::var_os(KILL_CHILD_PATH) else {
        return;
    };
    let mut journal = Journal::open(Path::new(&path)).unwrap();
    let id = journal
        .record(&payment("app.killed", "order-1", hkd(4200)))
        .unwrap()
        .entry()
        .unwrap()
        .id;
    journal.advance(id, Transition::Sent).unwrap();
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{COMMITTED}").unwrap();
        out.flush().unwrap();
    }
    // Keep the connection open (no clean close) until the parent kills us.
    loop {
        std::thread::park();
    }
}

#[test]
fn two_users_of_the_same_app_never_share_an_order_id() {
    let (_dir, _path, mut journal) = temp_journal();
    let a = journal
        .record(&payment_as(1001, "/usr/bin/game", "o-1", hkd(500)))
        .unwrap();
    // The same app, the same order id, another user: another payment, even with
    // other parameters (no conflict with the first user's order).
    let b = journal
        .record(&payment_as(1002, "/usr/bin/game", "o-1", hkd(700)))
        .unwrap();
    let (Recorded::New(a), Recorded::New(b)) = (a, b) else {
        panic!("both are new payments")
    };
    assert_ne!(a.id, b.id);
    assert_ne!(a.idempotency_key, b.idempotency_key);
    assert_eq!((a.uid, b.uid), (1001, 1002));
    let of = |uid: u32| Owner {
        uid,
        app_id: "/usr/bin/game".into(),
    };
    assert_eq!(journal.find(&of(1001), "o-1").unwrap(), Some(a.clone()));
    assert_eq!(journal.find(&of(1002), "o-1").unwrap(), Some(b.clone()));
    assert_eq!(journal.find(&of(1003), "o-1").unwrap(), None);
    assert_eq!(
        journal.list_for_app(&of(1001), false, 100).unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        journal.list_for_app(&of(1002), false, 100).unwrap(),
        vec![b.clone()]
    );
    assert!(a.is_owned_by(&of(1001)) && !a.is_owned_by(&of(1002)));
    // A retry by the first user is still its own payment.
    assert_eq!(
        journal
            .record(&payment_as(1001, "/usr/bin/game", "o-1", hkd(500)))
            .unwrap(),
        Recorded::Existing(a)
    );
}

#[test]
fn an_apps_budget_counts_each_users_payments_apart_and_a_profiles_all() {
    let (_dir, _path, mut journal) = temp_journal();
    let budget = |per_app| crate::policy::Budget {
        currency: Currency::HKD,
        since: 0,
        limit: 1000,
        period: "daily",
        per_app,
    };
    let per_app = [budget(true)];
    let with = |uid, order, budgets| NewPayment {
        budgets,
        ..payment_as(uid, "/usr/bin/game", order, hkd(600))
    };
    assert!(matches!(
        journal.record(&with(1001, "o-1", &per_app)).unwrap(),
        Recorded::New(_)
    ));
    // The second user's budget is its own: 600 of 1000.
    assert!(matches!(
        journal.record(&with(1002, "o-1", &per_app)).unwrap(),
        Recorded::New(_)
    ));
    // The first user's next 600 would exceed its 1000.
    assert!(matches!(
        journal.record(&with(1001, "o-2", &per_app)).unwrap(),
        Recorded::OverBudget { spent: 600, .. }
    ));
    // A profile's (household) budget counts every user's payments: 1200 spent.
    let household = [budget(false)];
    assert!(matches!(
        journal.record(&with(1003, "o-1", &household)).unwrap(),
        Recorded::OverBudget { spent: 1200, .. }
    ));
}

#[test]
fn server_app_ids_name_the_owner() {
    let me = Owner {
        uid: own_uid(),
        app_id: "/usr/bin/game".into(),
    };
    // The daemon's own user: the plain app id, as before uids were kept.
    assert_eq!(me.server_app_id(), "/usr/bin/game");
    assert_eq!(Owner::from_server_app_id("/usr/bin/game"), me);
    let other = Owner {
        uid: own_uid().wrapping_add(1),
        app_id: "flatpak:com.example.Game".into(),
    };
    let sent = other.server_app_id();
    assert_eq!(
        sent,
        format!("uid:{}:flatpak:com.example.Game", own_uid().wrapping_add(1))
    );
    assert_eq!(Owner::from_server_app_id(&sent), other);
    // Not canonical digits: not a uid prefix.
    for odd in ["uid:+1:/x", "uid:01:/x", "uid::/x", "uid:x"] {
        assert_eq!(Owner::from_server_app_id(odd).app_id, odd);
    }
}

/// A version 5 journal (before uids), as that version's code created it.
fn create_v5(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch(SCHEMA_V2).unwrap();
    conn.execute_batch(SCHEMA_V3).unwrap();
    conn.execute_batch(SCHEMA_V4).unwrap();
    conn.execute_batch(SCHEMA_V5).unwrap();
    conn.pragma_update(None, "user_version", 5).unwrap();
    let v1_key = "p1-00112233445566778899aabbccddeeff";
    for (id, order, key) in [
        (1, "o-1", v1_key),
        (7, "o-2", "p1-ffeeddccbbaa99887766554433221100"),
    ] {
        conn.execute(
            "INSERT INTO payments (id, app_id, order_id, idempotency_key, amount_minor, \
             currency, description, binding, state, created_at, updated_at) \
             VALUES (?1, '/usr/bin/game', ?2, ?3, 4900, 'HKD', 'gems', 'bind-1', \
             'succeeded', 1, 2)",
            params![id, order, key],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO refunds (payment, refund_id, amount_minor, reason, state, created_at, \
         updated_at) VALUES (7, 'r-1', 100, 'broken', 'succeeded', 3, 3)",
        [],
    )
    .unwrap();
}

#[test]
fn a_version_5_journal_keeps_its_rows_under_the_daemons_own_uid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    create_v5(&path);

    let mut journal = Journal::open(&path).unwrap();
    // Foreign keys are off only during the rebuild: as a fresh connection has them.
    let fk = |c: &Connection| -> bool {
        c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        fk(&journal.conn),
        fk(&Connection::open_in_memory().unwrap())
    );
    let version: i64 = journal
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mine = Owner {
        uid: own_uid(),
        app_id: "/usr/bin/game".into(),
    };
    let rows = journal.list_for_app(&mine, false, 100).unwrap();
    assert_eq!(
        rows.iter()
            .map(|e| (e.id, e.order_id.as_str(), e.uid))
            .collect::<Vec<_>>(),
        [(7, "o-2", own_uid()), (1, "o-1", own_uid())]
    );
    // Stored keys are kept (the server and refunds know them), refunds still count.
    assert_eq!(
        rows[1].idempotency_key.as_str(),
        "p1-00112233445566778899aabbccddeeff"
    );
    assert_eq!(rows[0].refunded_minor, 100);
    // Another user's same order id is a new payment; ids are never reused.
    let Recorded::New(new) = journal
        .record(&payment_as(
            own_uid().wrapping_add(1),
            "/usr/bin/game",
            "o-1",
            hkd(10),
        ))
        .unwrap()
    else {
        panic!("another user's order is new")
    };
    assert!(new.id > 7, "{}", new.id);
    // The same order of the daemon's own user is the migrated payment.
    let again = NewPayment {
        description: "gems",
        ..payment_as(own_uid(), "/usr/bin/game", "o-1", hkd(4900))
    };
    assert!(matches!(journal.record(&again).unwrap(), Recorded::Existing(e) if e.id == 1));
    drop(journal);
    // Opening it again changes nothing.
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.list_for_app(&mine, false, 100).unwrap().len(), 2);
}
