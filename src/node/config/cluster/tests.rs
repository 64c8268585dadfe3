#![allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type

use std::path::Path;

use figment::Jail;

use crate::node::NodeConfig;

const PG: &str = "[store]\nurl = \"postgres://u@h/db\"\n";

fn load_in(jail: &mut Jail, toml: &str) -> Result<NodeConfig, String> {
    jail.create_file("node.toml", toml)
        .map_err(|e| e.to_string())?;
    let cfg = NodeConfig::load(Some(Path::new("node.toml"))).map_err(|e| e.to_string())?;
    // Flags may change the store after loading: the node checks the cluster then.
    cfg.check_cluster().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[test]
fn a_cluster_on_sqlite_is_refused_saying_it_needs_postgresql() {
    Jail::expect_with(|jail| {
        jail.set_env("TASKMESH_CLUSTER__COOKIE", "c");
        let err = load_in(jail, "[cluster]\nlisten = \"127.0.0.1:7701\"\n").unwrap_err();
        assert!(
            err.contains("cluster.listen") && err.contains("PostgreSQL"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn the_cookie_is_required_and_never_comes_from_the_config_file() {
    Jail::expect_with(|jail| {
        let toml = format!("{PG}[cluster]\nlisten = \"127.0.0.1:7701\"\n");
        let err = load_in(jail, &toml).unwrap_err();
        assert!(err.contains("TASKMESH_CLUSTER__COOKIE"), "{err}");
        let in_file = format!("{toml}cookie = \"hunter2\"\n");
        let err = load_in(jail, &in_file).unwrap_err();
        assert!(err.contains("cluster.cookie must not be written"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        jail.create_file("cookie", "from-a-file\n")?;
        let with_file = format!("{toml}cookie_file = \"cookie\"\n");
        let cfg = load_in(jail, &with_file).unwrap();
        let c = cfg.cluster.config("n1").unwrap();
        assert_eq!(c.cookie.expose(), "from-a-file");
        assert!(
            !cfg.dump().contains("from-a-file"),
            "the dump shows no secret"
        );
        Ok(())
    });
}

#[test]
fn cluster_settings_come_from_the_file_and_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("TASKMESH_CLUSTER__COOKIE", "c");
        jail.set_env("TASKMESH_CLUSTER__PING_MS", "250");
        let toml = format!(
            "{PG}[cluster]\nlisten = \"0.0.0.0:7701\"\nadvertise = \"10.0.0.5:7701\"\n\
             seeds = [\"10.0.0.6:7701\"]\nsuspect_after_ms = 750\n\
             [cluster.routing]\ndefault = \"round_robin\"\n\
             [cluster.routing.queues]\nmail = \"consistent_hash\"\n"
        );
        let cfg = load_in(jail, &toml).unwrap();
        let c = cfg.cluster.config("n1").unwrap();
        assert_eq!(c.advertise, "10.0.0.5:7701");
        assert_eq!(c.seeds, ["10.0.0.6:7701"]);
        assert_eq!(c.ping_every.as_millis(), 250);
        assert_eq!(c.suspect_after.as_millis(), 750);
        assert_eq!(c.routing.of("mail"), crate::cluster::Policy::ConsistentHash);
        assert_eq!(c.routing.of("other"), crate::cluster::Policy::RoundRobin);
        Ok(())
    });
}

#[test]
fn a_wildcard_listen_needs_an_advertised_address_and_bad_values_name_the_key() {
    Jail::expect_with(|jail| {
        jail.set_env("TASKMESH_CLUSTER__COOKIE", "c");
        let toml = format!("{PG}[cluster]\nlisten = \"0.0.0.0:7701\"\n");
        let err = load_in(jail, &toml).unwrap_err();
        assert!(err.contains("cluster.advertise"), "{err}");
        let toml = format!("{PG}[cluster]\nlisten = \"127.0.0.1:7701\"\nping_ms = 0\n");
        let err = load_in(jail, &toml).unwrap_err();
        assert!(err.contains("cluster.ping_ms"), "{err}");
        let toml = format!(
            "{PG}[cluster]\nlisten = \"127.0.0.1:7701\"\nrouting = {{ default = \"random\" }}\n"
        );
        let err = load_in(jail, &toml).unwrap_err();
        assert!(err.contains("random") || err.contains("routing"), "{err}");
        let toml = format!(
            "{PG}node_name = \"b\"\n[cluster]\nlisten = \"127.0.0.1:7701\"\nnode_name = \"a\"\n"
        );
        let err = load_in(jail, &toml).unwrap_err();
        assert!(
            err.contains("cluster.node_name") && err.contains("differ"),
            "{err}"
        );
        Ok(())
    });
}
