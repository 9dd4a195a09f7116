//! One contract for the state store (`ports::StateStore`), run against
//! every adapter: the in-memory one the pipeline tests use
//! (tests/common/mem.rs), the file (`local::FileState`) and DynamoDB
//! (`aws::DynamoState`) through the real SDK against moto's server. Then
//! what only the file adapter can get wrong: a corrupt file, a failed write.

mod common;

use std::path::Path;

use common::mem::MemState;
use pop3_probe::alert::MonitorState;
use pop3_probe::local::FileState;
use pop3_probe::ports::{Datum, SaveReport, StateChanges, StateStore, Unit};
use pop3_probe::probe::{FailureKind, Status};

fn state(monitor: &str, version: u64, status: Status) -> MonitorState {
    let mut st = MonitorState::new(monitor, 1_700_000_000_000);
    st.version = version;
    st.status = status;
    if status == Status::Down {
        st.consecutive_failures = 3;
        st.failure = Some(FailureKind::Timeout);
        st.last_alert_ms = Some(1_700_000_060_000);
    }
    st
}

fn datum(name: &str, monitor: Option<&str>, value: f64, ts: i64) -> Datum {
    Datum {
        name: name.into(),
        monitor: monitor.map(str::to_string),
        shard: None,
        value,
        unit: Unit::Count,
        timestamp_ms: ts,
        vantage: None,
    }
}

fn changes(shard: u32, monitors: Vec<MonitorState>, pending: Option<Vec<Datum>>) -> StateChanges {
    StateChanges {
        shard,
        monitors,
        pending_metrics: pending,
    }
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn assert_saved(who: &str, step: &str, r: &SaveReport) {
    assert!(r.errors.is_empty(), "{who}, {step}: {:?}", r.errors);
}

/// The contract. `who` names the adapter in every failure message.
async fn contract<S: StateStore>(who: &str, store: &S) {
    // Unknown names are absent, not errors and not defaults.
    let none = store.load(&names(&["never-saved", "nor-this"])).await;
    assert!(none.unwrap().is_empty(), "{who}: unknown names loaded");
    assert!(store.load(&[]).await.unwrap().is_empty(), "{who}");
    assert!(
        store.load_pending_metrics(0).await.unwrap().is_empty(),
        "{who}: pending metrics of a shard never saved"
    );

    // What is saved loads back unchanged, and only what was asked for.
    let a1 = state("a", 1, Status::Up);
    let b1 = state("b", 1, Status::Down);
    let p0 = vec![
        datum("Availability", Some("a"), 1.0, 1_700_000_000_000),
        datum("ProbeRuns", None, 1.0, 1_700_000_000_001),
    ];
    let r = store
        .save(changes(0, vec![a1.clone(), b1.clone()], Some(p0.clone())))
        .await;
    assert_saved(who, "first save", &r);
    let got = store.load(&names(&["a", "b", "c"])).await.unwrap();
    assert_eq!(got.len(), 2, "{who}: {got:?}");
    assert_eq!(got["a"], a1, "{who}");
    assert_eq!(got["b"], b1, "{who}");
    let only_b = store.load(&names(&["b"])).await.unwrap();
    assert_eq!(only_b.keys().collect::<Vec<_>>(), ["b"], "{who}");

    // The next version is taken.
    let a2 = state("a", 2, Status::Down);
    assert_saved(
        who,
        "next version",
        &store.save(changes(0, vec![a2.clone()], None)).await,
    );
    assert_eq!(store.load(&names(&["a"])).await.unwrap()["a"], a2, "{who}");

    // A stale writer: a run that loaded a@1 saves its own a@2 after a@2
    // was saved, and in the same save a new monitor c.
    let mut stale_a = state("a", 2, Status::Up);
    stale_a.consecutive_degraded = 7;
    let c1 = state("c", 1, Status::Up);
    let r = store
        .save(changes(0, vec![stale_a.clone(), c1.clone()], None))
        .await;
    // A version that skips ahead (b is at 1) is not "the next" either.
    let b5 = state("b", 5, Status::Up);
    let skip = store.save(changes(0, vec![b5.clone()], None)).await;
    let got = store.load(&names(&["a", "b", "c"])).await.unwrap();
    assert_eq!(got["c"], c1, "{who}: the other monitor of the save");
    // Refused, one error naming the monitor; the stored state stays, and
    // the other monitor of the same save is still saved (above).
    assert_eq!(r.errors.len(), 1, "{who}: {:?}", r.errors);
    let msg = r.errors[0].to_string();
    assert!(
        msg.contains("a: state moved on elsewhere (version 2, expected 1)"),
        "{who}: {msg}"
    );
    assert_eq!(got["a"], a2, "{who}: the stale state replaced the newer");
    assert_eq!(skip.errors.len(), 1, "{who}: {:?}", skip.errors);
    assert!(
        skip.errors[0]
            .to_string()
            .contains("b: state moved on elsewhere (version 1, expected 4)"),
        "{who}: {:?}",
        skip.errors
    );
    assert_eq!(got["b"], b1, "{who}: a version from the future was taken");

    // Pending metrics are one row per shard: a shard never sees or clears
    // another's; `None` leaves a shard's as they are, an empty list clears.
    let p1 = vec![datum("ProbeRuns", None, 1.0, 1_700_000_120_000)];
    assert!(
        store.load_pending_metrics(1).await.unwrap().is_empty(),
        "{who}"
    );
    assert_saved(
        who,
        "shard 1",
        &store.save(changes(1, vec![], Some(p1.clone()))).await,
    );
    assert_eq!(store.load_pending_metrics(0).await.unwrap(), p0, "{who}");
    assert_eq!(store.load_pending_metrics(1).await.unwrap(), p1, "{who}");
    let d1 = state("d", 1, Status::Up);
    assert_saved(
        who,
        "monitors only",
        &store.save(changes(0, vec![d1.clone()], None)).await,
    );
    assert_eq!(store.load_pending_metrics(0).await.unwrap(), p0, "{who}");
    assert_eq!(store.load(&names(&["d"])).await.unwrap()["d"], d1, "{who}");
    assert_saved(
        who,
        "clear shard 0",
        &store.save(changes(0, vec![], Some(vec![]))).await,
    );
    assert!(
        store.load_pending_metrics(0).await.unwrap().is_empty(),
        "{who}"
    );
    assert_eq!(store.load_pending_metrics(1).await.unwrap(), p1, "{who}");
}

#[tokio::test]
async fn the_in_memory_store_keeps_the_contract() {
    contract("memory", &MemState::reporting_conflicts()).await;
}

#[tokio::test]
async fn the_file_store_keeps_the_contract_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = FileState::open(&path).unwrap();
    contract("file", &store).await;
    // What the contract left in memory is what the file holds.
    let all = names(&["a", "b", "c", "d"]);
    let reopened = FileState::open(&path).unwrap();
    assert_eq!(
        reopened.load(&all).await.unwrap(),
        store.load(&all).await.unwrap()
    );
    for shard in [0, 1] {
        assert_eq!(
            reopened.load_pending_metrics(shard).await.unwrap(),
            store.load_pending_metrics(shard).await.unwrap()
        );
    }
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    use common::moto;
    let sdk = moto::sdk_config().await;
    let table = moto::unique("state-contract");
    moto::create_table(&sdk, &table).await;
    let store = pop3_probe::aws::DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    contract("dynamodb", &store).await;
    // Four monitors and two shards' pending rows, nothing else.
    let rows = moto::scan_table(&sdk, &table).await;
    assert_eq!(rows.len(), 6, "{:?}", rows.keys());
}

