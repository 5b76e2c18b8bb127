//! Attribute values in and out: the `Item` maps DynamoDB reads and writes, and the conversions
//! between their attributes and Rust values every entity's records use.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(super) type Item = HashMap<String, Av>;

/// Formats a timestamp the way every API field carries it.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A timestamp to the millisecond, for times that key items (a trash entry's sort key is
/// its time in epoch milliseconds): stored this way, it reads back to the same key.
pub(super) fn rfc3339_millis(t: OffsetDateTime) -> String {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `t` cut to the millisecond, as [`rfc3339_millis`] stores it.
pub fn to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
}

pub(super) fn s(v: impl AsRef<str>) -> Av {
    Av::S(v.as_ref().to_owned())
}

pub(super) fn n(v: impl ToString) -> Av {
    Av::N(v.to_string())
}

/// A timestamp attribute, stored as [`rfc3339`] writes it.
pub(super) fn get_time(item: &Item, key: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(&get_s(item, key)?, &Rfc3339)
        .with_context(|| format!("item attribute {key} is not an RFC 3339 time"))
}

pub(super) fn get_s(item: &Item, key: &str) -> anyhow::Result<String> {
    match item.get(key) {
        Some(Av::S(v)) => Ok(v.clone()),
        _ => Err(anyhow!("item attribute {key} is missing or not a string")),
    }
}

/// A string attribute read into the domain type it was written from (an id, a hash...).
pub(super) fn get_parsed<T: TryFrom<String, Error = String>>(
    item: &Item,
    key: &str,
) -> anyhow::Result<T> {
    T::try_from(get_s(item, key)?).map_err(|e| anyhow!("item attribute {key}: {e}"))
}

pub(super) fn opt_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(Av::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(super) fn get_u64(item: &Item, key: &str) -> anyhow::Result<u64> {
    match item.get(key) {
        // Counters can dip below zero only through a bug; never fail a read over it.
        Some(Av::N(v)) => Ok(v
            .parse::<i128>()
            .map(|x| x.clamp(0, u64::MAX as i128) as u64)?),
        None => Ok(0),
        _ => Err(anyhow!("item attribute {key} is not a number")),
    }
}

/// A single-item write refused by its condition expression.
pub(super) fn is_condition_failure<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

pub(super) fn get_bool(item: &Item, key: &str) -> bool {
    matches!(item.get(key), Some(Av::Bool(true)))
}
