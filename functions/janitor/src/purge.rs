//! The trash's side of a sweep: entries past their `purge_at` are purged as
//! `DELETE /v1/trash/{id}` purges them, and folders whose purge began and did not finish (a
//! request out of time, a janitor stopped, a purge begun by an expired entry) are found in
//! the `due` index (`DUE#PURGE`) and purged on from where they stopped. A run does at most
//! a [`Budget`] of steps and leaves the rest, still due, to the next sweep.

use filestore_shared::AppState;
use filestore_shared::purge::Budget;
use time::OffsetDateTime;

use crate::Report;

/// Steps of folder purges one sweep takes at most (a file purged, a subfolder marked, a
/// folder's record deleted): about a minute of the janitor's run.
pub const PURGE_STEPS_PER_SWEEP: u64 = 5_000;

/// Purges what the trash holds past its retention, then goes on with every unfinished folder
/// purge, within `budget`. Runs before content collection, so content whose last reference a
/// purge released is collected in the same sweep.
///
/// # Errors
/// A failed query of the `due` index. Failures on single items are logged and left for the
/// next sweep.
pub async fn purge_trash(
    state: &AppState,
    now: OffsetDateTime,
    budget: &mut Budget,
    report: &mut Report,
) -> anyhow::Result<()> {
    for entry in state.repo.trash_due(now).await? {
        if budget.spent() {
            return Ok(());
        }
        match state.purge(&entry, budget).await {
            Ok(Some(purged)) => {
                report.purged_trash += 1;
                report.purged_folders += purged.folders;
                report.purged_folder_files += purged.files;
            }
            Ok(None) => {} // restored or purged meanwhile
            Err(e) => {
                tracing::warn!(id = %entry.id, error = format!("{e:#}"), "could not purge a trash entry")
            }
        }
    }
    for (user_id, folder_id) in state.repo.purges_due(now).await? {
        if budget.spent() {
            return Ok(());
        }
        match state.purge_folder(&user_id, &folder_id, budget).await {
            Ok(purged) => {
                report.purged_folders += purged.folders;
                report.purged_folder_files += purged.files;
            }
            Err(e) => {
                tracing::warn!(%folder_id, error = format!("{e:#}"), "could not go on with a folder's purge")
            }
        }
    }
    Ok(())
}
