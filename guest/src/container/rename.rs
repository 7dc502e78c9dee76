//! Renaming a container that has not run yet.
//!
//! A recreate makes the new container under a temporary name, removes the
//! old one, then gives the new one its name before starting it. The name is
//! part of the container's record, written crash-safely; a container that
//! never started has no process, monitor or network endpoint that knows its
//! name, so the record is all there is to change.

use std::sync::Arc;

use super::record::{self, Record};
use super::{Container, Containers, Status, names};
use crate::error::{ContainerError, Error, Result};

impl Containers {
    /// Renames `c`, which must be created and never started; returns the
    /// renamed container (the old handle is stale afterwards).
    pub fn rename_created(&self, c: &Arc<Container>, new_name: &str) -> Result<Arc<Container>> {
        let new_name = names::check_name(new_name)?;
        let _op = c.op.try_lock().map_err(|_| {
            Error::from(ContainerError::WrongState(format!(
                "container {}: rename: another operation on it is under way",
                c.name()
            )))
        })?;
        let state = c.state();
        if state.status != Status::Created {
            return Err(Error::from(ContainerError::WrongState(format!(
                "container {}: rename to {new_name}: only a container that has not run can be renamed",
                c.name()
            ))));
        }
        let mut map = self.lock_map();
        if let Some(other) = map
            .values()
            .find(|o| o.record.name == new_name && o.id() != c.id())
        {
            return Err(Error::from(ContainerError::WrongState(format!(
                "container {}: rename: the name \"/{new_name}\" is already in use by container \"{}\"",
                c.name(),
                other.id()
            ))));
        }
        let old_name = c.record.name.clone();
        let record = Record {
            name: new_name,
            ..c.record.clone()
        };
        crate::state::write_json_atomic(&c.paths.dir, record::RECORD_FILE, &record)?;
        let renamed = Arc::new(Container::new(record, c.paths.dir.clone(), state));
        renamed.set_attachments_in_memory(c.attachments());
        map.insert(c.id().to_string(), Arc::clone(&renamed));
        drop(map);
        let mut attrs = renamed.attributes();
        attrs.insert("oldName".to_string(), format!("/{old_name}"));
        self.events.container("rename", renamed.id(), attrs);
        Ok(renamed)
    }
}
