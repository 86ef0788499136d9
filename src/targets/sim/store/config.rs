//! MAAS configuration (maas/?op=get_config, set_config).

use serde_json::{Value, json};

use super::{Result, Store, invalid};

/// 2.8 still answers to the old singular name (api/maas.py rewrite_config_name).
fn rewrite(name: &str) -> &str {
    if name == "ntp_server" {
        "ntp_servers"
    } else {
        name
    }
}

impl Store {
    pub async fn get_config(&self, name: &str) -> Result<Value> {
        let name = rewrite(name);
        let text: String = self
            .opt(
                "reading config",
                "SELECT value::text FROM config WHERE name = $1",
                &[&name],
                |r| r.get(0),
            )
            .await?
            .ok_or_else(|| invalid("name", format!("{name} is not a valid config setting (valid settings are in the sim's config table).")))?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// set_config: MAAS takes a string and coerces; the sim stores JSON
    /// true/false for "true"/"false", numbers for numbers, else the string.
    pub async fn set_config(&self, name: &str, value: &str) -> Result<()> {
        let name = rewrite(name);
        // Only names the sim knows (get_config's error for the others).
        self.get_config(name).await?;
        let v = match value.to_ascii_lowercase().as_str() {
            "true" => json!(true),
            "false" => json!(false),
            _ => value
                .parse::<i64>()
                .map(|n| json!(n))
                .unwrap_or_else(|_| json!(value)),
        };
        self.exec(
            "storing config",
            "INSERT INTO config (name, value) VALUES ($1, $2::text::jsonb) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&name, &v.to_string()],
        )
        .await?;
        Ok(())
    }
}
