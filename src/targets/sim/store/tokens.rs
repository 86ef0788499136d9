//! OAuth tokens: the admin's key and one key per node (the metadata
//! service's callers).

use super::{Result, Store};
use crate::maas::ApiKey;

fn key_at(r: &tokio_postgres::Row) -> ApiKey {
    ApiKey::new(
        r.get::<_, String>(0),
        r.get::<_, String>(1),
        r.get::<_, String>(2),
    )
}

impl Store {
    pub async fn insert_token(
        &self,
        key: &ApiKey,
        username: &str,
        machine_id: Option<i64>,
    ) -> Result<()> {
        self.exec(
            "storing an API token",
            "INSERT INTO tokens (consumer_key, token_key, token_secret, username, machine_id) VALUES ($1, $2, $3, $4, $5)",
            &[&key.consumer_key, &key.token_key, &key.token_secret, &username, &machine_id],
        )
        .await?;
        Ok(())
    }

    /// The key a token belongs to, its username and the node's system_id
    /// for node tokens.
    pub async fn lookup_token(
        &self,
        token_key: &str,
    ) -> Result<Option<(ApiKey, String, Option<String>)>> {
        self.opt(
            "looking up an API token",
            "SELECT t.consumer_key, t.token_key, t.token_secret, t.username, m.system_id
             FROM tokens t LEFT JOIN machines m ON m.id = t.machine_id WHERE t.token_key = $1",
            &[&token_key],
            |r| (key_at(r), r.get(3), r.get(4)),
        )
        .await
    }

    /// The node's own OAuth key (MAAS makes one per node); created on first use.
    pub async fn node_key(&self, system_id: &str) -> Result<ApiKey> {
        let id = self.machine_id(system_id).await?;
        let existing = self
            .opt(
                "reading a node key",
                "SELECT consumer_key, token_key, token_secret FROM tokens WHERE machine_id = $1 ORDER BY id LIMIT 1",
                &[&id],
                key_at,
            )
            .await?;
        if let Some(key) = existing {
            return Ok(key);
        }
        let key = ApiKey::generate();
        self.insert_token(&key, &format!("node-{system_id}"), Some(id))
            .await?;
        Ok(key)
    }
}
