//! Images an apply waits for while the CLI builds them.
//!
//! `servin up` does not wait for its builds before it applies: it sends the
//! desired state with the built images still pending
//! ([`servin_proto::DesiredProject::pending_images`]; their containers carry
//! the reference and no digest), builds them, and reports each image's ID
//! or error on a second connection as its build ends
//! ([`servin_proto::apply::BuiltImage`]). So a container whose image is
//! pulled, or built fast, starts without waiting for the slowest build.
//!
//! The apply request opens a [`Table`] of its pending images before it
//! answers and names it in the answer's [`servin_proto::APPLY_ID_HEADER`];
//! the table lives as long as the apply ([`Registration`] removes it when
//! dropped), so a report for an apply that ended is refused, and a report
//! can never arrive before its table exists. A container whose image is
//! pending waits for its outcome, then is decided again with the ID known,
//! exactly as the plan would have decided it (see
//! [`super::plan::with_image_known`]). The waits end when the apply's client
//! leaves: nobody is left to report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use servin_proto::{DesiredContainer, labels};
use tokio::sync::watch;

/// A pending image's outcome: its ID, or why it could not be built.
pub type Outcome = Result<String, String>;

/// A report refused.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    /// No running apply of the project has this ID.
    #[error(
        "project {project} has no apply {apply} waiting for built images (it ended, or never began)"
    )]
    NoSuchApply {
        /// The project.
        project: String,
        /// The apply ID given.
        apply: String,
    },
    /// The apply does not wait for this image.
    #[error("apply {apply} of project {project} waits for no image {reference}")]
    NotPending {
        /// The project.
        project: String,
        /// The apply.
        apply: String,
        /// The image reported.
        reference: String,
    },
    /// The image's outcome is known already.
    #[error("image {reference} of apply {apply} of project {project} was reported already")]
    AlreadyReported {
        /// The project.
        project: String,
        /// The apply.
        apply: String,
        /// The image reported.
        reference: String,
    },
    /// The report sets both or neither of `id` and `error`.
    #[error("the report of image {0} needs exactly one of id and error")]
    BadReport(String),
}

/// The pending images of one apply and their outcomes.
pub struct Table {
    images: HashMap<String, watch::Sender<Option<Outcome>>>,
}

impl Table {
    fn new(references: &[String]) -> Self {
        Self {
            images: references
                .iter()
                .map(|r| (r.clone(), watch::channel(None).0))
                .collect(),
        }
    }

    /// Whether `reference` is one of the table's images.
    pub fn contains(&self, reference: &str) -> bool {
        self.images.contains_key(reference)
    }

    /// The images, in name order.
    pub fn references(&self) -> Vec<String> {
        let mut out: Vec<String> = self.images.keys().cloned().collect();
        out.sort();
        out
    }

    /// Waits for `reference`'s outcome; `None` when it is not pending here.
    pub async fn wait(&self, reference: &str) -> Option<Outcome> {
        let mut rx = self.images.get(reference)?.subscribe();
        // The sender lives in `self`, so the wait ends only with a value.
        rx.wait_for(Option::is_some).await.ok()?.clone()
    }

    /// Records `reference`'s outcome; the error when it is not pending or
    /// was reported already.
    fn set(&self, reference: &str, outcome: Outcome) -> Result<(), Refused> {
        let tx = self.images.get(reference).ok_or(Refused::NotPending)?;
        let mut fresh = false;
        tx.send_if_modified(|v| {
            fresh = v.is_none();
            if fresh {
                *v = Some(outcome);
            }
            fresh
        });
        if fresh {
            Ok(())
        } else {
            Err(Refused::AlreadyReported)
        }
    }
}

enum Refused {
    NotPending,
    AlreadyReported,
}

type Applies = Arc<Mutex<HashMap<String, (String, Arc<Table>)>>>;

fn lock(
    m: &Mutex<HashMap<String, (String, Arc<Table>)>>,
) -> MutexGuard<'_, HashMap<String, (String, Arc<Table>)>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tables of the applies running now, by apply ID.
#[derive(Default)]
pub struct PendingImages {
    applies: Applies,
    next: AtomicU64,
}

