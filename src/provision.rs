//! Creates the resources the system needs on an S3/DynamoDB endpoint: the table (with TTL)
//! and the hot bucket (with CORS so browsers can PUT parts and read `ETag`). Idempotent:
//! running it against already provisioned resources changes nothing.

use anyhow::Context;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

/// Names of what to create.
#[derive(Clone, Debug)]
pub struct Resources {
    pub table: String,
    pub hot_bucket: String,
}

/// Creates every resource that does not exist yet.
///
/// # Errors
/// Any failure other than "already exists".
pub async fn provision(
    ddb: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
    resources: &Resources,
) -> anyhow::Result<()> {
    create_table(ddb, &resources.table).await?;
    create_bucket(s3, &resources.hot_bucket).await?;
    Ok(())
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
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
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
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

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e)
            if matches!(
                aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
                Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists")
            ) => {}
        Err(e) => return Err(e).context(format!("creating bucket {bucket}")),
    }
    let rule = CorsRule::builder()
        .allowed_origins("*")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_methods("HEAD")
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(3600)
        .build()?;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build()?)
        .send()
        .await
        .context("setting bucket CORS")?;
    Ok(())
}
