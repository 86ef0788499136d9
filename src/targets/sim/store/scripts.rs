//! Scripts a user uploads (2.8 api/scripts.py, forms/script.py): stored by
//! name, run by op=commission (every commissioning one) and served to the
//! commissioning node.

use super::{Result, Store, StoreError, invalid};

/// 2.8's SCRIPT_TYPE numbers.
pub const SCRIPT_TYPE_COMMISSIONING: i32 = 0;
pub const SCRIPT_TYPE_TESTING: i32 = 2;

/// One uploaded script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScript {
    pub id: i64,
    pub name: String,
    pub script_type: i32,
    pub script: Vec<u8>,
}

/// `type` as 2.8's translate_script_type takes it: a name or its number
/// (default testing, as ScriptsHandler.create documents).
pub fn script_type_of(value: Option<&str>) -> Result<i32> {
    match value.map(str::trim).unwrap_or("") {
        "" | "testing" | "test" | "2" => Ok(SCRIPT_TYPE_TESTING),
        "commissioning" | "0" => Ok(SCRIPT_TYPE_COMMISSIONING),
        other => Err(invalid(
            "type",
            format!("Script type must be commissioning or testing, not '{other}'."),
        )),
    }
}

/// 2.8 ScriptForm's name rules: not "none", not a number, and nothing a
/// shell would need quoted (pipes.quote(name) == name).
pub fn check_script_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("name", "This field is required."));
    }
    if name.eq_ignore_ascii_case("none") {
        return Err(invalid("name", "\"none\" is a reserved name."));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid("name", "Cannot be a number."));
    }
    let safe = |c: char| c.is_alphanumeric() || c == '_' || "@%+=:,./-".contains(c);
    if !name.chars().all(safe) {
        return Err(invalid(
            "name",
            "Name contains disallowed characters (e.g. space or quotes).",
        ));
    }
    Ok(())
}

fn row(r: &tokio_postgres::Row) -> UserScript {
    UserScript {
        id: r.get(0),
        name: r.get(1),
        script_type: r.get(2),
        script: r.get(3),
    }
}

impl Store {
    /// POST scripts/: a new script (400 on a bad or taken name, no content).
    pub async fn create_user_script(
        &self,
        name: &str,
        script_type: i32,
        script: &[u8],
    ) -> Result<UserScript> {
        check_script_name(name)?;
        if script.is_empty() {
            return Err(invalid("script", "This field is required."));
        }
        let taken = self
            .opt(
                "looking up a script name",
                "SELECT id FROM user_scripts WHERE name = $1",
                &[&name],
                |r| r.get::<_, i64>(0),
            )
            .await?;
        if taken.is_some() {
            return Err(invalid("name", "Script with this Name already exists."));
        }
        self.one(
            "storing a script",
            "INSERT INTO user_scripts (name, script_type, script) VALUES ($1, $2, $3)
             RETURNING id, name, script_type, script",
            &[&name, &script_type, &script],
            row,
        )
        .await
    }

    /// One script by name (404 when there is none).
    pub async fn user_script(&self, name: &str) -> Result<UserScript> {
        self.opt(
            "reading a script",
            "SELECT id, name, script_type, script FROM user_scripts WHERE name = $1",
            &[&name],
            row,
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("No script named {name}.")))
    }

    /// DELETE scripts/{name}.
    pub async fn delete_user_script(&self, name: &str) -> Result<()> {
        let n = self
            .exec(
                "deleting a script",
                "DELETE FROM user_scripts WHERE name = $1",
                &[&name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("No script named {name}.")));
        }
        Ok(())
    }

    /// GET scripts/ (optionally one type), in id order.
    pub async fn user_scripts(&self, script_type: Option<i32>) -> Result<Vec<UserScript>> {
        self.rows(
            "listing scripts",
            "SELECT id, name, script_type, script FROM user_scripts
             WHERE $1::INTEGER IS NULL OR script_type = $1 ORDER BY id",
            &[&script_type],
            row,
        )
        .await
    }

    /// The user scripts in the node's current commissioning set, by name
    /// (what the node is told to fetch and run after the built-ins).
    pub async fn commissioning_user_scripts(&self, system_id: &str) -> Result<Vec<UserScript>> {
        let id = self.machine_id(system_id).await?;
        self.rows(
            "listing the node's user scripts",
            "SELECT u.id, u.name, u.script_type, u.script FROM user_scripts u
             JOIN script_results r ON r.name = u.name
             WHERE u.script_type = 0 AND r.script_set_id = (
                 SELECT id FROM script_sets WHERE machine_id = $1 AND result_type = 0
                 ORDER BY id DESC LIMIT 1)
             ORDER BY u.name",
            &[&id],
            row,
        )
        .await
    }
}