impl PendingImages {
    /// Opens the table of a new apply of `project` waiting for
    /// `references`; it is removed when the registration is dropped.
    pub fn open(&self, project: &str, references: &[String]) -> Registration {
        // The process ID keeps an ID from before an engine restart from
        // naming an apply of the new engine.
        let id = format!(
            "{}-{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed) + 1
        );
        let table = Arc::new(Table::new(references));
        lock(&self.applies).insert(id.clone(), (project.to_string(), Arc::clone(&table)));
        Registration {
            id,
            table,
            applies: Arc::clone(&self.applies),
        }
    }

    /// Records the outcome of image `reference` of apply `apply` of
    /// `project`: its ID, or its build's error.
    pub fn report(
        &self,
        project: &str,
        apply: &str,
        reference: &str,
        id: Option<String>,
        error: Option<String>,
    ) -> Result<(), PendingError> {
        let outcome = match (id, error) {
            (Some(id), None) if !id.is_empty() => Ok(id),
            (None, Some(e)) => Err(e),
            _ => return Err(PendingError::BadReport(reference.to_string())),
        };
        let table = match lock(&self.applies).get(apply) {
            Some((p, t)) if p == project => Arc::clone(t),
            _ => {
                return Err(PendingError::NoSuchApply {
                    project: project.to_string(),
                    apply: apply.to_string(),
                });
            }
        };
        table.set(reference, outcome).map_err(|r| {
            let (project, apply, reference) = (
                project.to_string(),
                apply.to_string(),
                reference.to_string(),
            );
            match r {
                Refused::NotPending => PendingError::NotPending {
                    project,
                    apply,
                    reference,
                },
                Refused::AlreadyReported => PendingError::AlreadyReported {
                    project,
                    apply,
                    reference,
                },
            }
        })
    }
}

/// An apply's open table; dropping it closes the table.
pub struct Registration {
    /// The apply's ID, as the answer's header names it.
    pub id: String,
    /// The table.
    pub table: Arc<Table>,
    applies: Applies,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.applies).remove(&self.id);
    }
}

/// `want` running image `id`, its now-known pending image: by ID, with the
/// digest label, as the CLI writes a container of a built image.
pub fn with_image(want: &DesiredContainer, id: &str) -> DesiredContainer {
    let mut c = want.clone();
    c.image_digest = Some(id.to_string());
    c.body.image = Some(id.to_string());
    c.body
        .labels
        .get_or_insert_with(Default::default)
        .insert(labels::IMAGE_DIGEST.to_string(), id.to_string());
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reconcile::fixtures::container;

    #[tokio::test]
    async fn a_report_ends_the_wait_once() {
        let images = PendingImages::default();
        let reg = images.open("shop", &["shop-app".to_string()]);
        let table = Arc::clone(&reg.table);
        let waiter = tokio::spawn(async move { table.wait("shop-app").await });
        images
            .report("shop", &reg.id, "shop-app", Some("sha256:ab".into()), None)
            .unwrap();
        assert_eq!(waiter.await.unwrap(), Some(Ok("sha256:ab".to_string())));
        let again = images
            .report("shop", &reg.id, "shop-app", None, Some("boom".into()))
            .unwrap_err();
        assert!(matches!(again, PendingError::AlreadyReported { .. }));
        assert_eq!(reg.table.wait("other").await, None);
    }

    #[test]
    fn reports_name_what_is_wrong() {
        let images = PendingImages::default();
        let reg = images.open("shop", &["shop-app".to_string()]);
        let e = images
            .report("shop", &reg.id, "shop-db", Some("sha256:ab".into()), None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "apply {} of project shop waits for no image shop-db",
                reg.id
            )
        );
        let e = images
            .report("other", &reg.id, "shop-app", Some("sha256:ab".into()), None)
            .unwrap_err();
        assert!(matches!(e, PendingError::NoSuchApply { .. }), "{e}");
        let e = images
            .report("shop", &reg.id, "shop-app", None, None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the report of image shop-app needs exactly one of id and error"
        );
        let id = reg.id.clone();
        drop(reg);
        let e = images
            .report("shop", &id, "shop-app", Some("sha256:ab".into()), None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "project shop has no apply {id} waiting for built images (it ended, or never began)"
            )
        );
    }

    #[test]
    fn a_known_image_is_run_by_id_with_its_digest_label() {
        let c = with_image(&container("app", &[]), "sha256:ab");
        assert_eq!(c.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(c.body.image.as_deref(), Some("sha256:ab"));
        assert_eq!(
            c.body.labels.unwrap()[labels::IMAGE_DIGEST],
            "sha256:ab".to_string()
        );
    }
}
