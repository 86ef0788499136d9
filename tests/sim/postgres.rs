//! The local Postgres: started as the postgres user, migrated once, stopped
//! with its whole process group.

use std::time::Duration;

use maas_e2e::targets::sim::postgres::{MIGRATIONS, connect, migrate};
use maas_e2e::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PgListen, PostgresMode, SimDatabase,
};

use crate::common::{TestDir, postgres_available};

fn server_pids(data_dir: &std::path::Path) -> i32 {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn tcp_postgres_migrates_once_and_stops_on_drop() {
    if !postgres_available() {
        return;
    }
    let dir = TestDir::new("pg-tcp");
    let pg = LocalPostgres::start(LocalPostgresOptions::new(dir.0.join("pg")))
        .await
        .unwrap();
    assert!(
        pg.connection_string().contains("host=127.0.0.1"),
        "{}",
        pg.connection_string()
    );
    let pid = server_pids(&dir.0.join("pg/data"));
    if nix::unistd::Uid::effective().is_root() {
        // initdb/postgres refuse root: the server must run as postgres.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap()
            .to_string();
        let pg_uid = nix::unistd::User::from_name("postgres")
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        assert!(
            uid_line.split_whitespace().nth(1) == Some(&pg_uid.to_string()),
            "{uid_line}"
        );
    }
    let mut client = connect(pg.connection_string()).await.unwrap();
    let first = migrate(&mut client).await.unwrap();
    assert_eq!(first.len(), MIGRATIONS.len());
    let second = migrate(&mut client).await.unwrap();
    assert!(second.is_empty(), "migrations applied twice: {second:?}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, MIGRATIONS.len());
    let fabric: String = client
        .query_one("SELECT name FROM fabrics", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(fabric, "fabric-0");
    drop(client);
    drop(pg);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while maas_e2e::process::is_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !maas_e2e::process::is_alive(pid),
        "postgres {pid} still runs after drop"
    );
}

#[tokio::test]
async fn unix_socket_postgres_has_no_tcp() {
    if !postgres_available() {
        return;
    }
    let dir = TestDir::new("pg-unix");
    let sock = dir.0.join("sock");
    let mut opts = LocalPostgresOptions::new(dir.0.join("pg"));
    opts.listen = PgListen::Unix { dir: sock.clone() };
    let pg = LocalPostgres::start(opts).await.unwrap();
    assert!(
        sock.join(".s.PGSQL.5432").exists(),
        "no socket in {}",
        sock.display()
    );
    let client = connect(pg.connection_string()).await.unwrap();
    let addr: Option<String> = client
        .query_one("SELECT inet_server_addr()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(addr, None, "a unix-socket connection has no server address");
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "");
}

/// Local mode starts a server; container mode uses the server at the URL
/// it is given and never stops it (the container's owner does).
#[tokio::test]
async fn postgres_mode_local_starts_and_container_uses_the_given_server() {
    if !postgres_available() {
        return;
    }
    let dir = TestDir::new("pg-mode");
    let local = PostgresMode::Local
        .start(LocalPostgresOptions::new(dir.0.join("pg")))
        .await
        .unwrap();
    assert!(matches!(local, SimDatabase::Local(_)));
    let client = connect(local.connection_string()).await.unwrap();
    client
        .batch_execute("CREATE TABLE mode_probe (v int); INSERT INTO mode_probe VALUES (42)")
        .await
        .unwrap();
    // The local server stands in for a container: container mode must
    // reach exactly it, start nothing of its own (the options point nowhere).
    let external = PostgresMode::Container(local.connection_string().to_string())
        .start(LocalPostgresOptions::new("/nonexistent/never/used"))
        .await
        .unwrap();
    assert!(matches!(external, SimDatabase::External(_)));
    let via_external = connect(external.connection_string()).await.unwrap();
    let v: i32 = via_external
        .query_one("SELECT v FROM mode_probe", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 42, "the same server the URL names");
    drop(via_external);
    drop(external);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1, "dropping the external database stopped nothing");
    assert!(
        !std::path::Path::new("/nonexistent/never/used").exists(),
        "container mode made no data directory"
    );
}

#[tokio::test]
async fn clusters_copied_from_one_template_are_independent_and_races_make_one_template() {
    if !postgres_available() {
        return;
    }
    let dir = TestDir::new("pg-template");
    let template_root = dir.0.join("templates");
    let opts = |name: &str| {
        let mut o = LocalPostgresOptions::new(dir.0.join(name));
        o.template_dir = Some(template_root.clone());
        o
    };
    // Two runs starting together race to make the template.
    let (a, b) = tokio::join!(
        LocalPostgres::start(opts("a")),
        LocalPostgres::start(opts("b"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let entries: Vec<String> = std::fs::read_dir(&template_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one template, no half-made ones: {entries:?}"
    );
    let template = template_root.join(&entries[0]);
    assert!(template.join("PG_VERSION").exists());
    assert!(
        !template.join("postmaster.pid").exists(),
        "a server ran on the template itself"
    );

    let ca = connect(a.connection_string()).await.unwrap();
    ca.batch_execute("CREATE TABLE only_in_a (x int)")
        .await
        .unwrap();
    let cb = connect(b.connection_string()).await.unwrap();
    assert_eq!(
        tables_named(&cb, "only_in_a").await,
        0,
        "b's cluster sees a table made in a's"
    );

    // A third run copies the template that is there.
    drop((ca, cb, a, b));
    let c = LocalPostgres::start(opts("c")).await.unwrap();
    let cc = connect(c.connection_string()).await.unwrap();
    assert_eq!(tables_named(&cc, "only_in_a").await, 0);
    assert_eq!(std::fs::read_dir(&template_root).unwrap().count(), 1);
}

async fn tables_named(client: &tokio_postgres::Client, name: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}
