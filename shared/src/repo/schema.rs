//! The table's shape, created by the local runner as the SAM template declares it.

use anyhow::Context;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use super::{DUE_INDEX, Repo, SHA256_INDEX};

impl Repo {
    /// Creates the table as the SAM template declares it (keys, the janitor's `due` and
    /// `by_sha256` indexes, TTL on `ttl`), for the local runner; nothing if it exists.
    ///
    /// # Errors
    /// Any failure other than "already exists".
    pub async fn create_table(&self) -> anyhow::Result<()> {
        let (ddb, table) = (&self.client, &self.table);
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let created = ddb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("PK", KeyType::Hash)?)
            .key_schema(key("SK", KeyType::Range)?)
            .attribute_definitions(attr("PK")?)
            .attribute_definitions(attr("SK")?)
            .attribute_definitions(attr("due_pk")?)
            .attribute_definitions(attr("due_at")?)
            .attribute_definitions(attr("sha256")?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(DUE_INDEX)
                    .key_schema(key("due_pk", KeyType::Hash)?)
                    .key_schema(key("due_at", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(SHA256_INDEX)
                    .key_schema(key("sha256", KeyType::Hash)?)
                    .projection(sha256_projection())
                    .build()?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {
                return self.add_sha256_index().await;
            }
            Err(e) => return Err(e).context(format!("creating table {table}")),
        }
        ddb.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .context("enabling TTL")?;
        Ok(())
    }

    /// Adds the `by_sha256` index to a table created before it existed (DynamoDB fills it
    /// from the items already there); nothing if it is there.
    async fn add_sha256_index(&self) -> anyhow::Result<()> {
        let (ddb, table) = (&self.client, &self.table);
        let described = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .with_context(|| format!("describing table {table}"))?;
        let has_index = described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .any(|i| i.index_name() == Some(SHA256_INDEX));
        if has_index {
            return Ok(());
        }
        ddb.update_table()
            .table_name(table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sha256")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name(SHA256_INDEX)
                            .key_schema(
                                KeySchemaElement::builder()
                                    .attribute_name("sha256")
                                    .key_type(KeyType::Hash)
                                    .build()?,
                            )
                            .projection(sha256_projection())
                            .build()?,
                    )
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("adding index {SHA256_INDEX} to table {table}"))?;
        Ok(())
    }
}

/// `by_sha256` holds the keys and `verified`: enough to count the verified files.
fn sha256_projection() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .non_key_attributes("verified")
        .build()
}
