//! Schemas that only describe: the names the API accepts and shows for priorities, states
//! and schedule policies. The real types live in the library; these keep the description
//! exact without making the library depend on utoipa.

#![allow(dead_code)]

use utoipa::ToSchema;

/// A priority level.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum PriorityName {
    Critical,
    High,
    Normal,
    Low,
    Background,
}

/// A task state.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum StateName {
    Scheduled,
    Pending,
    Running,
    Retrying,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

/// What happens to slots missed while the node was down.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum CatchUpName {
    Skip,
    Latest,
    All,
}

/// What a slot does while the previous run still runs.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum OverlapName {
    Allow,
    Skip,
}

/// Local times that do not exist.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum DstGapName {
    Skip,
    Shift,
}

/// Local times that happen twice.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum DstFoldName {
    Once,
    Twice,
}

/// How a schedule treats daylight-saving changes.
#[derive(ToSchema)]
pub(crate) struct DstJson {
    /// Default `shift`.
    #[schema(required = false)]
    gap: DstGapName,
    /// Default `once`.
    #[schema(required = false)]
    fold: DstFoldName,
}
