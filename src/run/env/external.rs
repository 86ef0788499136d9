//! The external target's environment: a MAAS that already runs.

use super::Env;

impl<'p> Env<'p> {
    pub(super) async fn external_lab_up(&mut self) -> Result<(), String> {
        Err("target external: not available in this build yet".into())
    }

    pub(super) async fn external_deploy(&mut self) -> Result<(), String> {
        Err("target external: not available in this build yet".into())
    }
}
