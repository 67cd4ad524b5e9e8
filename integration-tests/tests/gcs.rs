//! The global control store as users see it: nodes, resources, function table, actor table,
//! key-value store, and reloading from a kept session directory.

use std::time::Duration;

use raya::prelude::*;
use raya::{Error, NodeState};
use raya_integration_tests::{config, eventually, with_raya};

#[raya::remote]
fn ping() -> u8 {
    1
}

#[raya::actor]
struct Keeper {
    note: String,
}

#[raya::actor]
impl Keeper {
    fn new(note: String) -> Self {
        Keeper { note }
    }
    fn note(&self) -> String {
        self.note.clone()
    }
}

#[test]
fn the_node_and_its_resources_are_registered() {
    with_raya(config(2).resource("sensor", 3.0), || {
        let nodes = raya::nodes().unwrap();
        assert_eq!(nodes.len(), 1);
        let me = &nodes[0];
        assert_eq!(me.state, NodeState::Alive);
        assert_eq!(me.node_id, raya::runtime_context().unwrap().node_id);
        let total = raya::cluster_resources().unwrap();
        assert_eq!(total["CPU"], 2.0);
        assert_eq!(total["sensor"], 3.0);
        assert_eq!(total["object_store_memory"], (1u64 << 30) as f64);
        assert!(total["memory"] > 0.0);
        assert!(eventually(
            Duration::from_secs(10),
            || raya::available_resources().unwrap()["CPU"] == 2.0
        ));
        assert_eq!(raya::get(&ping::remote()).unwrap(), 1);
    });
}

#[test]
fn init_twice_is_an_error_and_init_after_shutdown_works() {
    with_raya(config(1), || {
        assert_eq!(raya::init(config(1)), Err(Error::AlreadyInitialized));
    });
    assert!(!raya::is_initialized());
    assert!(matches!(raya::nodes(), Err(Error::NotInitialized)));
    with_raya(config(1), || {
        assert_eq!(raya::get(&ping::remote()).unwrap(), 1);
    });
}

#[test]
fn an_object_lease_shorter_than_the_delivery_bound_is_refused() {
    let bad = config(1)
        .delivery_timeout(Duration::from_secs(30))
        .object_lease(Duration::from_secs(5));
    let _turn = raya_integration_tests::turn();
    match raya::init(bad) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("object_lease"), "{m}"),
        other => panic!("expected a clear error, got {other:?}"),
    }
    assert!(!raya::is_initialized());
}

#[test]
fn a_kept_session_directory_reloads_the_gcs() {
    let dir = std::env::temp_dir().join(format!("raya-gcs-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first_node = with_raya(config(1).session_dir(&dir).namespace("app"), || {
        assert!(raya::kv::put("app", b"greeting", b"hello", false).unwrap());
        assert!(!raya::kv::put("app", b"greeting", b"ignored", false).unwrap());
        raya::kv::put("app", b"gone", b"x", true).unwrap();
        assert!(raya::kv::delete("app", b"gone").unwrap());
        let k = Keeper::options()
            .name("keeper")
            .detached()
            .remote("state".to_string())
            .unwrap();
        assert_eq!(raya::get(&k.note()).unwrap(), "state");
        raya::runtime_context().unwrap().node_id
    });
    with_raya(config(1).session_dir(&dir).namespace("app"), || {
        let ctx = raya::runtime_context().unwrap();
        assert_eq!(
            ctx.node_id, first_node,
            "the node identity is kept in the session directory"
        );
        assert_eq!(ctx.job_id, raya::JobId(2), "job ids continue");
        assert_eq!(
            raya::kv::get("app", b"greeting").unwrap(),
            Some(b"hello".to_vec())
        );
        assert_eq!(raya::kv::get("app", b"gone").unwrap(), None);
        assert_eq!(
            raya::kv::keys("app", b"gr").unwrap(),
            vec![b"greeting".to_vec()]
        );
        // The actor of the previous run is recorded, and dead: its process is gone.
        let actors = raya::list_actors(true).unwrap();
        let old = actors
            .iter()
            .find(|a| a.name.as_deref() == Some("keeper"))
            .expect("the actor table was reloaded");
        assert_eq!(old.state, raya::ActorState::Dead);
        assert!(matches!(
            raya::get_actor::<Keeper>("keeper"),
            Err(Error::ActorNotFound { .. })
        ));
        // Its name is free for a new actor.
        let k = Keeper::options()
            .name("keeper")
            .remote("fresh".to_string())
            .unwrap();
        assert_eq!(raya::get(&k.note()).unwrap(), "fresh");
    });
    assert!(
        dir.join("gcs").exists(),
        "a given session directory is kept"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_temporary_session_directory_is_removed_at_shutdown() {
    let dir = with_raya(config(1), || raya::session_dir().unwrap());
    assert!(!dir.exists());
}
