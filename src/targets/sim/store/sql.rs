//! The one way the store talks to Postgres: run a statement, turn a failure
//! into `StoreError::Sql` naming what was being done, map rows with a plain
//! function. Works on the store's client and inside a transaction alike.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{Result, StoreError};

/// Statement parameters, as tokio-postgres takes them.
pub(super) type Args<'a> = &'a [&'a (dyn ToSql + Sync)];

fn sql(what: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |source| StoreError::Sql {
        what: what.to_string(),
        source,
    }
}

/// At most one row, mapped.
pub(super) async fn opt<C: GenericClient, T>(
    c: &C,
    what: &str,
    query: &str,
    args: Args<'_>,
    map: impl FnOnce(&Row) -> T,
) -> Result<Option<T>> {
    Ok(c.query_opt(query, args)
        .await
        .map_err(sql(what))?
        .as_ref()
        .map(map))
}

/// Exactly one row, mapped.
pub(super) async fn one<C: GenericClient, T>(
    c: &C,
    what: &str,
    query: &str,
    args: Args<'_>,
    map: impl FnOnce(&Row) -> T,
) -> Result<T> {
    Ok(map(&c.query_one(query, args).await.map_err(sql(what))?))
}

/// Every row, mapped.
pub(super) async fn rows<C: GenericClient, T>(
    c: &C,
    what: &str,
    query: &str,
    args: Args<'_>,
    map: impl FnMut(&Row) -> T,
) -> Result<Vec<T>> {
    Ok(c.query(query, args)
        .await
        .map_err(sql(what))?
        .iter()
        .map(map)
        .collect())
}

/// Every row, unmapped (for callers that group rows).
pub(super) async fn raw<C: GenericClient>(
    c: &C,
    what: &str,
    query: &str,
    args: Args<'_>,
) -> Result<Vec<Row>> {
    c.query(query, args).await.map_err(sql(what))
}

/// A statement without rows; the number of rows it touched.
pub(super) async fn exec<C: GenericClient>(
    c: &C,
    what: &str,
    query: &str,
    args: Args<'_>,
) -> Result<u64> {
    c.execute(query, args).await.map_err(sql(what))
}

/// Open a transaction on `client`.
pub(super) async fn begin<'a>(
    client: &'a mut tokio_postgres::Client,
    what: &str,
) -> Result<tokio_postgres::Transaction<'a>> {
    client.transaction().await.map_err(sql(what))
}

/// Commit `tx`.
pub(super) async fn commit(tx: tokio_postgres::Transaction<'_>, what: &str) -> Result<()> {
    tx.commit().await.map_err(sql(what))
}
