//! Postgres for real through testcontainers: the locally built Debian
//! Postgres 15 image, on a docker network of the test's own. Proves the
//! harness's pre-creation makes the chart's db-init (GRANT on the
//! database) enough for role maas to create tables on 15, and that
//! without it 15 refuses.

use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::targets::chart::postgres::{
    ADMIN_ROLE, MAAS_DB, MAAS_ROLE, PostgresContainerSpec, READY_LINE, chart_db_init_steps,
    connect, precreate_maasdb, run_guarded,
};
use maas_e2e::testing::{have_program, require};

pub const IMAGE: &str = "maas-e2e/postgres";
pub const TAG: &str = "15-bookworm";

/// Docker running and the image built; under CI both must hold.
pub fn docker_with_image(image: &str) -> bool {
    require(
        "docker",
        have_program("docker"),
        "apt-get install docker.io (ci/setup-host.sh --docker)",
    ) && require(
        "a running dockerd",
        Cmd::new("docker").arg("info").run_blocking().is_ok(),
        "start it: ci/setup-host.sh --docker",
    ) && require(
        &format!("docker image {image}"),
        Cmd::new("docker")
            .args(["image", "inspect", image])
            .run_blocking()
            .is_ok(),
        "build it: ci/images/postgres/build.sh",
    )
}

/// Removes the test's container and network on every exit path.
struct DockerGuard {
    container: String,
    network: String,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        let _ = Cmd::new("docker")
            .args(["rm", "--force", "--volumes", &self.container])
            .run_blocking();
        let _ = Cmd::new("docker")
            .args(["network", "rm", &self.network])
            .run_blocking();
    }
}

#[tokio::test]
async fn precreation_then_chart_db_init_lets_maas_create_tables_on_15() {
    if !docker_with_image(&format!("{IMAGE}:{TAG}")) {
        return;
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let guard = DockerGuard {
        container: format!("me2e-chart-pg-{id}"),
        network: format!("me2e-chart-net-{id}"),
    };
    Cmd::new("docker")
        .args([
            "network",
            "create",
            "--label",
            "maas-e2e.test=chart",
            &guard.network,
        ])
        .run()
        .await
        .unwrap();

    let spec = PostgresContainerSpec {
        name: guard.container.clone(),
        image: IMAGE.into(),
        tag: TAG.into(),
        network: guard.network.clone(),
        port: 5432,
        env: vec![],
        labels: vec![("maas-e2e.test".into(), "chart".into())],
        ready_line: READY_LINE.into(),
        precreate_maasdb: true,
    };
    let admin_pw = format!("adm-{id}");
    let user_pw = format!("usr-{id}");
    let pg = maas_e2e::targets::chart::postgres::start_container(
        &spec,
        &admin_pw,
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    // On the test's network, as it would be on kind's.
    let inspect = Cmd::new("docker")
        .args([
            "inspect",
            "--format",
            &format!(
                "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
                guard.network
            ),
            &guard.container,
        ])
        .run()
        .await
        .unwrap();
    assert_eq!(inspect.trim(), pg.network_address.to_string());

    // What the chart is given: Service postgresql + Endpoints at this address.
    let manifest = maas_e2e::targets::chart::postgres::service_manifest(
        "maas",
        &pg.network_address.to_string(),
    );
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&manifest)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "Service");
    assert!(
        docs[0]["spec"].get("selector").is_none(),
        "no selector: the Endpoints are ours"
    );
    assert_eq!(docs[1]["kind"], "Endpoints");
    assert_eq!(docs[1]["metadata"]["name"], docs[0]["metadata"]["name"]);
    assert_eq!(
        docs[1]["subsets"][0]["addresses"][0]["ip"],
        pg.network_address.to_string()
    );
    assert_eq!(docs[1]["subsets"][0]["ports"][0]["port"], 5432);

    let admin = connect("127.0.0.1", pg.host_port, ADMIN_ROLE, &admin_pw, "postgres")
        .await
        .unwrap();
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        version >= 150000,
        "this test is about Postgres >= 15, got {version}"
    );

    // The harness's pre-creation, twice: it is idempotent.
    let first = precreate_maasdb("127.0.0.1", pg.host_port, &admin_pw, &user_pw)
        .await
        .unwrap();
    assert_eq!(
        first,
        [
            "CREATE ROLE maas LOGIN PASSWORD <redacted>",
            "CREATE DATABASE maasdb OWNER maas"
        ]
    );
    let again = precreate_maasdb("127.0.0.1", pg.host_port, &admin_pw, &user_pw)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // Then the chart's db-init, as its job would run it: the database and
    // role exist, so only the password reset and the grants run.
    let ran = run_guarded(
        &admin,
        "db-init",
        &chart_db_init_steps(MAAS_ROLE, &user_pw, MAAS_DB),
    )
    .await
    .unwrap();
    assert_eq!(
        ran,
        [
            "ALTER USER maas WITH PASSWORD <redacted>",
            "GRANT ALL PRIVILEGES ON DATABASE maasdb TO maas",
            "REVOKE ALL ON DATABASE maasdb FROM PUBLIC"
        ]
    );

    // What db-sync needs: role maas creates a table in schema public.
    let maas = connect("127.0.0.1", pg.host_port, MAAS_ROLE, &user_pw, MAAS_DB)
        .await
        .unwrap();
    maas.batch_execute("CREATE TABLE public.maas_e2e_probe (id integer PRIMARY KEY); INSERT INTO public.maas_e2e_probe VALUES (1)")
        .await
        .unwrap();
    let n: i64 = maas
        .query_one("SELECT count(*) FROM public.maas_e2e_probe", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // The control: the chart's db-init alone (a database it creates,
    // owned by the superuser) leaves maas unable to create tables on 15.
    let ran = run_guarded(
        &admin,
        "db-init",
        &chart_db_init_steps(MAAS_ROLE, &user_pw, "maasdb_control"),
    )
    .await
    .unwrap();
    assert_eq!(ran[0], "CREATE DATABASE maasdb_control");
    let control = connect(
        "127.0.0.1",
        pg.host_port,
        MAAS_ROLE,
        &user_pw,
        "maasdb_control",
    )
    .await
    .unwrap();
    let err = control
        .batch_execute("CREATE TABLE public.maas_e2e_probe (id integer)")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("permission denied for schema public")
            || format!("{err:?}").contains("permission denied"),
        "{err:?}"
    );

    drop((admin, maas, control));
    pg.container.rm().await.unwrap();
    drop(guard);
}