/// Every name in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_corrupt_state_file_is_refused_by_name_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let cases: [(&str, &[u8]); 5] = [
        (
            "cut short",
            br#"{"format": "pop3-probe-state", "format_version": 2, "monitors": {"a": {"moni"#,
        ),
        (
            "a monitor that is not a state",
            br#"{"format": "pop3-probe-state", "format_version": 2, "monitors": {"a": 5}}"#,
        ),
        ("empty", b""),
        ("not text", b"\x00\xff\xfe garbage \x01"),
        (
            "pending metrics of the wrong shape",
            br#"{"format": "pop3-probe-state", "format_version": 2, "pending_metrics": [1]}"#,
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, bytes).unwrap();
        let err = FileState::open(&path)
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "{what}: the error does not name the file: {msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}: file changed");
        assert_eq!(listing(dir.path()), ["state.json"], "{what}");
    }
}

#[test]
fn run_refuses_a_corrupt_state_file_naming_it_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.json");
    let path = dir.path().join("state.json");
    let doc = serde_json::json!({
        "credentials": {"box": {"username": "probe", "password_env": "STATE_STORE_PW"}},
        "monitors": [{"name": "m", "host": "127.0.0.1", "port": 9, "tls": "none",
                      "auth": "sasl-plain", "credentials": "box",
                      "allow_plaintext_password": true}]
    });
    std::fs::write(&config, doc.to_string()).unwrap();
    let corrupt = br#"{"format": "pop3-probe-state", "format_version": 2, "monitors": {"m": ["#;
    std::fs::write(&path, corrupt).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(&path)
        .env("STATE_STORE_PW", "not-used")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--state"), "{stderr}");
    assert!(
        stderr.contains(&path.display().to_string()),
        "the error does not name the file: {stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), corrupt);
    assert_eq!(listing(dir.path()), ["monitors.json", "state.json"]);
}

#[tokio::test]
async fn a_failed_write_loses_nothing_and_the_next_save_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = FileState::open(&path).unwrap();
    let a1 = state("a", 1, Status::Up);
    assert_saved(
        "file",
        "first",
        &store.save(changes(0, vec![a1.clone()], None)).await,
    );

    // The rename onto the state path fails (a non-empty directory is
    // there now; this holds for root too).
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), "x").unwrap();
    let a2 = state("a", 2, Status::Down);
    let p = vec![datum("ProbeRuns", None, 1.0, 1_700_000_000_000)];
    let r = store
        .save(changes(0, vec![a2.clone()], Some(p.clone())))
        .await;
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let msg = r.errors[0].to_string();
    assert!(msg.contains("cannot write"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    // Memory did not move ahead of the file: a@1 is still what is held,
    // and no temporary file is left behind.
    assert_eq!(store.load(&names(&["a"])).await.unwrap()["a"], a1);
    assert!(store.load_pending_metrics(0).await.unwrap().is_empty());
    assert_eq!(listing(dir.path()), ["state.json"]);

    // Once the path is writable again, the same changes are accepted.
    std::fs::remove_dir_all(&path).unwrap();
    assert_saved(
        "file",
        "retry",
        &store
            .save(changes(0, vec![a2.clone()], Some(p.clone())))
            .await,
    );
    let reopened = FileState::open(&path).unwrap();
    assert_eq!(reopened.load(&names(&["a"])).await.unwrap()["a"], a2);
    assert_eq!(reopened.load_pending_metrics(0).await.unwrap(), p);
}
