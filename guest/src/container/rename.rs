//! Renaming a container, in any state, as Docker does
//! (`POST /containers/{id}/rename`).
//!
//! Compose recreates a service by renaming the old container out of the
//! way (stopped, or still running), and the reconciler gives a new
//! container its name before starting it. The name lives in the
//! container's record, written crash-safely, and in the endpoints of the
//! networks it runs on, where the DNS server finds it; the monitor and the
//! runtime know the container only by its ID.

use std::sync::Arc;

use super::record::{self, Record};
use super::{Container, Containers, names};
use crate::error::{ContainerError, Result};

impl Containers {
    /// Renames `c` to `new_name` (a leading `/` is dropped). Refused when
    /// the name is its current one (Docker's 400) or taken by another
    /// container (409).
    /// Blocks on writing the record: call it off the async workers.
    pub fn rename(&self, c: &Arc<Container>, new_name: &str) -> Result<()> {
        let new_name = names::check_name(new_name)?;
        // Not the operation lock: Docker renames a container while it
        // stops, restarts or runs, and the clean-up after an exit holds
        // that lock for a while. Renames of one container take turns.
        let _renaming = c
            .renaming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old_name = {
            let map = self.lock_map();
            let old_name = c.name();
            if old_name == new_name {
                return Err(ContainerError::InvalidConfig(format!(
                    "container {old_name}: renaming a container with the same name as its current name"
                ))
                .into());
            }
            if let Some(other) = map
                .values()
                .find(|o| o.id() != c.id() && o.name() == new_name)
            {
                return Err(ContainerError::NameInUse {
                    name: new_name,
                    id: other.id().to_string(),
                }
                .into());
            }
            // Taken under the map's lock: a create or rename that checks
            // after this sees the name in use.
            c.set_name(&new_name);
            old_name
        };
        let record = Record {
            name: new_name.clone(),
            ..c.record.clone()
        };
        if let Err(e) = crate::state::write_json_atomic(&c.paths.dir, record::RECORD_FILE, &record)
        {
            c.set_name(&old_name);
            return Err(e);
        }
        self.networks.rename_endpoints(c.id(), &new_name);
        let mut attrs = c.attributes();
        attrs.insert("oldName".to_string(), format!("/{old_name}"));
        self.events.container("rename", c.id(), attrs);
        Ok(())
    }
}