#[tokio::test]
async fn the_in_cluster_psql_script_precreates_the_same_way() {
    // The in-cluster mode feeds this script to `kubectl exec -i ... psql`;
    // here the same psql (in the image) reads it through `docker exec -i`.
    if !docker_with_image(&format!("{IMAGE}:{TAG}")) {
        return;
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let guard = DockerGuard {
        container: format!("me2e-chart-pgs-{id}"),
        network: format!("me2e-chart-nets-{id}"),
    };
    Cmd::new("docker")
        .args([
            "network",
            "create",
            "--label",
            "maas-e2e.test=chart",
            &guard.network,
        ])
        .run()
        .await
        .unwrap();
    let spec = PostgresContainerSpec {
        name: guard.container.clone(),
        image: IMAGE.into(),
        tag: TAG.into(),
        network: guard.network.clone(),
        port: 5432,
        env: vec![],
        labels: vec![("maas-e2e.test".into(), "chart".into())],
        ready_line: READY_LINE.into(),
        precreate_maasdb: true,
    };
    let admin_pw = format!("adm-{id}");
    let user_pw = format!("it's-{id}"); // a quote, to prove the literal quoting
    let pg = maas_e2e::targets::chart::postgres::start_container(
        &spec,
        &admin_pw,
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    let script = maas_e2e::targets::chart::postgres::precreate_psql_script(&user_pw);
    let psql = || {
        Cmd::new("docker")
            .args([
                "exec",
                "--interactive",
                &guard.container,
                "psql",
                "--username",
                "postgres",
                "--set",
                "ON_ERROR_STOP=1",
            ])
            .stdin(script.clone())
    };
    psql().run().await.unwrap();
    psql().run().await.unwrap(); // idempotent

    let admin = connect("127.0.0.1", pg.host_port, ADMIN_ROLE, &admin_pw, "postgres")
        .await
        .unwrap();
    let owner: String = admin
        .query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'maasdb'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "maas");
    run_guarded(
        &admin,
        "db-init",
        &chart_db_init_steps(MAAS_ROLE, &user_pw, MAAS_DB),
    )
    .await
    .unwrap();
    let maas = connect("127.0.0.1", pg.host_port, MAAS_ROLE, &user_pw, MAAS_DB)
        .await
        .unwrap();
    maas.batch_execute("CREATE TABLE maas_e2e_probe (id integer)")
        .await
        .unwrap();
    drop((admin, maas));
    pg.container.rm().await.unwrap();
    drop(guard);
}
